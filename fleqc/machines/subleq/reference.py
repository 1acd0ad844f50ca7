"""Reference interpreter for SUBLEQ programs: the oracle every SUBLEQ backend is checked against.

Semantics, exactly (``N = program.bits``, ``m`` cells, ``k`` instructions):

* Values are signed N-bit two's-complement integers in ``[-2^(N-1), 2^(N-1) - 1]``; memory starts as
  the program's cells in address order and ``pc`` starts at 0.
* One step executes instruction ``i = pc`` = ``(a, b, target)``::

      r = wrap(mem[b] - mem[a])            # wrap(x) = ((x + 2^(N-1)) mod 2^N) - 2^(N-1)
      mem[b] = r
      pc = target if r <= 0 else pc + 1

  ``a`` may equal ``b`` (then ``r`` is 0 and the branch is taken).
* Halting is a fixed point: a step whose result state equals the current state (same pc, same
  memory) is not executed and not counted, and the machine has halted. ``halt`` (``subleq z, z,
  self`` with ``z`` = 0) is such a step, but so is any step that changes nothing, e.g. ``subleq z, m,
  self`` with ``z`` = 0 and ``m`` <= 0. A step that changes only memory or only pc is counted.
* ``steps`` counts the executed (state-changing) steps.

Programs from the linker end in an implicit ``halt``, so ``pc`` stays in ``[0, k)``. For a hand-built
program whose last instruction falls through, the state with ``pc = k`` is reached normally and
stepping from it raises ``ValueError``; so do operands outside ``[0, m)``, targets outside ``[0, k)``
and initial values outside the N-bit range (these are bugs in whoever built the program, not user
errors).

This module is deliberately plain Python: no numpy, no cleverness.
"""

from __future__ import annotations

from collections.abc import Iterator

from fleqc.state import DEFAULT_MAX_STEPS, FellOffTheEnd, RunResult, State, run_to_fixed_point, trace_to_fixed_point
from fleqc.program import LinkedProgram, SubleqInstruction



def wrap(value: int, bits: int) -> int:
    """``value`` reduced to the signed ``bits``-bit two's-complement range."""
    half = 1 << (bits - 1)
    return (value + half) % (1 << bits) - half


def _check_machine(program: LinkedProgram) -> None:
    if program.machine != "subleq":
        raise ValueError(f"the SUBLEQ interpreter cannot run a {program.machine!r} program")
    if not isinstance(program.bits, int) or program.bits < 2:
        raise ValueError(f"bits must be an integer >= 2, got {program.bits!r}")


def initial_state(program: LinkedProgram, pc: int = 0) -> State:
    """``pc`` (default 0; a punch card may start elsewhere) and the program's initial cell values
    (ints, checked to lie in the N-bit range)."""
    _check_machine(program)
    low, high = -(1 << (program.bits - 1)), (1 << (program.bits - 1)) - 1
    memory = []
    for address, cell in enumerate(program.cells):
        if cell.address != address:
            raise ValueError(f"cell {address} has address {cell.address}")
        value = int(cell.value)
        if value != cell.value or not low <= value <= high:
            raise ValueError(f"cell {address} holds {cell.value!r}, not a {program.bits}-bit signed integer")
        memory.append(value)
    return State(pc=pc, memory=tuple(memory))


def step(program: LinkedProgram, state: State) -> State:
    """The state after executing the instruction at ``state.pc`` (pure: ``state`` is not changed).

    Applied to a halted state this returns an equal state.
    """
    _check_machine(program)
    m, k = len(state.memory), len(program.instructions)
    if state.pc == k and k:
        raise FellOffTheEnd(k)
    if not 0 <= state.pc < k:
        raise ValueError(f"pc {state.pc} is outside the program (0..{k - 1})")
    instruction = program.instructions[state.pc]
    if not isinstance(instruction, SubleqInstruction):
        raise ValueError(f"instruction {state.pc} is not a SUBLEQ instruction: {instruction!r}")
    a, b, target = instruction.a, instruction.b, instruction.target
    if not (0 <= a < m and 0 <= b < m):
        raise ValueError(f"instruction {state.pc} addresses a cell outside 0..{m - 1}: a={a}, b={b}")
    if not 0 <= target < k:
        raise ValueError(f"instruction {state.pc} jumps outside the program: target={target}")

    result = wrap(state.memory[b] - state.memory[a], program.bits)
    memory = list(state.memory)
    memory[b] = result
    if result <= 0:
        pc = target
    else:
        pc = state.pc + 1
    return State(pc=pc, memory=tuple(memory))


def trace(program: LinkedProgram, max_steps: int = DEFAULT_MAX_STEPS) -> Iterator[State]:
    """Yield the state after every executed step, stopping at a fixed point or after ``max_steps``.

    The initial state is not yielded; the number of states yielded equals ``run(...).steps``.
    """
    return trace_to_fixed_point(step, program, initial_state(program), max_steps)


def run(program: LinkedProgram, max_steps: int = DEFAULT_MAX_STEPS, pc: int = 0) -> RunResult:
    """Run from the initial state for at most ``max_steps`` steps (see ``run_to_fixed_point``)."""
    return run_to_fixed_point(step, program, initial_state(program, pc), max_steps)
