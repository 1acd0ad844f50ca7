"""The FLEQ transformer: accuracy contracts of every function block, the branch, domains, lockstep.

Every check runs the real machine (the frozen weights looped over a punch card) and compares with
numpy through the reference interpreter, step by step (tests/support/fleq_checks.py states the bounds).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck as Health
from hypothesis import given, settings
from hypothesis import strategies as st

import fleqc
from fleqc.errors import ErrorCode, FleqError
from fleqc.machines import card_to_program
from fleqc.machines import program_to_card
from tests.support.fleq_checks import assert_fleq_lockstep

RNG = np.random.default_rng(20261124)


def literal(x: float) -> str:
    return repr(float(x))


def cell(label: str, value) -> str:
    value = np.asarray(value, dtype=np.float64)
    if value.ndim == 0:
        return f"{label}: .word {literal(value)}"
    if value.ndim == 1:
        return f"{label}: .vector {value.size} " + ", ".join(map(literal, value))
    rows, cols = value.shape
    return f"{label}: .matrix {rows} {cols} " + ", ".join(map(literal, value.ravel()))


def program(cells: dict, text: list[str]):
    source = "\n".join([".machine fleq", ".data", *(cell(k, v) for k, v in cells.items()), ".text", *text, "halt"])
    return fleqc.compile(source)


def run_lockstep(prog, max_steps=50):
    return assert_fleq_lockstep(prog, program_to_card(prog), max_steps)


def magnitudes(shape, lo, hi, signed=True):
    x = 10.0 ** RNG.uniform(lo, hi, shape)
    return x * RNG.choice([-1.0, 1.0], shape) if signed else x


def unary_case(func, values):
    cells = {f"x{i}": v for i, v in enumerate(values)}
    shape = (lambda v: v.T) if func == "transpose" else (lambda v: v)
    cells.update({f"y{i}": np.zeros_like(shape(v)) for i, v in enumerate(values)})
    return program(cells, [f"{func} y{i}, x{i}" for i in range(len(values))])


CONTRACT_INPUTS = {
    "mov": lambda: [magnitudes((8, 8), -300, 300), magnitudes((8,), -5, 5)],
    "transpose": lambda: [magnitudes((3, 5), -300, 300), magnitudes((8, 8), -300, 300)],
    "relu": lambda: [magnitudes((8, 8), -300, 300), np.array([0.0, -0.0, 5e-324, -5e-324])],
    "sigmoid": lambda: [RNG.uniform(-800, 800, (8, 8)), magnitudes((8, 8), -300, 300)],
    "exp": lambda: [RNG.uniform(-708, 693, (8, 8)), RNG.uniform(-40, 40, (8, 8))],
    "recip": lambda: [magnitudes((8, 8), -24, 24), magnitudes((8, 8), -1, 1)],
    "sqrt": lambda: [magnitudes((8, 8), -24, 24, signed=False), np.array([0.0, 1.0, 2.0, 0.25])],
    "log": lambda: [magnitudes((8, 8), -24, 24, signed=False),
                    1.0 + magnitudes((8, 8), -12, -1)],
}


@pytest.mark.parametrize("func", sorted(CONTRACT_INPUTS))
def test_unary_block_meets_its_bound(func):
    steps, halted = run_lockstep(unary_case(func, CONTRACT_INPUTS[func]()))
    assert halted and steps == 2


@pytest.mark.parametrize("func", ["add", "sub"])
def test_add_and_sub_are_bit_exact_over_all_exponents(func):
    cells = {"a": magnitudes((8, 8), -300, 300), "b": magnitudes((8, 8), -300, 300), "c": np.zeros((8, 8)),
             "u": magnitudes((5,), -2, 2), "v": magnitudes((5,), -2, 2), "w": np.zeros(5)}
    assert run_lockstep(program(cells, [f"{func} c, a, b", f"{func} w, u, v", f"{func} a, a, a"])) == (3, True)


def test_mul_elementwise_and_broadcast_within_1e_9():
    cells = {"a": magnitudes((8, 8), -100, 100), "b": magnitudes((8, 8), -28, 28), "c": np.zeros((8, 8)),
             "s": -3.25, "t": 1e-20, "v": magnitudes((6,), -10, 10), "w": np.zeros(6), "z": 0.0}
    text = ["mul c, a, b", "mul c, s, b", "mul c, a, t", "mul w, v, s", "mul z, s, t", "mul c, b, z"]
    assert run_lockstep(program(cells, text)) == (6, True)


def test_matmul_all_shape_pairs_within_componentwise_1e_9():
    cells = {"A": magnitudes((8, 8), -5, 5), "B": magnitudes((8, 8), -5, 5), "C": np.zeros((8, 8)),
             "M": magnitudes((3, 5), -3, 3), "N": magnitudes((5, 2), -3, 3), "P": np.zeros((3, 2)),
             "u": magnitudes((5,), -3, 3), "v": magnitudes((3,), -3, 3), "Mu": np.zeros(3), "vM": np.zeros(5),
             "d": 0.0}
    text = ["matmul C, A, B", "matmul P, M, N", "matmul Mu, M, u", "matmul vM, v, M", "matmul d, u, u"]
    assert run_lockstep(program(cells, text)) == (5, True)
    # normwise relative error of a well-scaled product: far inside 1e-9
    prog = program({"A": RNG.uniform(-1, 1, (8, 8)), "B": RNG.uniform(-1, 1, (8, 8)), "C": np.zeros((8, 8))},
                   ["matmul C, A, B"])
    result = fleqc.run(prog)
    exact = np.matmul(prog.cells[0].value, prog.cells[1].value)
    assert np.linalg.norm(result.memory["C"] - exact) <= 1e-9 * np.linalg.norm(exact)


TINY = 2.0**-1074
SMALL = 2.0**-60  # the exact sign's split (fleqc.blocks.exact.sign_a): both sides of it
FLAGS = [0.0, -0.0, TINY, -TINY, 2 * TINY, 2.0**-1022, 1e-300, 1e-17, 2.0**-54, 2.0**-53, SMALL / 2,
         SMALL - SMALL * 2.0**-53, SMALL, SMALL + SMALL * 2.0**-52, 2 * SMALL, -SMALL, 1e-9, -1e-9, 1.0, -1.0,
         1e300, -1e300, 2.0**1000, -(2.0**1000)]


@pytest.mark.parametrize("flag_is_dst", [False, True], ids=["read", "dst"])
def test_branch_is_exact_for_every_float(flag_is_dst):
    """`mem[flag] <= 0` decides the branch bit for bit, down to 2^-1074 and up to 2^1000, for the flag
    read from memory and for the flag that is the destination (then the new value, from `sub f, f,
    zero`): no softmax rounds it (the exact sign, fleqc.blocks.exact). Flag i adds 2^i to ``hits``
    when it does not branch, so ``hits`` records every decision."""
    cells = {f"f{i}": x for i, x in enumerate(FLAGS)}
    cells.update({"hits": 0.0, "zero": 0.0} | {f"w{i}": 2.0**i for i in range(len(FLAGS))})
    text = []
    for i in range(len(FLAGS)):
        jump = f"fleq f{i}, sub, f{i}, zero, f{i}, t{i}" if flag_is_dst else f"jle f{i}, t{i}"
        text += [jump, f"add hits, hits, w{i}", f"t{i}: mov zero, zero"]
    prog = program(cells, text)
    result = fleqc.run(prog)
    reference = fleqc.run(prog, backend="reference")
    assert result.memory["hits"] == sum(2.0**i for i, x in enumerate(FLAGS) if x > 0) == reference.memory["hits"]
    assert all(np.array_equal(result.memory[k], reference.memory[k]) for k in reference.memory)
    assert result.steps == reference.steps


def test_flag_equal_to_destination_reads_the_new_value():
    prog = program({"x": 3.0, "one": 1.0, "n": 0.0},
                   ["loop: add n, n, one", "fleq x, sub, x, one, x, done", "jmp loop", "done: halt"])
    steps, halted = run_lockstep(prog)
    assert halted and fleqc.run(prog).memory["n"] == 3.0


@pytest.mark.parametrize("func,value", [("recip", 0.0), ("sqrt", -4.0), ("log", 0.0), ("log", -1.0), ("exp", 1000.0),
                                        ("recip", 1e30), ("log", 1e-30), ("sqrt", 1e-30), ("sqrt", -1e-30),
                                        ("mul", 6e200), ("mul", 1e300)])
def test_domain_errors_on_both_backends(func, value):
    """Outside a window both backends refuse, naming the instruction's line: never a wrong answer
    (the machine's sqrt(1e-30) was 0)."""
    prog = program({"x": value, "y": 0.0, "two": 2.0e100}, ["mul y, two, x" if func == "mul" else f"{func} y, x"])
    for backend in ("reference", "transformer"):
        with pytest.raises(FleqError) as error:
            fleqc.run(prog, backend=backend)
        assert error.value.code == ErrorCode.DOMAIN_ERROR and func in str(error.value)
        assert error.value.span is not None and error.value.span.line > 0


def test_hardmax_runs_fleq_with_the_same_bits():
    """Every softmax weight of the machine is 0, 1 or 1/2^k, so hardmax runs it alike."""
    prog = program({"x": 1.5, "y": 0.0}, ["sigmoid y, x", "mul x, x, y", "recip y, x"])
    soft, hard = fleqc.run(prog), fleqc.run(prog, mode="hardmax")
    assert soft.steps == hard.steps and all(np.array_equal(soft.memory[k], hard.memory[k]) for k in soft.memory)


def test_card_round_trip_gives_the_same_program():
    prog = fleqc.compile("samples/fleq_matrix_chain.fleq")
    back = card_to_program(program_to_card(prog))
    assert [(i.func, i.dst, i.src_a, i.flag, i.target) for i in back.instructions] == [
        (i.func, i.dst, i.src_a, i.flag, i.target) for i in prog.instructions]
    assert all(np.array_equal(a.value, b.value) for a, b in zip(back.cells, prog.cells))


def test_one_machine_runs_different_programs():
    from fleqc.machines import weights_for

    first = program_to_card(fleqc.compile("samples/fleq_polynomial.fleq"), columns=128)
    second = program_to_card(fleqc.compile("samples/fleq_normalize.fleq"), columns=128)
    assert first.config == second.config
    model = weights_for(first.config)
    for card in (first, second):
        prog = card_to_program(card)
        assert fleqc.run(card, weights=model).steps == fleqc.run(prog, backend="reference").steps


# -- random programs ------------------------------------------------------------------------------

SHAPES = [(), (), (3,), (2, 3), (3, 2), (3, 3)]
UNARY = ["mov", "transpose", "relu", "sigmoid", "exp", "recip", "sqrt", "log"]
BINARY = ["add", "sub", "mul", "matmul"]


@st.composite
def random_fleq_programs(draw):
    """Random cells (values +-[0.25, 4]) and instructions with linked-compatible shapes and branches."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    cells = {}
    by_shape: dict = {}
    for i, shape in enumerate(SHAPES * 2):
        value = rng.uniform(0.25, 4.0, shape) * rng.choice([-1.0, 1.0], shape)
        cells[f"c{i}"] = value
        by_shape.setdefault(shape, []).append(f"c{i}")
    pick = lambda names: names[int(rng.integers(len(names)))]  # noqa: E731
    k = draw(st.integers(2, 10))
    text = []
    for j in range(k):
        func = draw(st.sampled_from(UNARY + BINARY))
        shape = draw(st.sampled_from(sorted(by_shape)))
        a = pick(by_shape[shape])
        if func in UNARY:
            out = tuple(reversed(shape)) if func == "transpose" else shape
            operands = [a]
        elif func == "matmul":
            pairs = [((2, 3), (3, 2), (2, 2)), ((3, 2), (2, 3), (3, 3)), ((3,), (3,), ()), ((2, 3), (3,), (2,)),
                     ((3, 3), (3, 3), (3, 3)), ((3,), (3, 2), (2,))]
            sa, sb, out = pairs[int(rng.integers(len(pairs)))]
            by_shape.setdefault(out, [])
            if not by_shape[out] or out == (2,):
                cells[f"r{j}"] = np.zeros(out)
                by_shape[out].append(f"r{j}")
            operands = [pick(by_shape[sa]), pick(by_shape[sb])]
        elif func == "mul" and shape != () and rng.random() < 0.3:
            out, operands = shape, [a, pick(by_shape[()])]
        else:
            out, operands = shape, [a, pick(by_shape[shape])]
        dst = pick(by_shape[out])
        flag = pick(by_shape[()])
        target = f"L{int(rng.integers(k + 1))}"
        text.append(f"L{j}: fleq {dst}, {func}, {operands[0]}, {operands[-1]}, {flag}, {target}")
    text.append(f"L{k}: halt")
    return program(cells, text)


@settings(max_examples=12, deadline=None, suppress_health_check=[Health.too_slow])
@given(random_fleq_programs())
def test_random_programs_run_in_lockstep(prog):
    assert_fleq_lockstep(prog, program_to_card(prog), max_steps=12)


def test_overflowing_result_is_the_same_domain_error_on_both_backends():
    prog = program({"x": 1e200, "y": 0.0, "z": 1e150}, ["add y, x, x", "mul y, x, z"])
    for backend in ("reference", "transformer"):
        with pytest.raises(FleqError) as error:
            fleqc.run(prog, backend=backend)
        assert error.value.code == ErrorCode.DOMAIN_ERROR and "instruction 1 (mul)" in str(error.value)


def test_larger_cells_by_configuration():
    """A 10x10 matrix picks a machine with 10x10 cells (100 lanes); --cell 4 is too small for it."""
    A = RNG.uniform(-2, 2, (10, 10))
    prog = program({"A": A, "B": np.zeros((10, 10)), "s": 0.0}, ["matmul B, A, A", "transpose B, B", "add s, s, s"])
    card = program_to_card(prog)
    assert card.config.cell == 10 and card.config.lanes == 100
    steps, halted = assert_fleq_lockstep(prog, card, 10)
    assert halted and steps == 3
    with pytest.raises(FleqError) as error:
        program_to_card(prog, cell=4)
    assert error.value.code == ErrorCode.PROGRAM_TOO_LARGE and "--cell 10" in str(error.value)
