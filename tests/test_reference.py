"""Unit tests of the reference interpreters (fleqc.machines.subleq.reference, fleqc.machines.fleq.reference) on hand-built programs.

No front end is involved: every program here is a LinkedProgram written out by hand, so these tests
pin the semantics down independently of the parser and linker.
"""

from __future__ import annotations

import numpy as np
import pytest

from fleqc.errors import ErrorCode, FleqError, Span
from fleqc.machines.fleq import reference as fleq
from fleqc.machines.subleq import reference as subleq
from fleqc.state import RunResult, State, memory_by_label
from fleqc.program import Cell, FleqInstruction, LinkedProgram, SubleqInstruction, Symbol


# ----------------------------------------------------------------------------------------------
# helpers


def sq(values, instructions, bits=16, symbols=None) -> LinkedProgram:
    """A SUBLEQ program from cell values and (a, b, target) triples."""
    cells = tuple(Cell(i, v) for i, v in enumerate(values))
    code = tuple(SubleqInstruction(i, a, b, c) for i, (a, b, c) in enumerate(instructions))
    return LinkedProgram("subleq", bits, cells, code, symbols or {})


def fl(values, instructions, symbols=None) -> LinkedProgram:
    """A FLEQ program from cell values (anything np.array takes) and
    (func, dst, src_a, src_b, flag, target) tuples; an optional 7th item is the span."""
    cells = []
    for i, v in enumerate(values):
        array = np.array(v, dtype=np.float64)
        cells.append(Cell(i, array, array.shape))
    code = tuple(FleqInstruction(i, *spec) for i, spec in enumerate(instructions))
    return LinkedProgram("fleq", 0, tuple(cells), code, symbols or {})


# ----------------------------------------------------------------------------------------------
# SUBLEQ: arithmetic and wraparound


@pytest.mark.parametrize("bits", range(4, 25))
def test_wraparound_at_the_top_and_bottom(bits):
    top, bottom = (1 << (bits - 1)) - 1, -(1 << (bits - 1))
    # cells: 0 top, 1 bottom, 2 one, 3 minus_one
    program = sq(
        [top, bottom, 1, -1],
        [
            (3, 0, 2),  # top - (-1) wraps to bottom (<= 0): branch to 2
            (0, 0, 1),  # never executed
            (2, 1, 3),  # bottom - 1 wraps to top (> 0): next, 3
            (2, 2, 3),  # clears cell 2 and jumps to itself; then a fixed point
        ],
        bits=bits,
    )
    s1 = subleq.step(program, subleq.initial_state(program))
    assert s1 == State(2, (bottom, bottom, 1, -1))
    s2 = subleq.step(program, s1)
    assert s2 == State(3, (bottom, top, 1, -1))
    result = subleq.run(program)
    assert result == RunResult(True, 3, State(3, (bottom, top, 0, -1)))


@pytest.mark.parametrize("bits", range(4, 25))
def test_large_differences_wrap_modulo_2_to_the_n(bits):
    top, bottom = (1 << (bits - 1)) - 1, -(1 << (bits - 1))
    # bottom - top = -(2^N - 1) = 1 (mod 2^N); top - bottom = 2^N - 1 = -1 (mod 2^N)
    program = sq([top, bottom], [(0, 1, 1), (1, 0, 1)], bits=bits)
    states = list(subleq.trace(program, max_steps=2))
    assert states[0].memory == (top, 1) and states[0].pc == 1  # 1 > 0: next
    assert states[1].memory == (top - 1, 1) and states[1].pc == 2  # top - 1 > 0 for N >= 3: next


def test_wrap_function():
    assert subleq.wrap(127, 8) == 127
    assert subleq.wrap(128, 8) == -128
    assert subleq.wrap(-129, 8) == 127
    assert subleq.wrap(255, 8) == -1
    assert subleq.wrap(256, 8) == 0
    assert subleq.wrap(-1, 4) == -1
    assert subleq.wrap(8, 4) == -8
    assert subleq.wrap(114 - (-101), 8) == -41  # the example in the paper's trace


# ----------------------------------------------------------------------------------------------
# SUBLEQ: branches


