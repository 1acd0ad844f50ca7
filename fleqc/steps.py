"""What one executed step did, as every observer sees it: :class:`TraceEvent`.

An event says which instruction ran (its ``pc``, the file and line it came from, its text as
written there and as decoded), the values it read and wrote (by label, read from the state before
and after the step) and whether it branched. The machine builds it (``Machine.describe_step``:
only the machine knows what its instructions read and write), the run path (fleqc.runner) asks
for it after each step the listeners watch, on every backend, so a trace, a report and the
debugger see the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from fleqc.program import HIDDEN_PREFIX, Instruction, LinkedProgram, Symbol

Reader = Callable[[int], Any]
SHORT_ENTRIES = 4  # entries of a vector or matrix a trace line shows


@dataclass(frozen=True)
class Access:
    """One operand of an instruction: its role (a, b, dst, flag), cell address, label and value."""

    operand: str
    address: int
    label: str
    value: Any

    def to_json(self) -> dict:
        return {"operand": self.operand, "address": self.address, "label": self.label, "value": jsonable(self.value)}


@dataclass(frozen=True)
class TraceEvent:
    """One executed instruction."""

    step: int
    pc: int
    next_pc: int
    branch: bool  # the branch condition held (the machine went to the instruction's target)
    target: int
    file: str
    line: int
    source: str  # the source line as written (comment stripped), "" if not available
    instruction: str  # the instruction as decoded, operands by label
    reads: tuple[Access, ...] = field(default=())
    writes: tuple[Access, ...] = field(default=())
    # a step inside a stdlib routine that a Flow line called (:class:`Callers`): the routines entered
    # from that line, outermost first (file and line above are the caller's), and where the
    # instruction itself was written; () and None for any other step
    routines: tuple[str, ...] = ()
    written_at: tuple[str, int] | None = None

    def to_json(self) -> dict:
        out = {
            "step": self.step, "pc": self.pc, "file": self.file, "line": self.line, "source": self.source,
            "instruction": self.instruction,
            "reads": [a.to_json() for a in self.reads], "writes": [a.to_json() for a in self.writes],
            "branch": self.branch, "target": self.target, "next_pc": self.next_pc,
        }
        if self.routines:
            out["routines"] = list(self.routines)
            if self.written_at is not None:
                out["routine_file"], out["routine_line"] = self.written_at
        return out

    @property
    def within(self) -> str:
        """``" (in solve > inverse)"`` for a step inside routines a line called, else ""."""
        return f" (in {' > '.join(self.routines)})" if self.routines else ""

    def text(self, hidden: bool = False, entries: int = SHORT_ENTRIES) -> str:
        """One line: step, pc, file:line, the source, values read and written, where it went.

        A vector or matrix shows its shape and its first ``entries`` entries (the JSON trace has
        every value); the linker's hidden cells (``__one``, ``__call_1``) are left out unless
        ``hidden``."""
        where = f"{Path(self.file).name}:{self.line}" if self.line else (Path(self.file).name or "?")
        shown = (self.source or self.instruction) + self.within

        def listed(accesses) -> str:
            return ", ".join(f"{a.label}={short_value(a.value, entries)}" for a in accesses
                             if hidden or not a.label.startswith(HIDDEN_PREFIX))

        reads = listed(a for a in self.reads if a.operand != "flag")
        flag = listed(a for a in self.reads if a.operand == "flag")
        went = f"branch -> {self.next_pc}" if self.branch else f"next -> {self.next_pc}"
        flag = f" | flag {flag}" if flag else ""
        return (f"{self.step:>6}  pc {self.pc:<4} {where:<24} {shown:<34} read {reads or '-'} | "
                f"wrote {listed(self.writes) or '-'}{flag} | {went}")


def short_value(value: Any, entries: int = SHORT_ENTRIES) -> str:
    """A value for one line: a scalar as :func:`format_value`; a vector or matrix as its shape and
    its first ``entries`` entries in row order (``2x3 [1.0, 2.0, 3.0, 4.0, ...]``), or whole when
    it has no more than that."""
    if not isinstance(value, np.ndarray) or value.ndim == 0 or value.size <= entries:
        return format_value(value)
    flat = ", ".join(format_number(x) for x in value.reshape(-1)[:entries])
    return f"{'x'.join(map(str, value.shape))} [{flat}, ...]"


def jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value


def format_number(x: float) -> str:
    text = f"{float(x):.10g}"
    return text + ".0" if text.lstrip("-").isdigit() else text


def format_value(value: Any) -> str:
    """Ints as ints, floats to 10 significant digits, arrays as one-line nested lists."""
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return format_number(value)
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, (float, np.floating)):
        return format_number(value)
    return str(value)


class Names:
    """Labels for addresses: a memory cell's label (``arr+2`` inside a multi-cell label, the
    linker's hidden names as they are, ``mem[k]`` for an unlabelled cell) and an instruction's
    code label (or its index)."""

    def __init__(self, symbols: dict[str, Symbol]) -> None:
        self.cells: dict[int, str] = {}
        self.code: dict[int, str] = {}
        data = [s for s in symbols.values() if s.kind == "data"]
        # exact labels first (user labels before hidden ones), then the inside of multi-cell labels
        for s in sorted(data, key=lambda s: (s.hidden, s.length == 0)):
            self.cells.setdefault(s.address, s.name)
        for s in data:
            for k in range(1, s.length):
                self.cells.setdefault(s.address + k, f"{s.name}+{k}")
        for s in symbols.values():
            if s.kind == "code":
                self.code.setdefault(s.address, s.name)

    def cell(self, address: int) -> str:
        return self.cells.get(address, f"mem[{address}]")

    def target(self, index: int) -> str:
        return self.code.get(index, str(index))


@lru_cache(maxsize=64)
def file_lines(path: str) -> tuple[str, ...]:
    try:
        return tuple(Path(path).read_text(encoding="utf-8").splitlines())
    except (OSError, UnicodeDecodeError):
        return ()


def source_text(file: str, line: int) -> str:
    """Line ``line`` of ``file`` without its comment and surrounding blanks ("" if unreadable)."""
    lines = file_lines(file)
    if not 0 < line <= len(lines):
        return ""
    text = lines[line - 1]
    for mark in (";", "#"):
        text = text.split(mark, 1)[0]
    return " ".join(text.split())


def origin(program: LinkedProgram, instruction: Instruction) -> tuple[str, int]:
    span = instruction.span
    if span is None:
        return program.source_name, 0
    return span.file or program.source_name, span.line


class Callers:
    """Where a step inside an included routine was called from, for a program in a language above
    the assembly (Flow), so that every step shows the user's line.

    The FLEQ linker (fleqc.frontend.routines) gives every called routine ``R`` a return cell
    ``__ret_R``; the k-th ``call R`` is the one instruction ``fleq __ret_R, mov, __call_k, ...,
    R`` that stores k there. A routine never reaches itself (no recursion), so while an instruction
    of R runs, ``__ret_R`` holds the site R was entered from: the caller's instruction, in the
    user's file or in another routine (followed the same way). :meth:`locate` reads those cells
    from the state; the owner of an instruction is the routine of its file that starts last at or
    before it. Where the chain cannot be followed (a cell that names no site), the step keeps its
    own line."""

    def __init__(self, program: LinkedProgram) -> None:
        own = program.source_name
        instructions = program.instructions
        symbols = program.symbols
        starts: dict[int, tuple[str, int]] = {}  # routine start -> (name, return cell)
        for name, symbol in symbols.items():
            routine = symbols.get(name[len("__ret_"):]) if name.startswith("__ret_") else None
            if symbol.kind == "data" and routine is not None and routine.kind == "code":
                starts[routine.address] = (routine.name, symbol.address)
        self.routines = starts
        self.sites: dict[tuple[int, int], int] = {}  # (routine start, site number) -> the call
        cells = program.cells
        for i in instructions:
            entry = starts.get(getattr(i, "target", -1))
            if entry is not None and getattr(i, "func", None) == "mov" and i.dst == entry[1] \
                    and 0 <= i.src_a < len(cells):
                k = float(np.asarray(cells[i.src_a].value).reshape(-1)[0])
                self.sites[(i.target, int(k))] = i.index
        by_file: dict[str, list[int]] = {}
        for start in sorted(starts):
            span = instructions[start].span if start < len(instructions) else None
            if span is not None:
                by_file.setdefault(span.file, []).append(start)
        self.owner: list[int | None] = []  # pc -> the start of the routine it lies in (None: the user's)
        for i in instructions:
            file = i.span.file if i.span is not None else own
            owner = None
            if file != own:
                owner = max((s for s in by_file.get(file, ()) if s <= i.index), default=None)
            self.owner.append(owner)

    @staticmethod
    def of(program: Any, languages: Iterable[str]) -> "Callers | None":
        """The callers of ``program``'s routines when it was compiled from a language above the
        assembly (its source's suffix among ``languages``: fleqc.machines.LANGUAGES) and calls any;
        else None (an assembly program's steps keep their own lines)."""
        source = getattr(program, "source_name", "") or ""
        if Path(source).suffix not in languages or not getattr(program, "instructions", None):
            return None
        callers = Callers(program)
        return callers if callers.sites else None

    def locate(self, pc: int, read: Reader) -> tuple[int, tuple[str, ...]]:
        """(the user's instruction that is running, the routines entered from it, outermost first)
        for instruction ``pc`` in the state ``read`` reads; (pc, ()) outside any routine."""
        chain: list[str] = []
        at = pc
        while 0 <= at < len(self.owner) and self.owner[at] is not None:
            start = self.owner[at]
            name, cell = self.routines[start]
            k = float(np.asarray(read(cell)).reshape(-1)[0])
            site = self.sites.get((start, int(k))) if k == int(k) else None
            if site is None or name in chain:
                return pc, ()
            chain.append(name)
            at = site
        return at, tuple(reversed(chain))

    def attribute(self, program: LinkedProgram, event: TraceEvent, read: Reader) -> TraceEvent:
        """``event`` at the user's line when it ran inside routines that line called."""
        at, chain = self.locate(event.pc, read)
        if not chain:
            return event
        file, line = origin(program, program.instructions[at])
        return replace(event, file=file, line=line, source=source_text(file, line), routines=chain,
                       written_at=(event.file, event.line))


def access(operand: str, address: int, names: Names, read: Reader) -> Access:
    """Operand ``operand`` at ``address``, named by ``names``, its value by ``read``."""
    return Access(operand, address, names.cell(address), read(address))


def language_event(program: LinkedProgram, names: Names, step: int, pc: int, next_pc: int, text: str,
                   reads: tuple[Access, ...], writes: tuple[Access, ...], branch: bool) -> TraceEvent:
    """The event of instruction ``pc`` of a program in the FLEQ language (its origin from its span)."""
    instruction = program.instructions[pc]
    file, line = origin(program, instruction)
    return TraceEvent(step, pc, next_pc, bool(branch), instruction.target, file, line, source_text(file, line),
                      text, reads, writes)
