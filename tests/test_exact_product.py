"""The exact product block (fleqc.machines.fleq.product) on the transformer: bit for bit the IEEE
product, as the reference states it (fleqc.machines.fleq.functions.product), over the whole window, and
its exact error (product_error, the FLEQ function mulerr).

The block runs here as a transformer of its own (``multiplier``): its feed-forward layers, applied
by the executor's dense pass (and the incremental engine), to a card whose columns each hold one
pair of factors. The FLEQ machine runs the same layers in every lane (tests/test_fleq_machine.py).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from fleqc.machines.fleq.product import STAGES, multiplier, tree_layers
from fleqc.machines.fleq.functions import matmul, pairwise_sum, product, product_error
from fleqc.machines.fleq.windows import MULERR_B, SMALL_X
from fleqc.transformer.executor import forward
from tests.support.fleq_checks import run_multiplier


def _bits(x: np.ndarray) -> np.ndarray:
    return (np.asarray(x, dtype=np.float64) + 0.0).view(np.int64)


def draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Factor pairs across float64: |b| from the smallest subnormal to 2^1000, a from the smallest
    subnormal up to |a b| < 2^1000, random signs and 53-bit mantissas, plus the hard cases: products
    of significands at or next to a rounding tie, extreme mantissas, zeros, powers of two, subnormal
    factors."""
    signs = rng.choice([-1.0, 1.0], (2, n))
    eb = rng.integers(-1074, 1000, n)
    b = np.ldexp(rng.uniform(1.0, 2.0, n), eb) * signs[1]
    ea = -1074 + np.floor(rng.random(n) * (np.minimum(1000, 998 - eb) + 1074)).astype(int)
    a = np.ldexp(rng.uniform(1.0, 2.0, n), ea) * signs[0]
    k = n // 8
    ties_a = 1.0 + rng.integers(0, 2**26, k) * 2.0**-26  # a b exactly at or next to a tie
    ties_b = 1.0 + rng.integers(1, 2**26, k) * 2.0**-27
    near_a = 1.0 + 2.0**-52 * rng.integers(1, 2**20, k)
    near_b = 1.0 - 2.0**-53 * rng.integers(1, 2**20, k)
    special = np.array([0.0, -0.0, 1.0, -1.0, 2.0**-1074, -(2.0**-1074), 2.0**-1022, 2.0 - 2.0**-52, 2.0**900,
                        3.0 * 2.0**-1070, 2.0**-500, 2.0**-500 * (1 + 2.0**-52)])
    special_b = np.array([1.0, 2.0**96, -(2.0**96), 2.0**-95, 2.0**-96 * (1 + 2.0**-52), 2.0 - 2.0**-52, 3.0,
                          0.0, 2.0**-96, 7.0, 2.0**-40, 1.5, 1e-30, 2.0**-1074, 2.0**-960, 2.0**-448, 2.0**-1022])
    a = np.concatenate([a, ties_a * rng.choice([-1.0, 1.0], k) * np.ldexp(1.0, rng.integers(-1074, 800, k)),
                        near_a, np.repeat(special, len(special_b))])
    b = np.concatenate([b, ties_b * np.ldexp(1.0, rng.integers(-90, 90, k)), near_b, np.tile(special_b, len(special))])
    return a, b