@pytest.mark.parametrize(
    "a, b, expected_b, expected_pc",
    [
        (5, 5, 0, 7),  # result 0: branch
        (5, 3, -2, 7),  # negative: branch
        (5, 9, 4, 1),  # positive: next
        (-5, 0, 5, 1),  # subtracting a negative: positive, next
        (0, 0, 0, 7),  # zero minus zero: branch
    ],
)
def test_branch_on_result(a, b, expected_b, expected_pc):
    program = sq([a, b], [(0, 1, 7)] + [(0, 0, i) for i in range(1, 8)])
    state = subleq.step(program, subleq.initial_state(program))
    assert state.pc == expected_pc
    assert state.memory == (a, expected_b)


def test_same_cell_operands_clear_and_branch():
    program = sq([42], [(0, 0, 0)])
    state = subleq.step(program, subleq.initial_state(program))
    assert state == State(0, (0,))
    # then it is a fixed point: one counted step
    assert subleq.run(program) == RunResult(True, 1, State(0, (0,)))


def test_step_is_pure():
    program = sq([1, 5], [(0, 1, 0)])
    start = subleq.initial_state(program)
    after = subleq.step(program, start)
    assert start == State(0, (1, 5))
    assert after == State(1, (1, 4))


# ----------------------------------------------------------------------------------------------
# SUBLEQ: halting at a fixed point, step counts, max_steps, trace


def test_halt_at_once_counts_no_step():
    program = sq([0, 9], [(0, 0, 0)])  # halt: subleq zero, zero, self
    assert subleq.run(program) == RunResult(True, 0, State(0, (0, 9)))
    assert list(subleq.trace(program)) == []


def test_no_op_that_jumps_to_itself_is_a_fixed_point():
    program = sq([0, -3], [(0, 1, 0)])  # -3 - 0 = -3 <= 0: same value, same pc
    assert subleq.run(program) == RunResult(True, 0, State(0, (0, -3)))


def test_step_changing_only_memory_is_counted():
    # x -= 1 jumping to itself: memory changes each time, pc never does
    program = sq([1, 0], [(0, 1, 0)], bits=4)
    result = subleq.run(program, max_steps=5)
    assert result == RunResult(False, 5, State(0, (1, -5)))


def test_step_changing_only_pc_is_counted():
    # jumps through three instructions (memory never changes) into a halt
    program = sq([0], [(0, 0, 1), (0, 0, 2), (0, 0, 3), (0, 0, 3)])
    assert subleq.run(program) == RunResult(True, 3, State(3, (0,)))


def countdown(n: int) -> LinkedProgram:
    """x = n; loop: x -= 1, if x <= 0 goto halt else goto loop. Takes exactly 2n - 1 steps."""
    # cells: 0 x, 1 one, 2 zero
    return sq([n, 1, 0], [(1, 0, 2), (2, 2, 0), (2, 2, 2)])


@pytest.mark.parametrize("n", [1, 2, 5, 17])
def test_countdown_step_count(n):
    result = subleq.run(countdown(n))
    assert result == RunResult(True, 2 * n - 1, State(2, (0, 1, 0)))


def test_max_steps_boundary():
    program = countdown(5)  # 9 steps, then halted
    assert subleq.run(program, max_steps=9) == RunResult(True, 9, State(2, (0, 1, 0)))
    assert subleq.run(program, max_steps=8) == RunResult(False, 8, State(0, (1, 1, 0)))
    assert subleq.run(program, max_steps=0) == RunResult(False, 0, State(0, (5, 1, 0)))
    with pytest.raises(ValueError):
        subleq.run(program, max_steps=-1)


def test_trace_yields_every_state_and_matches_run():
    program = countdown(3)
    states = list(subleq.trace(program))
    assert [s.pc for s in states] == [1, 0, 1, 0, 2]
    assert [s.memory[0] for s in states] == [2, 2, 1, 1, 0]
    assert states[-1] == subleq.run(program).state
    assert len(list(subleq.trace(program, max_steps=2))) == 2


def test_halted_state_steps_to_an_equal_state():
    program = countdown(2)
    final = subleq.run(program).state
    assert subleq.step(program, final) == final


# ----------------------------------------------------------------------------------------------
# SUBLEQ: malformed hand-built programs are refused loudly


