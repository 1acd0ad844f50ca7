"""Several engines in lockstep: one :class:`fleqc.runner.Run` per backend, stepped together.

After every executed step the runs must agree on the decoded state (pc, whether the run has
halted, every memory cell, exactly), and the transformer engines (numpy, torch, onnx) on X itself,
bit for bit. The first disagreement is reported by step, and for X by row block and column (with
the column's region: scratchpad, memory cell, instruction, padding), so that a user can see where
two engines part. ``fleqc run --lockstep numpy,torch,onnx,reference`` is this module.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np

from fleqc.errors import ErrorCode, FleqError
from fleqc.program import same_value
from fleqc.runner import Result, Run, check_backend
from fleqc.transformer import MachineFault

LOCKSTEP_BACKENDS = ("numpy", "torch", "onnx", "reference")


class _Named:
    """A run and the backend name it was asked for (numpy, not transformer), for messages."""

    def __init__(self, backend_name: str, run: Run) -> None:
        self.backend_name, self.run = backend_name, run

    def __getattr__(self, name: str) -> Any:
        return getattr(self.run, name)


class LockstepMismatch(RuntimeError):
    """Two engines disagree after a step: names the step and what differs."""

    def __init__(self, step: int, message: str) -> None:
        self.step = step
        super().__init__(f"step {step}: {message}")


@dataclass(frozen=True)
class LockstepOutcome:
    """The runs' common result (the first backend's), the backends that ran and those left out."""

    result: Result
    backends: tuple[str, ...]
    left_out: tuple[str, ...]


def installed(backend: str) -> bool:
    """Whether ``backend``'s engine can be loaded here (torch, onnx are extras)."""
    import importlib.util

    needs = {"torch": ("torch",), "onnx": ("onnx", "onnxruntime")}.get(backend, ())
    return all(importlib.util.find_spec(name) is not None for name in needs)


def choose_backends(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the backends to run, those named but not installed); ``all`` names every one."""
    wanted: list[str] = []
    for name in names:
        name = name.strip()
        if not name:
            continue
        for one in (LOCKSTEP_BACKENDS if name == "all" else (name,)):
            if one not in LOCKSTEP_BACKENDS and one != "transformer":
                check_backend(one)  # the message lists the backends
                raise FleqError(ErrorCode.BAD_CONFIG, f"unknown backend {one!r} for --lockstep: use "
                                f"{', '.join(LOCKSTEP_BACKENDS)} or all")
            one = "numpy" if one == "transformer" else one
            if one not in wanted:
                wanted.append(one)
    chosen = [b for b in wanted if installed(b)]
    return chosen, [b for b in wanted if b not in chosen]


def where_in_X(card: Any, row: int, column: int) -> str:
    """Row ``row``, column ``column`` of X in words: the row block and the column's region."""
    block = next((b for b in card.rows if b.start <= row < b.start + b.size), None)
    rows = f"row {row}" + (f" (row block {block.name}" + (f"[{row - block.start}]" if block.size > 1 else "")
                           + ")" if block is not None else "")
    regions = card.regions
    if regions.scratch[0] <= column < regions.scratch[1]:
        part = card.machine.scratch_name
    elif regions.memory[0] <= column < regions.memory[1]:
        address = column - regions.memory[0]
        names = [s.name for s in card.symbols.values() if s.kind == "data" and s.address == address]
        part = f"memory cell {address}" + (f" {names[0]}" if names else "")
    elif regions.instructions[0] <= column < regions.instructions[1]:
        part = f"instruction {column - regions.instructions[0]}"
    else:
        part = "padding"
    return f"{rows}, column {column} ({part})"


def _differs(a: Run, b: Run) -> Optional[str]:
    """What differs between two runs' states, or None."""
    if a.halted != b.halted:
        return f"{a.backend_name} has {'halted' if a.halted else 'not halted'}, {b.backend_name} has " \
               f"{'halted' if b.halted else 'not halted'}"
    if not a.halted and a.pc != b.pc:  # a halted machine's pc is the machine's own (classic: -1 or the last)
        return f"pc is {a.pc} on {a.backend_name}, {b.pc} on {b.backend_name}"
    memory_a, memory_b = a.memory(), b.memory()
    for address, (x, y) in enumerate(zip(memory_a, memory_b)):
        if not same_value(x, y):
            names = [s.name for s in a.symbols.values() if s.kind == "data" and s.address == address]
            label = f" ({names[0]})" if names else ""
            return f"memory cell {address}{label} is {_plain(x)} on {a.backend_name}, {_plain(y)} on {b.backend_name}"
    if a.X is not None and b.X is not None:
        unequal = np.argwhere(~((a.X == b.X) | (np.isnan(a.X) & np.isnan(b.X))))
        if len(unequal):
            row, column = (int(v) for v in unequal[0])
            return (f"X differs at {where_in_X(a.card, row, column)}: {float(a.X[row, column])!r} on {a.backend_name}, "
                    f"{float(b.X[row, column])!r} on {b.backend_name} ({len(unequal)} "
                    f"{'entry differs' if len(unequal) == 1 else 'entries differ'})")
    return None


def _plain(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return repr(value.tolist())
    return repr(value.item() if isinstance(value, np.generic) else value)


def run_lockstep(target: Any, backends: Sequence[str], max_steps: int,
                 on_step: Optional[Callable[[int], None]] = None, **settings: Any) -> LockstepOutcome:
    """Run ``target`` on every backend in ``backends`` (names as :data:`LOCKSTEP_BACKENDS`, or
    ``all``; those not installed are left out), one step at a time, comparing after every step;
    raises :class:`LockstepMismatch` at the first difference. ``settings`` go to every
    :class:`fleqc.runner.Run` (``mode``, ``columns``, machine options); ``on_step(steps)`` after each."""
    chosen, left_out = choose_backends(backends)
    if len(chosen) < 2:
        have = ", ".join(chosen) or "none"
        missing = f" ({', '.join(left_out)} not installed)" if left_out else ""
        raise FleqError(ErrorCode.BAD_CONFIG, f"--lockstep needs two backends or more; installed of those named: "
                        f"{have}{missing}")
    runs = []
    for index, name in enumerate(chosen):
        own = {k: v for k, v in settings.items() if not (k == "mode" and name == "reference")}
        if index and settings.get("output") is not None:
            own["output"] = bytearray()  # a program's output is printed once, by the first engine
        runs.append(_Named(name, Run(target, name, **own)))
    first = runs[0]
    while first.steps < max_steps and not all(r.halted for r in runs):
        faults: dict[str, Exception] = {}
        for run in runs:
            try:
                run.advance(1)
            except (MachineFault, FleqError) as fault:
                faults[run.backend_name] = fault
        step = max(r.steps for r in runs)
        if faults:
            if len(faults) == len(runs):
                raise next(iter(faults.values()))  # every engine faulted at this step: the fault itself
            ok = [r.backend_name for r in runs if r.backend_name not in faults]
            name, fault = next(iter(faults.items()))
            raise LockstepMismatch(step + 1, f"{name} faulted ({fault}); {', '.join(ok)} did not")
        for other in runs[1:]:
            differs = _differs(first, other)
            if differs is not None:
                raise LockstepMismatch(step, differs)
        if on_step is not None:
            on_step(step)
    result = dataclasses.replace(first.result(), backend="+".join(chosen))
    return LockstepOutcome(result, tuple(chosen), tuple(left_out))