def _check(a: np.ndarray, b: np.ndarray) -> None:
    got, got_error = run_multiplier(a, b)
    want = product(a, b)
    differ = np.flatnonzero(_bits(got) != _bits(want))
    assert differ.size == 0, [(a[k], b[k], want[k], got[k]) for k in differ[:5]]
    # the error, inside mulerr's window (a = 0 or |a| > 2^-500, b = 0 or |b| > 2^-448): bit-equal to
    # the reference, and product + error is the exact product a b
    inside = mulerr_window(a, b)
    want_error = product_error(a, b)
    differ = np.flatnonzero((_bits(got_error) != _bits(want_error)) & inside)
    assert differ.size == 0, [(a[k], b[k], want_error[k], got_error[k]) for k in differ[:5]]
    for k in np.flatnonzero(inside)[:: max(1, a.size // 500)]:
        assert Fraction(float(got[k])) + Fraction(float(got_error[k])) == Fraction(float(a[k])) * Fraction(float(b[k]))
    # the reference is IEEE's product, subnormal results included, for every pair of factors
    with np.errstate(under="ignore"):
        ieee = a * b
    assert np.array_equal(_bits(want), _bits(ieee + 0.0))


def mulerr_window(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return ((a == 0) | (np.abs(a) > SMALL_X)) & ((b == 0) | (np.abs(b) > MULERR_B))


def subnormal_ties(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs whose product is subnormal and lies at or within a few units of the last place of a
    rounding tie of the subnormal grid (where rounding the product first to 53 bits and then to the
    grid would go wrong): a = k 2^-1074 (k odd, up to 2^20), b = (m + 1/2 + d) / k rounded, so a b is
    close to (m + 1/2) 2^-1074; then a and b scaled by 2^s and 2^-s (s up to +-400: both factors
    tiny, or one huge), and a quarter of the pairs swapped."""
    k = rng.integers(1, 2**20, n) * 2 + 1
    m = rng.integers(0, 2**40, n)
    d = rng.integers(-3, 4, n) * 2.0**-60
    b = (m + 0.5 + d) / k
    b = np.where(np.abs(b) > 2.0**-95, b, 1.0 + 2.0**-30) * rng.choice([-1.0, 1.0], n)
    a = k * 2.0**-1074 * rng.choice([-1.0, 1.0], n)
    shift = np.where(rng.random(n) < 0.5, 0, rng.integers(-400, 400, n))
    shift = np.where((shift > 0) & (np.abs(b) * 2.0**-400 < 2.0**-1000), 0, shift)
    a, b = np.ldexp(a, shift), np.ldexp(b, -shift)
    swap = rng.random(n) < 0.25
    return np.where(swap, b, a), np.where(swap, a, b)


def test_subnormal_products_are_rounded_once():
    """A product whose exponent may be subnormal is rounded at the level x y 2^256 and then to the
    subnormal grid, with the midpoint settled by the exact error (stages 11-13)."""
    a, b = subnormal_ties(np.random.default_rng(11), 2000)
    with np.errstate(under="ignore"):
        assert np.count_nonzero(np.abs(a * b) < 2.0**-1022) == a.size
    _check(a, b)
    for engine in ("incremental", "sparse"):
        got, _ = run_multiplier(a[:300], b[:300], engine)
        assert np.array_equal(_bits(got), _bits(product(a[:300], b[:300])))


def test_product_is_bit_exact_on_a_thousand_pairs():
    a, b = draw(np.random.default_rng(7), 1000)
    _check(a, b)


def test_factors_at_every_threshold_the_gates_close_on():
    """The band and inner splits close their gates on the distances ReLU(|f| - tau) and
    ReLU(tau+ - |f|) themselves (fleqc.blocks.exact: soft closers), and N's role is read at 2^-896:
    factors at, just below and just above every band threshold 2^(64 j) and the role threshold, times
    partners at and around every inner threshold 2^i (the inner split's edges) and across the range,
    both signs, give IEEE's bits."""
    from fleqc.machines.fleq.product import BANDS, INNER, OUTER_STEP

    edges = [2.0 ** (OUTER_STEP * j) for j in BANDS] + [2.0**-1074, 2.0**-1022]
    near = np.array([v for t in edges for v in (np.nextafter(t, 0.0), t, np.nextafter(t, np.inf))])
    inner = [2.0**i for i in list(INNER)[::7] + [0, 63]]
    partners = np.array([v for t in inner for v in (np.nextafter(t, 0.0), t, np.nextafter(t, np.inf))]
                        + [1.0, 1.5, 2.0**-60, 2.0**-500, 2.0**-900, 2.0**-960, 2.0**60, 2.0**300, 0.0])
    a = np.repeat(near, partners.size)
    b = np.tile(partners, near.size)
    a, b = np.concatenate([a, b, -a]), np.concatenate([b, a, b])  # both roles, both signs
    with np.errstate(over="ignore", under="ignore"):
        keep = np.abs(a * b) <= 2.0**1000
    _check(a[keep], b[keep])


@pytest.mark.slow
def test_product_is_bit_exact_on_a_hundred_thousand_pairs():
    rng = np.random.default_rng(1300)
    for _ in range(10):
        a, b = draw(rng, 10_000)
        _check(a, b)


@pytest.mark.parametrize("engine", ["incremental", "sparse"])
def test_the_engines_compute_the_same_bits(engine):
    a, b = draw(np.random.default_rng(8), 300)
    for got, want in zip(run_multiplier(a, b, engine), run_multiplier(a, b, "dense")):
        assert np.array_equal(_bits(got), _bits(want))


def test_outside_the_window_nothing_overflows_and_the_fault_rows_say_so():
    """A product beyond 2^1001 sets a fault row (and gives 0); one up to 2^1000 never does; in
    between (refused by the health check from the operands) the block stays finite."""
    model, rows, block = multiplier(1)
    a = np.array([2.0**1000, -(2.0**1000), 2.0**999, 1.5, 2.0**-1074, 2.0**1000, 2.0**500, 2.0**961, 2.0**960,
                  2.0**1000, 2.0**-1074, 2.0**1000, 2.0**500])
    b = np.array([2.0**96, 2.0**90, 2.0**97, 2.0**1000, 2.0**300, 2.0**-100, 2.0**503, 2.0**41, 2.0**40,
                  2.0**-1074, 2.0**-1074, 1.0, 2.0**500])
    X = np.zeros((model.width, a.size))
    X[rows["one"][0]], X[rows["x"][0]], X[rows["y"][0]] = 1.0, a, b
    Y = forward(model, X)
    assert np.all(np.isfinite(Y))
    faults = np.max([Y[r] for r in block.fault_rows(0)], axis=0)
    assert list(faults[:3]) == [1.0, 1.0, 1.0] and faults[6] == 1.0 and set(faults) == {0.0, 1.0}
    size = [abs(Fraction(x) * Fraction(y)) for x, y in zip(a, b)]
    assert all(size[k] > 2**1001 for k in np.flatnonzero(faults == 1.0))  # a fault only outside the window
    got = Y[rows["product"][0]]
    assert np.all(got[faults == 1.0] == 0.0) and np.all(np.abs(got) <= 2.0**1003)
    inside = np.array([v <= 2**1000 for v in size])
    assert np.all(faults[inside] == 0.0)
    assert np.array_equal(_bits(got[inside]), _bits(product(a[inside], b[inside])))


@pytest.mark.parametrize("slots", [1, 2, 3, 4, 5, 8, 16])
def test_the_slots_are_summed_pairwise_as_the_reference_states(slots):
    model, rows, _ = multiplier(slots)
    assert len(model.layers) == len(STAGES) + tree_layers(slots) + 1
    rng = np.random.default_rng(slots)
    n = 200
    a = np.ldexp(rng.uniform(-2, 2, (slots, n)), rng.integers(-60, 60, (slots, n)))
    b = np.ldexp(rng.uniform(-2, 2, (slots, n)), rng.integers(-60, 60, (slots, n)))
    X = np.zeros((model.width, n))
    X[rows["one"][0]] = 1.0
    X[rows["x"].slice], X[rows["y"].slice] = a, b
    got = forward(model, X)[rows["product"][0]]
    assert np.array_equal(_bits(got), _bits(pairwise_sum(product(a, b), axis=0)))


def test_matmul_reference_sums_each_entry_pairwise():
    rng = np.random.default_rng(3)
    A, B = rng.normal(size=(3, 5)), rng.normal(size=(5, 2))
    C = matmul(A, B)
    for i in range(3):
        for j in range(2):
            p = A[i] * B[:, j]
            assert C[i, j] == ((p[0] + p[1]) + (p[2] + p[3])) + (p[4] + 0.0)
    assert matmul(A[0], B).shape == (2,) and matmul(A, B[:, 0]).shape == (3,)


def _ordered_feed_forward(layer, X: np.ndarray, order: str) -> np.ndarray:
    """The feed-forward layer with every sum (pre-activation with its bias, output row with its
    bias) added term by term in the given order: "bias first" (as a fused addmm may), "bias last"
    (numpy's W x + b) or "reversed"."""

    def sums(W: np.ndarray, bias: np.ndarray, inputs: np.ndarray) -> np.ndarray:
        out = np.empty((W.shape[0], inputs.shape[1]))
        for u in range(W.shape[0]):
            terms = [W[u, r] * inputs[r] for r in np.flatnonzero(W[u])]
            if bias[u] != 0.0:
                terms = [np.full(inputs.shape[1], bias[u])] + terms if order == "bias first" else terms + [
                    np.full(inputs.shape[1], bias[u])]
            if order == "reversed":
                terms = terms[::-1]
            total = np.zeros(inputs.shape[1])
            for t in terms:
                total = total + t
            out[u] = total
        return out

    with np.errstate(over="ignore"):  # a steep threshold's pre-activation may be -inf (its ReLU is 0)
        hidden = np.maximum(sums(layer.w1, layer.b1, X), 0.0)
    return X + sums(layer.w2, layer.b2, hidden)


@pytest.mark.parametrize("order", ["bias first", "bias last", "reversed"])
def test_the_bits_do_not_depend_on_the_order_of_summation(order):
    """Every sum of the block is exact in any order but the one rounding each stage intends, so a
    framework that adds the bias first (torch's addmm, TransformerLens) computes the same bits."""
    a, b = draw(np.random.default_rng(9), 200)
    ties = subnormal_ties(np.random.default_rng(10), 100)
    a, b = np.concatenate([a, ties[0]]), np.concatenate([b, ties[1]])
    model, rows, _ = multiplier(1)
    X = np.zeros((model.width, a.size))
    X[rows["one"][0]], X[rows["x"][0]], X[rows["y"][0]] = 1.0, a, b
    for layer in model.layers:
        X = _ordered_feed_forward(layer, X, order)
    assert np.array_equal(_bits(X[rows["product"][0]]), _bits(product(a, b)))
    inside = mulerr_window(a, b)
    assert np.array_equal(_bits(X[rows["error"][0]])[inside], _bits(product_error(a, b))[inside])