def test_falling_off_the_end_raises_on_the_next_step():
    program = sq([1, 5], [(0, 1, 0)])  # 5 - 1 > 0: pc = 1 = k
    with pytest.raises(ValueError, match="pc 1 is outside"):
        subleq.run(program)


@pytest.mark.parametrize("instruction", [(0, 2, 0), (-1, 0, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)])
def test_operands_out_of_range_raise(instruction):
    with pytest.raises(ValueError):
        subleq.step(sq([0, 0], [instruction]), State(0, (0, 0)))


def test_initial_values_must_fit_the_width():
    with pytest.raises(ValueError):
        subleq.initial_state(sq([8], [(0, 0, 0)], bits=4))
    with pytest.raises(ValueError):
        subleq.initial_state(sq([-9], [(0, 0, 0)], bits=4))
    assert subleq.initial_state(sq([7, -8], [(0, 0, 0)], bits=4)).memory == (7, -8)


def test_machine_kinds_are_checked():
    with pytest.raises(ValueError):
        subleq.run(fl([0.0], [("mov", 0, 0, 0, 0, 0)]))
    with pytest.raises(ValueError):
        fleq.run(sq([0], [(0, 0, 0)]))


# ----------------------------------------------------------------------------------------------
# SUBLEQ: the paper's programs and per-step trace (Giannou et al., github.com/jysohn1108/
# Looped-Transformer), copied from the corpus files into literals here. Their commands are column
# indices in a Harvard layout: s scratch columns, then m memory columns, then the commands; so
# memory address = a - s and instruction index = c - s - m.


def from_columns(s, init_mem, commands, bits) -> LinkedProgram:
    m = len(init_mem)
    return sq(init_mem, [(a - s, b - s, c - s - m) for a, b, c in commands], bits=bits)


# random_trace_N8: inputs/subleq_cmds.csv, inputs/subleq_init_mem.csv (s = 8, m = 8, N = 8)
RANDOM_N8_COMMANDS = [
    (11, 15, 18), (14, 12, 21), (11, 10, 25), (11, 15, 31), (13, 10, 27), (13, 14, 29),
    (10, 14, 16), (13, 11, 22), (15, 13, 20), (13, 15, 17), (12, 13, 25), (12, 15, 30),
    (12, 15, 30), (12, 14, 28), (11, 13, 23), (8, 9, 31),
]
RANDOM_N8_INIT = [0, -1, 36, -57, 3, -62, 16, -58]

# outputs/subleq/manual_subleq_results.csv: per row, memory BEFORE the step, then a, b, c (columns),
# mem[a], mem[b], mem[b] - mem[a] wrapped to 8 bits, flag (1 = branch), next pc (column).
RANDOM_N8_TRACE = """
0,-1,36,-57,3,-62,16,-58,11,15,18,-57,-58,-1,1,18
0,-1,36,-57,3,-62,16,-1,11,10,25,-57,36,93,0,19
0,-1,93,-57,3,-62,16,-1,11,15,31,-57,-1,56,0,20
0,-1,93,-57,3,-62,16,56,13,10,27,-62,93,-101,1,27
0,-1,-101,-57,3,-62,16,56,12,15,30,3,56,53,0,28
0,-1,-101,-57,3,-62,16,53,12,15,30,3,53,50,0,29
0,-1,-101,-57,3,-62,16,50,12,14,28,3,16,13,0,30
0,-1,-101,-57,3,-62,13,50,11,13,23,-57,-62,-5,1,23
0,-1,-101,-57,3,-5,13,50,13,11,22,-5,-57,-52,1,22
0,-1,-101,-52,3,-5,13,50,10,14,16,-101,13,114,0,23
0,-1,-101,-52,3,-5,114,50,13,11,22,-5,-52,-47,1,22
0,-1,-101,-47,3,-5,114,50,10,14,16,-101,114,-41,1,16
0,-1,-101,-47,3,-5,-41,50,11,15,18,-47,50,97,0,17
0,-1,-101,-47,3,-5,-41,97,14,12,21,-41,3,44,0,18
0,-1,-101,-47,44,-5,-41,97,11,10,25,-47,-101,-54,1,25
0,-1,-54,-47,44,-5,-41,97,13,15,17,-5,97,102,0,26
0,-1,-54,-47,44,-5,-41,102,12,13,25,44,-5,-49,1,25
0,-1,-54,-47,44,-49,-41,102,13,15,17,-49,102,-105,1,17
0,-1,-54,-47,44,-49,-41,-105,14,12,21,-41,44,85,0,18
0,-1,-54,-47,85,-49,-41,-105,11,10,25,-47,-54,-7,1,25
"""
RANDOM_N8_FINAL = [0, -1, -7, -47, 85, -49, -41, -105]  # giannou_programs.json, after 20 steps


