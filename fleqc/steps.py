"""What one executed step did, as every observer sees it: :class:`TraceEvent`.

An event says which instruction ran (its ``pc``, the file and line it came from, its text as
written there and as decoded), the values it read and wrote (by label, read from the state before
and after the step) and whether it branched. The machine builds it (``Machine.describe_step``:
only the machine knows what its instructions read and write), the run path (fleqc.runner) asks
for it after each step the listeners watch, on every backend, so a trace, a report and the
debugger see the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

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

    def to_json(self) -> dict:
        return {
            "step": self.step, "pc": self.pc, "file": self.file, "line": self.line, "source": self.source,
            "instruction": self.instruction,
            "reads": [a.to_json() for a in self.reads], "writes": [a.to_json() for a in self.writes],
            "branch": self.branch, "target": self.target, "next_pc": self.next_pc,
        }

    def text(self, hidden: bool = False, entries: int = SHORT_ENTRIES) -> str:
        """One line: step, pc, file:line, the source, values read and written, where it went.

        A vector or matrix shows its shape and its first ``entries`` entries (the JSON trace has
        every value); the linker's hidden cells (``__one``, ``__call_1``) are left out unless
        ``hidden``."""
        where = f"{Path(self.file).name}:{self.line}" if self.line else (Path(self.file).name or "?")
        shown = self.source or self.instruction

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
