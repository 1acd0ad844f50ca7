"""IEEE products for every pair of finite factors (issue 26): a table of hard cases (tiny x normal,
tiny x tiny, results at the subnormal boundary and at its rounding ties, signs, huge x tiny, matmul
with tiny entries), checked bit for bit against numpy's ``a * b`` on the reference interpreter, on
the product block alone (dense pass and incremental engine) and on the FLEQ machine (lockstep with
the sparse pass, the incremental engine, and the dense pass on a few cases).
"""

from __future__ import annotations

import numpy as np
import pytest

import fleqc
from fleqc.machines import program_to_card, weights_for
from fleqc.machines.fleq.functions import FLEQ_FUNCTIONS, matmul, product
from fleqc.transformer.executor import forward
from tests.support.fleq_checks import assert_fleq_lockstep, run_multiplier

T = 2.0**-1074  # the smallest subnormal
N = 2.0**-1022  # the smallest normal

# (name, a, b): IEEE's a * b is the answer, every one of them inside mul's window (|a b| <= 2^1000).
CASES = [
    ("normal x tiny (the issue)", 3.0, 1e-30),
    ("-7 x 1e-300 (the issue)", -7.0, 1e-300),
    ("tiny x normal", 1e-30, 3.0),
    ("normal x the smallest subnormal", 2.5, T),
    ("the smallest subnormal x normal", T, -3.0),
    ("subnormal x 0.5: a tie to even", 3 * T, 0.5),
    ("subnormal x 0.5: a tie, odd", 5 * T, -0.5),
    ("tiny x tiny -> 0", 1e-200, 1e-200),
    ("smallest x smallest -> 0", T, T),
    ("exactly 2^-1075 -> 0 (tie to even)", 2.0**-537, 2.0**-538),
    ("just above 2^-1075 -> 2^-1074", 2.0**-537, 2.0**-538 * (1 + 2.0**-52)),
    ("just below 2^-1075 -> 0", 2.0**-537, 2.0**-538 * (1 - 2.0**-53)),
    ("tiny x tiny -> subnormal", 1e-30, 1e-300),
    ("tiny x tiny -> normal", 1e-150, 1e-150),
    ("tiny x tiny -> 2^-1022 exactly", 2.0**-511, -(2.0**-511)),
    ("just below 2^-1022: rounds up to it", 2.0**-511 * (1 - 2.0**-53), 2.0**-511 * (1 + 2.0**-52)),
    ("just below 2^-1022 by one subnormal step", (2.0**-1022 - T) * 2.0**400, 2.0**-400),
    ("largest subnormal x 1 + 2^-52", N - T, 1 + 2.0**-52),
    ("subnormal x 1 - 2^-53", 7 * T, 1 - 2.0**-53),
    ("subnormal result at a midpoint, error pushes up", 2.0**-1000 * (1 + 2.0**-52), 2.0**-74 * 1.5),
    ("bottom band x bottom band, both subnormal", 2.0**-1030, 2.0**-1040),
    ("2^-960 x 2^-100 (band edge)", 2.0**-960, 2.0**-100),
    ("2^-960 (1 + 2^-52) x 2^-100 (band edge)", 2.0**-960 * (1 + 2.0**-52), -(2.0**-100)),
    ("huge x tiny", 2.0**1000, T),
    ("huge x tiny, normal result", 1e300, 1e-300),
    ("huge x 1e-30", 2.0**1000, 1e-30),
    ("-1.5 2^960 x 2^-1000", -1.5 * 2.0**960, 2.0**-1000),
    ("tiny x huge", -(2.0**-1074), 2.0**1000),
    ("huge x huge inside the limit", 2.0**500, 2.0**499 * 1.5),
    ("the limit exactly", 2.0**500, -(2.0**500)),
    ("near the limit, below", 2.0**999, 2.0 - 2.0**-52),
    ("zero x tiny", 0.0, 1e-300),
    ("tiny x zero", -1e-300, 0.0),
    ("b below the old 2^-96 flush", 2.0**50, 2.0**-97),
    ("b above the old 2^96 window", 2.0**-50, 2.0**97),
]
A = np.array([a for _, a, _ in CASES])
B = np.array([b for _, _, b in CASES])
IDS = [name for name, _, _ in CASES]


def bits(x) -> np.ndarray:
    return (np.asarray(x, dtype=np.float64) + 0.0).view(np.int64)


def ieee(a, b) -> np.ndarray:
    with np.errstate(under="ignore", over="ignore"):
        return np.multiply(a, b) + 0.0


def test_the_cases_are_inside_the_window():
    for name, a, b in CASES:
        assert FLEQ_FUNCTIONS["mul"].refusal(np.float64(a), np.float64(b)) is None, name