def test_giannou_random_trace_step_by_step():
    s, m = 8, 8
    program = from_columns(s, RANDOM_N8_INIT, RANDOM_N8_COMMANDS, bits=8)
    rows = [[int(x) for x in line.split(",")] for line in RANDOM_N8_TRACE.split()]
    assert len(rows) == 20
    state = subleq.initial_state(program)
    for number, row in enumerate(rows):
        before, (a, b, c, mem_a, mem_b, result, flag, p_next) = row[:8], row[8:]
        assert list(state.memory) == before, f"memory before step {number}"
        instruction = program.instructions[state.pc]
        assert (instruction.a + s, instruction.b + s, instruction.target + s + m) == (a, b, c)
        assert (state.memory[instruction.a], state.memory[instruction.b]) == (mem_a, mem_b)
        state = subleq.step(program, state)
        assert state.memory[instruction.b] == result
        assert state.pc + s + m == p_next
        assert (state.pc == instruction.target) == (flag == 1)
    assert list(state.memory) == RANDOM_N8_FINAL
    assert subleq.run(program, max_steps=20) == RunResult(False, 20, state)


# factorial_7 (inputs/ftrl_cmds.csv, ftrl_init_mem.csv; s = 2, N = 15): 7! = 5040 in mem[2].
FACTORIAL_COMMANDS = [
    (4, 7, 13), (8, 7, 15), (9, 7, 15), (7, 6, 22), (5, 4, 22), (11, 6, 19),
    (10, 10, 16), (5, 5, 20), (4, 5, 21), (10, 10, 14), (3, 2, 22),
]
FACTORIAL_INIT = [-1, 0, 7, -7, 0, 0, -2, -1, 0, 1]
FACTORIAL_FINAL = [-1, 0, 5040, -5040, 0, 0, -2, -1, 0, 1]


def test_giannou_factorial_runs_to_its_fixed_point():
    program = from_columns(2, FACTORIAL_INIT, FACTORIAL_COMMANDS, bits=15)
    result = subleq.run(program)
    assert result.halted
    assert list(result.state.memory) == FACTORIAL_FINAL
    # the json's steps_until_first_EOF_exec = 69 counts the execution of the final, changeless
    # command; under the fixed-point rule that one is not executed and not counted
    assert result.steps == 68
    assert result.state.pc == 10


# ----------------------------------------------------------------------------------------------
# State and labels


def test_state_equality_is_exact_for_arrays():
    a = State(0, (np.array(1.0), np.array([1.0, 2.0])))
    assert a.equal(State(0, (np.array(1.0), np.array([1.0, 2.0]))))
    assert not a.equal(State(1, (np.array(1.0), np.array([1.0, 2.0]))))
    assert not a.equal(State(0, (np.array(1.0), np.array([1.0, 2.0 + 1e-15]))))
    assert not a.equal(State(0, (np.array(1.0), np.array([[1.0, 2.0]]))))  # shape
    assert not a.equal(State(0, (np.array(1.0),)))
    assert State(0, (np.array(np.nan),)).equal(State(0, (np.array(np.nan),)))
    assert not State(0, (np.array(0.0),)).equal(State(0, (np.array(-0.0),)))
    assert not State(0, (1,)).equal(State(0, (np.array(1.0),)))


def test_state_equality_and_hash_for_ints():
    assert State(3, (1, -2)) == State(3, (1, -2))
    assert State(3, (1, -2)) != State(3, (1, -3))
    assert hash(State(3, (1, -2))) == hash(State(3, (1, -2)))
    assert len({State(0, (np.array(2.0),)), State(0, (np.array(2.0),))}) == 1


