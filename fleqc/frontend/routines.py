"""Routines: ``.routine NAME`` ... ``.endroutine``, ``call NAME`` and ``ret`` (FLEQ only).

The FLEQ machine has no stack and no indirect jump, so a return is a dispatch over the call sites,
which the linker knows once the whole program is read:

* every routine ``R`` that is called gets a hidden return cell ``__ret_R``;
* the k-th ``call R`` in program order (k = 1..K) is ONE instruction,
  ``fleq __ret_R, mov, __call_k, __call_k, __zero, R``: it stores the site number k (the hidden
  constant cell ``__call_k`` holds k) and jumps to the routine's first instruction;
* every ``ret`` in R's body becomes a binary search over the K sites: ``2K - 1`` instructions, of
  which at most ``ceil(log2 K) + 1`` run. A node compares with ``fleq __dispatch, sub, __ret_R,
  __split_j, __dispatch, left``, where ``__split_j`` holds ``j + 0.5``: the flag is a half-integer,
  never within 0.5 of the branch threshold, so the branch is exact on any FLEQ machine whose ``sub``
  and ``mov`` are exact. A leaf is a ``jmp`` to the instruction after site k. With one site,
  ``ret`` is a single ``jmp``; with none (the routine is never called), a ``halt``.

Guarantees of :func:`collect_routines`: routines are opened and closed in ``.text`` of the same
file, not nested; every ``ret`` lies inside a routine; every ``call`` names a routine; no routine
can reach itself through calls written in routine bodies (one return cell per routine: no
recursion). ``.routine NAME`` is replaced by the code label ``NAME``, so the rest of the linker
sees plain labels.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from fleqc import resources
from fleqc.errors import ErrorCode
from fleqc.frontend import syntax as ast
from fleqc.frontend.diagnostics import Sources, did_you_mean
from fleqc.frontend.includes import Placed


@dataclass
class Routines:
    """What the layout and the encoder need to know about routines."""

    placed: list[Placed]  # the program with `.routine NAME` turned into the label NAME
    names: list[str] = field(default_factory=list)  # routines in program order
    sites: dict[str, list[ast.Instruction]] = field(default_factory=dict)  # calls, program order
    site_number: dict[int, int] = field(default_factory=dict)  # id(call) -> k (1-based)
    owner: dict[int, str] = field(default_factory=dict)  # id(ret) -> routine

    def size(self, statement: ast.Instruction) -> int:
        """Instructions that ``statement`` expands to (a ``ret``: 2K - 1, at least 1)."""
        if statement.mnemonic == "ret" and id(statement) in self.owner:
            return max(1, 2 * len(self.sites[self.owner[id(statement)]]) - 1)
        return 1

    def most_sites(self) -> int:
        return max((len(calls) for calls in self.sites.values()), default=0)


def ret_size(sites: int) -> int:
    return max(1, 2 * sites - 1)


def collect_routines(placed: Sequence[Placed], enabled: bool, sources: Sources) -> Routines:
    """Check routine structure and number the call sites (see the module docstring); ``call`` and
    ``ret`` are instructions only where the machine's dialect has routines (``enabled``)."""
    defined = {
        s.name for s in (item.statement for item in placed) if isinstance(s, (ast.Label, ast.ConstDirective))
    }
    table = Routines(placed=[])
    directives: dict[str, ast.RoutineDirective] = {}
    open_routine: ast.RoutineDirective | None = None
    calls_in: dict[str, list[ast.Instruction]] = {}  # routine -> calls written in its body
    calls: list[tuple[ast.Instruction, str | None]] = []  # every call and the routine it is in
    for item in placed:
        statement = item.statement
        if isinstance(statement, ast.RoutineDirective):
            _check_text(item, sources)
            if open_routine is not None:
                raise sources.error(
                    ErrorCode.BAD_ROUTINE,
                    f"routine '{statement.name}' starts inside routine '{open_routine.name}' "
                    f"(opened at {open_routine.span}); close it with '.endroutine' first",
                    statement.span,
                )
            open_routine = statement
            if statement.name not in directives:
                directives[statement.name] = statement
                table.names.append(statement.name)
                table.sites[statement.name] = []
                calls_in[statement.name] = []
            table.placed.append(Placed(ast.Label(statement.name, statement.name_span), item.section))
            continue
        if isinstance(statement, ast.EndRoutineDirective):
            _check_text(item, sources)
            if open_routine is None:
                raise sources.error(ErrorCode.BAD_ROUTINE, "'.endroutine' without a '.routine'", statement.span)
            if open_routine.span.file != statement.span.file:
                raise sources.error(
                    ErrorCode.BAD_ROUTINE,
                    f"'.endroutine' closes routine '{open_routine.name}' of another file "
                    f"({open_routine.span})",
                    statement.span,
                )
            open_routine = None
            continue
        if open_routine is not None and statement.span.file != open_routine.span.file:
            raise _unclosed(open_routine, sources)  # its file ended (or included another) first
        if isinstance(statement, ast.Instruction) and enabled:
            if statement.mnemonic == "ret" and not statement.operands:
                if open_routine is None:
                    raise sources.error(
                        ErrorCode.BAD_ROUTINE,
                        "'ret' outside a routine (write it between '.routine NAME' and '.endroutine')",
                        statement.mnemonic_span,
                    )
                table.owner[id(statement)] = open_routine.name
            elif statement.mnemonic == "call" and len(statement.operands) == 1:
                calls.append((statement, open_routine.name if open_routine else None))
        table.placed.append(item)
    if open_routine is not None:
        raise _unclosed(open_routine, sources)
    # calls: checked once every routine is known (a call may come before the routine)
    for statement, caller in calls:
        target = statement.operands[0]
        name = target.name if isinstance(target, ast.Name) else None
        if name not in directives:
            if name is not None and name not in defined:
                part = stdlib_part_defining(name)
                hint = f" (it is in the standard library: add '.include \"{part}\"')" if part else \
                    did_you_mean(name, list(directives) + sorted(defined))
                raise sources.error(ErrorCode.UNDEFINED_LABEL, f"undefined routine '{name}'{hint}", target.span)
            shown = f"'{name}'" if name is not None else "this"
            hint = did_you_mean(name, directives) if name is not None else ""
            raise sources.error(
                ErrorCode.BAD_ROUTINE,
                f"{shown} is not a routine (declare one with '.routine NAME'){hint}",
                target.span,
            )
        table.sites[name].append(statement)
        table.site_number[id(statement)] = len(table.sites[name])
        if caller is not None:
            calls_in[caller].append(statement)
    _check_recursion(table.names, calls_in, sources)
    return table


