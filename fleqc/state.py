"""Machine states and run results shared by the reference interpreters and every backend.

A :class:`State` is the whole machine: the program counter (an instruction index) and the memory,
one entry per memory cell in address order. SUBLEQ memory holds Python ints in the signed N-bit
range; FLEQ memory holds float64 numpy arrays (shape ``()`` for scalars), which the reference
interpreter marks read-only so a state cannot be changed after it was made.

Two states are equal (:meth:`State.equal`, also ``==``) when their pcs are equal and every cell is
exactly the same: ints by value, arrays by shape and bit pattern. Bit patterns make the comparison
exact and total: a NaN equals the same NaN, and ``-0.0`` differs from ``0.0``. This is the test the
fixed-point halting rule uses ("the step that would change neither pc nor memory").
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from fleqc.program import LinkedProgram, values_by_label


class FellOffTheEnd(ValueError):
    """The last instruction did not branch: the step would leave the program (``pc`` = the
    instruction count). A ValueError, as the references raise for every program the linker cannot
    make; ``steps``: the steps executed before this one (set by :func:`run_to_fixed_point`)."""

    def __init__(self, pc: int) -> None:
        super().__init__(f"pc {pc} is outside the program (0..{pc - 1}): instruction {pc - 1} fell off its end")
        self.pc, self.steps = pc, 0

    def describe(self) -> str:
        """The words both backends use for it (fleqc.transformer.MachineFault)."""
        return (f"instruction {self.pc - 1}, the last, did not branch and fell off the end of the program "
                f"(pc {self.pc}); a program ends in a halt")


def _cells_equal(x: Any, y: Any) -> bool:
    x_is_array = isinstance(x, np.ndarray)
    if x_is_array != isinstance(y, np.ndarray):
        return False
    if not x_is_array:
        return bool(x == y)
    if x.shape != y.shape or x.dtype != y.dtype:
        return False
    return np.ascontiguousarray(x).tobytes() == np.ascontiguousarray(y).tobytes()


def _cell_key(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return (x.shape, str(x.dtype), np.ascontiguousarray(x).tobytes())
    return x


@dataclass(frozen=True, eq=False)
class State:
    """The machine state: ``pc`` (index of the next instruction) and ``memory`` (a tuple of cells)."""

    pc: int
    memory: tuple

    def equal(self, other: "State") -> bool:
        """Exact equality: same pc, same number of cells, each cell identical (see module doc)."""
        if not isinstance(other, State):
            return False
        if self.pc != other.pc or len(self.memory) != len(other.memory):
            return False
        return all(_cells_equal(x, y) for x, y in zip(self.memory, other.memory))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, State):
            return NotImplemented
        return self.equal(other)

    def __hash__(self) -> int:
        return hash((self.pc, tuple(_cell_key(x) for x in self.memory)))


@dataclass(frozen=True)
class RunResult:
    """The outcome of running a program.

    ``halted``: the final state is a fixed point (one more step would change nothing).
    ``steps``: the number of steps executed, each of which changed the state.
    ``state``: the state after those steps.
    """

    halted: bool
    steps: int
    state: State


def memory_by_label(program: LinkedProgram, memory: tuple | list) -> dict[str, Any]:
    """The values of the program's user-visible data labels, read from ``memory`` (see
    :func:`fleqc.program.values_by_label`); hidden labels (``__...``) are left out."""
    return values_by_label(program.symbols, memory)


# The step limit of every run unless the caller sets one (CLI --max-steps, API max_steps).
DEFAULT_MAX_STEPS = 1_000_000

StepFunction = Callable[[LinkedProgram, State], State]


def trace_to_fixed_point(step: StepFunction, program: LinkedProgram, state: State, max_steps: int) -> Iterator[State]:
    """Yield the state after every executed step, stopping at a fixed point or after ``max_steps``.

    The initial state is not yielded; the number of states yielded equals the ``steps`` of
    :func:`run_to_fixed_point`.
    """
    for _ in range(max_steps):
        following = step(program, state)
        if following.equal(state):
            return
        state = following
        yield state


def run_to_fixed_point(
    step: StepFunction,
    program: LinkedProgram,
    state: State,
    max_steps: int,
    not_fixed: tuple[type[Exception], ...] = (),
) -> RunResult:
    """Step from ``state`` for at most ``max_steps`` state-changing steps.

    ``halted`` is True when the final state is a fixed point, including when that is found right
    after the ``max_steps``-th step (checking costs no step). At that last check, a step raising
    one of ``not_fixed`` (e.g. a domain error) is simply not a fixed point: it is not executed.
    """
    if max_steps < 0:
        raise ValueError(f"max_steps must be >= 0, got {max_steps}")
    steps = 0
    while True:
        if steps == max_steps:
            try:
                halted = step(program, state).equal(state)
            except (*not_fixed, FellOffTheEnd):  # not a fixed point: the next step would fail
                halted = False
            return RunResult(halted=halted, steps=steps, state=state)
        try:
            following = step(program, state)
        except FellOffTheEnd as exc:
            exc.steps = steps
            raise
        if following.equal(state):
            return RunResult(halted=True, steps=steps, state=state)
        state = following
        steps += 1