def test_memory_by_label():
    symbols = {
        "x": Symbol("x", "data", 0),
        "xs": Symbol("xs", "data", 1, length=3),
        "__zero": Symbol("__zero", "data", 4),
        "loop": Symbol("loop", "code", 0),
    }
    program = sq([5, 1, 2, 3, 0], [(4, 4, 0)], symbols=symbols)
    assert memory_by_label(program, subleq.initial_state(program).memory) == {"x": 5, "xs": [1, 2, 3]}


# ----------------------------------------------------------------------------------------------
# FLEQ


def run_one(func, a, b=None, dst=0.0):
    """Apply one FLEQ function via a one-instruction program; returns the new dst value."""
    values = [dst, a, a if b is None else b, 1.0]
    program = fl(values, [(func, 0, 1, 2, 3, 0)])
    return fleq.step(program, fleq.initial_state(program)).memory[0]


@pytest.mark.parametrize(
    "func, a, b, dst, expected",
    [
        ("add", [1.0, 2.0], [10.0, 20.0], [0.0, 0.0], [11.0, 22.0]),
        ("sub", 1.5, 4.0, 0.0, -2.5),
        ("mul", [1.0, -2.0], 3.0, [0.0, 0.0], [3.0, -6.0]),
        ("mul", 2.0, [[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]], [[2.0, 4.0], [6.0, 8.0]]),
        ("matmul", [[1.0, 2.0], [3.0, 4.0]], [1.0, 1.0], [0.0, 0.0], [3.0, 7.0]),
        ("matmul", [1.0, 2.0, 2.0], [1.0, 2.0, 2.0], 0.0, 9.0),
        ("transpose", [[1.0, 2.0, 3.0]], None, [[0.0], [0.0], [0.0]], [[1.0], [2.0], [3.0]]),
        ("mov", [4.0, 5.0], None, [0.0, 0.0], [4.0, 5.0]),
        ("relu", [-1.0, 0.0, 2.0], None, [9.0, 9.0, 9.0], [0.0, 0.0, 2.0]),
        ("sigmoid", 30.0, None, 9.0, 1.0),  # exactly 1 from x = 22 on (fleqc.machines.fleq.tables)
        ("recip", [2.0, -4.0], None, [0.0, 0.0], [0.5, -0.25]),
        ("sqrt", 16.0, None, 0.0, 4.0),
        ("exp", 0.0, None, 9.0, 1.0),
        ("log", 1.0, None, 9.0, 0.0),
    ],
)
def test_fleq_functions(func, a, b, dst, expected):
    result = run_one(func, a, b, dst)
    assert result.dtype == np.float64
    np.testing.assert_allclose(result, np.array(expected), rtol=1e-15, atol=0)
    assert result.shape == np.array(expected).shape


def test_unary_function_ignores_src_b():
    # src_b points at a matrix; a unary function must not look at it
    program = fl([0.0, 9.0, [[1.0, 2.0]], 1.0], [("sqrt", 0, 1, 2, 3, 0)])
    assert fleq.step(program, fleq.initial_state(program)).memory[0] == 3.0


def test_fleq_operands_are_read_before_the_write_and_the_flag_after_it():
    # cell 0 = 2.0, cell 1 = 2.0. sub 0 <- 0 - 1 uses the old value 2.0, and the flag (cell 0)
    # is read after the write: 0.0 <= 0, so the branch is taken.
    program = fl([2.0, 2.0], [("sub", 0, 0, 1, 0, 1), ("mov", 1, 1, 1, 1, 1)])
    state = fleq.step(program, fleq.initial_state(program))
    assert state.pc == 1 and state.memory[0] == 0.0


@pytest.mark.parametrize("flag, expected_pc", [(0.0, 2), (-0.0, 2), (-1e-300, 2), (1e-300, 1), (np.nan, 1), (-np.inf, 2)])
def test_fleq_branch_on_flag(flag, expected_pc):
    # cells: 0 dummy, 1 flag; instruction 0: dummy = mov dummy, branch on flag to 2
    program = fl([0.0, flag], [("mov", 0, 0, 0, 1, 2), ("mov", 0, 0, 0, 1, 1), ("mov", 0, 0, 0, 1, 2)])
    assert fleq.step(program, fleq.initial_state(program)).pc == expected_pc


