"""Reference interpreter for FLEQ programs: the oracle every FLEQ backend is checked against.

Semantics, exactly (``m`` cells, ``k`` instructions):

* Every cell holds a float64 numpy array of the cell's fixed shape: ``()`` scalar, ``(n,)`` vector,
  ``(r, c)`` matrix. Memory starts as the program's cells in address order; ``pc`` starts at 0.
* One step executes instruction ``i = pc`` = ``(func, dst, src_a, src_b, flag, target)``::

      f = FLEQ_FUNCTIONS[func]
      mem[dst] = f.apply(mem[src_a], mem[src_b])   # unary f: f.apply(mem[src_a], None)
      pc = target if mem[flag] <= 0 else pc + 1

  The operands are read before the write, and the flag is read *after* it (so ``subleq a, b, c``,
  which is ``fleq b, sub, b, a, b, c``, branches on the new ``mem[b]``). The flag cell is a scalar;
  a NaN flag is not <= 0, so it does not branch. Arithmetic is IEEE float64 as numpy computes it.
  ``mov`` into a cell of another size of the same rank keeps a's top-left block, padded with zeros
  (``fit_shape``).
* Operands outside the function's window (its record's ``limits``: ``sqrt`` of a negative,
  ``recip`` of 0, ``log`` of a value <= 0, the machine's ladders' ranges, a result beyond +-2^1000,
  ``VALUE_LIMIT``) stop the run with ``FleqError(ErrorCode.DOMAIN_ERROR)`` located at the
  instruction's span; the message names the instruction index, the function and the offending
  entry. The transformer refuses exactly the same operands (the table is shared), and every result
  of operands inside the window is finite with |x| <= 2^1000.
* Halting is a fixed point: a step whose result state equals the current state (same pc, every cell
  bit-for-bit identical, see :class:`fleqc.state.State`) is not executed and not counted.
  ``halt`` (``mov __dummy, __dummy`` jumping to itself) is such a step.
* ``steps`` counts the executed (state-changing) steps.

As for SUBLEQ, a hand-built program that falls off its end, names a cell outside ``[0, m)``, jumps
outside ``[0, k)``, uses an unknown function or produces a result of the wrong shape makes the
interpreter raise ``ValueError``: the linker rules all of these out for real programs.

The cells of the states made here are read-only arrays, so a state cannot be changed by accident.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from fleqc.errors import ErrorCode, FleqError
from fleqc.machines.fleq.functions import FLEQ_FUNCTIONS, fit_shape
from fleqc.state import DEFAULT_MAX_STEPS, FellOffTheEnd, RunResult, State, run_to_fixed_point, trace_to_fixed_point
from fleqc.program import FleqInstruction, LinkedProgram


def _frozen(value, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A read-only float64 copy of ``value`` (checked to have ``shape`` when one is given)."""
    array = np.array(value, dtype=np.float64, copy=True)
    if shape is not None and array.shape != tuple(shape):
        raise ValueError(f"expected shape {tuple(shape)}, got {array.shape}")
    array.flags.writeable = False
    return array


def _check_machine(program: LinkedProgram) -> None:
    if program.machine != "fleq":
        raise ValueError(f"the FLEQ interpreter cannot run a {program.machine!r} program")


def initial_state(program: LinkedProgram, pc: int = 0) -> State:
    """``pc`` (default 0; a punch card may start elsewhere) and read-only float64 copies of the
    program's initial cell values."""
    _check_machine(program)
    memory = []
    for address, cell in enumerate(program.cells):
        if cell.address != address:
            raise ValueError(f"cell {address} has address {cell.address}")
        memory.append(_frozen(cell.value, cell.shape))
    return State(pc=pc, memory=tuple(memory))


def step(program: LinkedProgram, state: State) -> State:
    """The state after executing the instruction at ``state.pc`` (pure: ``state`` is not changed).

    Raises ``FleqError(DOMAIN_ERROR)`` when the operands are outside the function's window.
    Applied to a halted state this returns an equal state.
    """
    _check_machine(program)
    m, k = len(state.memory), len(program.instructions)
    if state.pc == k and k:
        raise FellOffTheEnd(k)
    if not 0 <= state.pc < k:
        raise ValueError(f"pc {state.pc} is outside the program (0..{k - 1})")
    instruction = program.instructions[state.pc]
    if not isinstance(instruction, FleqInstruction):
        raise ValueError(f"instruction {state.pc} is not a FLEQ instruction: {instruction!r}")
    operands = {"dst": instruction.dst, "src_a": instruction.src_a, "src_b": instruction.src_b,
                "flag": instruction.flag}
    for name, address in operands.items():
        if not 0 <= address < m:
            raise ValueError(f"instruction {state.pc}: {name}={address} is outside 0..{m - 1}")
    if not 0 <= instruction.target < k:
        raise ValueError(f"instruction {state.pc} jumps outside the program: target={instruction.target}")
    function = FLEQ_FUNCTIONS.get(instruction.func)
    if function is None:
        raise ValueError(f"instruction {state.pc} uses an unknown function {instruction.func!r}")

    a = state.memory[instruction.src_a]
    b = state.memory[instruction.src_b] if function.arity == 2 else None
    refusal = function.refusal(a, b)
    if refusal is not None:
        raise FleqError(ErrorCode.DOMAIN_ERROR, f"instruction {instruction.index} ({instruction.func}): {refusal}",
                        instruction.span)
    result = function.apply(a, b)
    dst_shape = state.memory[instruction.dst].shape
    if function.resizes and np.shape(result) != dst_shape and np.ndim(result) == len(dst_shape):
        result = fit_shape(np.asarray(result), dst_shape)
    try:
        result = _frozen(result, dst_shape)
    except ValueError as error:
        raise ValueError(f"instruction {state.pc} ({instruction.func}): result {error}") from None

    memory = list(state.memory)
    memory[instruction.dst] = result
    flag = memory[instruction.flag]
    if flag.shape != ():
        raise ValueError(f"instruction {state.pc}: flag cell {instruction.flag} is not a scalar")
    if flag <= 0.0:
        pc = instruction.target
    else:
        pc = state.pc + 1
    return State(pc=pc, memory=tuple(memory))


def trace(program: LinkedProgram, max_steps: int = DEFAULT_MAX_STEPS) -> Iterator[State]:
    """Yield the state after every executed step, stopping at a fixed point or after ``max_steps``.

    The initial state is not yielded; the number of states yielded equals ``run(...).steps``.
    """
    return trace_to_fixed_point(step, program, initial_state(program), max_steps)


def run(program: LinkedProgram, max_steps: int = DEFAULT_MAX_STEPS, pc: int = 0) -> RunResult:
    """Run from the initial state for at most ``max_steps`` steps (see ``run_to_fixed_point``).

    A domain error raises ``FleqError`` when it happens within the first ``max_steps`` steps.
    """
    return run_to_fixed_point(step, program, initial_state(program, pc), max_steps, (FleqError,))