def test_the_reference_is_ieee():
    assert np.array_equal(bits(product(A, B)), bits(ieee(A, B)))
    assert np.array_equal(bits(product(B, A)), bits(ieee(A, B)))


@pytest.mark.parametrize("engine", ["dense", "incremental"])
def test_the_product_block_is_ieee(engine):
    a, b = np.concatenate([A, B, -A]), np.concatenate([B, A, B])
    got, _ = run_multiplier(a, b, engine)
    differ = np.flatnonzero(bits(got) != bits(ieee(a, b)))
    assert differ.size == 0, [(a[k], b[k], ieee(a[k], b[k]), got[k]) for k in differ]


def _program(pairs):
    lines = [".machine fleq", ".data"]
    for k, (a, b) in enumerate(pairs):
        lines += [f"a{k}: .word {float(a)!r}", f"b{k}: .word {float(b)!r}", f"p{k}: .word 0.0"]
    lines.append(".text")
    lines += [f"mul p{k}, a{k}, b{k}" for k in range(len(pairs))]
    lines.append("halt")
    return fleqc.compile("\n".join(lines))


def test_mul_on_the_machine_in_lockstep_and_on_the_incremental_engine():
    pairs = list(zip(A, B)) + list(zip(-B, A))
    prog = _program(pairs)
    steps, halted = assert_fleq_lockstep(prog, program_to_card(prog), len(pairs) + 2)
    assert halted and steps == len(pairs)
    want = ieee(np.array([a for a, _ in pairs]), np.array([b for _, b in pairs]))
    for backend, engine in (("transformer", "incremental"), ("reference", "auto")):
        result = fleqc.run(prog, backend=backend, engine=engine)
        got = np.array([float(result.memory[f"p{k}"]) for k in range(len(pairs))])
        assert np.array_equal(bits(got), bits(want)), backend


def test_mul_on_the_machine_by_the_dense_pass():
    """The dense forward pass (the definition) on a few cases."""
    chosen = [1, 5, 9, 10, 19, 23]
    prog = _program([(A[k], B[k]) for k in chosen])
    card = program_to_card(prog)
    model = weights_for(card.config)
    steps, halted = assert_fleq_lockstep(prog, card, len(chosen) + 2, machine_pass=lambda X: forward(model, X))
    assert halted and steps == len(chosen)


def _matmul_program(A_: np.ndarray, B_: np.ndarray):
    def matrix(name, value):
        return f"{name}: .matrix {value.shape[0]} {value.shape[1]} " + ", ".join(repr(float(x)) for x in value.ravel())

    C = np.zeros((A_.shape[0], B_.shape[1]))
    source = "\n".join([".machine fleq", ".data", matrix("A", A_), matrix("B", B_), matrix("C", C), ".text",
                        "matmul C, A, B", "halt"])
    return fleqc.compile(source)


def _tiny_matrices(rng):
    n = 8
    I = np.eye(n)
    M = np.ldexp(rng.uniform(1, 2, (n, n)), rng.integers(-1074, -900, (n, n))) * rng.choice([-1, 1], (n, n))
    H = np.ldexp(rng.uniform(1, 2, (n, n)), rng.integers(-100, 900, (n, n))) * rng.choice([-1, 1], (n, n))
    S = np.ldexp(rng.uniform(1, 2, (n, n)), rng.integers(-600, -400, (n, n)))
    return [("I @ 1e-30 I", I, 1e-30 * I), ("1e-30 I @ I", 1e-30 * I, I), ("tiny @ tiny", S, S),
            ("huge @ subnormal", H * 2.0**-900, M)]


@pytest.mark.parametrize("case", range(4), ids=["I @ 1e-30 I", "1e-30 I @ I", "tiny @ tiny", "huge @ subnormal"])
def test_matmul_with_tiny_entries(case):
    name, A_, B_ = _tiny_matrices(np.random.default_rng(26))[case]
    want = matmul(A_, B_)
    # the reference: every product IEEE's, summed pairwise (each entry's products by numpy)
    terms = ieee(A_[:, :, None], B_[None, :, :])
    for i in range(A_.shape[0]):
        for j in range(B_.shape[1]):
            p = terms[i, :, j]
            level = [p[0] + p[1], p[2] + p[3], p[4] + p[5], p[6] + p[7]]
            assert bits(want[i, j]) == bits((level[0] + level[1]) + (level[2] + level[3]))
    if case == 0:
        assert np.array_equal(want, 1e-30 * np.eye(8))
    prog = _matmul_program(A_, B_)
    steps, halted = assert_fleq_lockstep(prog, program_to_card(prog), 3)
    assert halted and steps == 1
    got = fleqc.run(prog, engine="incremental").memory["C"]
    assert np.array_equal(bits(got), bits(want))