def test_fleq_halting_and_steps():
    # count 3.0 down to 0 (sub, branch on the counter to the halt) with a jump back: 5 steps
    # cells: 0 counter, 1 one, 2 dummy, 3 zero flag
    program = fl(
        [3.0, 1.0, 0.0, 0.0],
        [("sub", 0, 0, 1, 0, 2), ("mov", 2, 2, 2, 3, 0), ("mov", 2, 2, 2, 3, 2)],
    )
    result = fleq.run(program)
    assert result.halted and result.steps == 5 and result.state.pc == 2
    assert result.state.memory[0] == 0.0
    states = list(fleq.trace(program))
    assert len(states) == 5 and states[-1] == result.state
    assert fleq.run(program, max_steps=4) == RunResult(False, 4, states[3])
    assert fleq.run(program, max_steps=5) == RunResult(True, 5, states[4])


def test_fleq_halt_at_once_and_changeless_self_jump():
    # mov x <- x jumping to itself changes nothing: a fixed point, no step
    program = fl([[1.0, 2.0], 0.0], [("mov", 0, 0, 0, 1, 0)])
    result = fleq.run(program)
    assert result.halted and result.steps == 0


def test_fleq_step_that_rewrites_minus_zero_is_a_change():
    # writing -0.0 over 0.0 changes the cell bit-for-bit, so this self-jump is one counted step;
    # writing it again changes nothing: a fixed point
    program = fl([0.0, -0.0, 0.0], [("mov", 0, 1, 1, 2, 0)])
    result = fleq.run(program, max_steps=10)
    assert result.halted and result.steps == 1
    assert np.signbit(result.state.memory[0])


def test_fleq_states_are_read_only():
    program = fl([[1.0, 2.0], 1.0], [("mov", 0, 0, 0, 1, 0)])
    state = fleq.initial_state(program)
    with pytest.raises(ValueError):
        state.memory[0][0] = 5.0
    # and the program's own cells are not aliased
    assert program.cells[0].value is not state.memory[0]


@pytest.mark.parametrize("func, value", [("sqrt", -1.0), ("recip", 0.0), ("log", 0.0), ("log", -2.0), ("sqrt", [4.0, -4.0])])
def test_fleq_domain_errors(func, value):
    span = Span("prog.fleq", 7, 9, 7, 20)
    # instruction 1 is the bad one
    dst = np.zeros(np.shape(value)).tolist()
    program = fl([dst, value, 1.0], [("mov", 0, 0, 0, 2, 1), (func, 0, 1, 1, 2, 2, span), ("mov", 0, 0, 0, 2, 2)])
    with pytest.raises(FleqError) as caught:
        fleq.run(program)
    error = caught.value
    assert error.code is ErrorCode.DOMAIN_ERROR
    assert error.span == span
    assert "instruction 1" in error.message and func in error.message


def test_fleq_domain_error_past_max_steps_is_not_raised():
    program = fl([0.0, -1.0, 1.0], [("mov", 0, 0, 0, 2, 1), ("sqrt", 0, 1, 1, 2, 1)])
    assert fleq.run(program, max_steps=1).halted is False
    with pytest.raises(FleqError):
        fleq.run(program, max_steps=2)


def test_fleq_malformed_programs_raise():
    with pytest.raises(ValueError, match="unknown function"):
        fleq.step(fl([0.0], [("frobnicate", 0, 0, 0, 0, 0)]), State(0, (np.array(0.0),)))
    with pytest.raises(ValueError, match="shape"):  # result (2,) into a scalar cell
        program = fl([0.0, [1.0, 2.0], 1.0], [("mov", 0, 1, 1, 2, 0)])
        fleq.step(program, fleq.initial_state(program))
    with pytest.raises(ValueError, match="scalar"):  # vector flag
        program = fl([[1.0, 2.0]], [("mov", 0, 0, 0, 0, 0)])
        fleq.step(program, fleq.initial_state(program))
    with pytest.raises(ValueError, match="outside"):
        program = fl([0.0], [("mov", 0, 0, 0, 0, 0)])
        fleq.step(program, State(1, program.initial_memory()))