def _check_text(item: Placed, sources: Sources) -> None:
    if item.section != "text":
        raise sources.error(
            ErrorCode.WRONG_SECTION, "routines belong in the .text section (put them after '.text')",
            item.statement.span,
        )


def _unclosed(routine: ast.RoutineDirective, sources: Sources):
    return sources.error(
        ErrorCode.BAD_ROUTINE,
        f"routine '{routine.name}' is not closed: add '.endroutine' at its end (in the same file)",
        routine.span,
    )


def _check_recursion(names: list[str], calls_in: dict[str, list[ast.Instruction]], sources: Sources) -> None:
    """No routine reaches itself through the calls written in routine bodies."""
    state: dict[str, str] = {}
    for root in names:
        if root in state:
            continue
        state[root] = "open"
        stack = [(root, iter(calls_in[root]))]
        while stack:
            name, pending = stack[-1]
            call = next(pending, None)
            if call is None:
                stack.pop()
                state[name] = "done"
                continue
            callee = call.operands[0].name  # type: ignore[union-attr]
            if state.get(callee) == "open":
                chain = [n for n, _ in stack]
                chain = chain[chain.index(callee):] + [callee]
                raise sources.error(
                    ErrorCode.BAD_ROUTINE,
                    "recursive call: " + " -> ".join(chain)
                    + " (each routine has one return cell, so routines cannot recurse)",
                    call.operands[0].span,
                )
            if callee not in state:
                state[callee] = "open"
                stack.append((callee, iter(calls_in[callee])))


@functools.cache
def _stdlib_routines() -> dict[str, str]:
    """Routine name -> the stdlib part that defines it (read from the parts' ``.routine`` lines)."""
    found: dict[str, str] = {}
    for path in sorted(resources.stdlib_dir().glob("*.fleq")):
        for match in re.finditer(r"^\s*\.routine\s+([A-Za-z_]\w*)", path.read_text(encoding="utf-8"), re.M):
            found.setdefault(match.group(1), path.name)
    return found


def stdlib_part_defining(name: str) -> str | None:
    """The stdlib file to include for routine ``name`` (the smallest part that defines it)."""
    return _stdlib_routines().get(name)
