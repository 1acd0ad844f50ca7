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

from fleqc.machines.fleq.product import OUTER_HI, OUTER_LO, OUTER_STEP, SMALL_X, STAGES, multiplier, tree_layers
from fleqc.machines.fleq.functions import PRODUCT_FLUSH, matmul, pairwise_sum, product, product_error
from fleqc.transformer.executor import forward, stepper

LO_B, HI_B = OUTER_STEP * OUTER_LO, OUTER_STEP * OUTER_HI  # 2^-96 < |b| <= 2^96


def _bits(x: np.ndarray) -> np.ndarray:
    return (np.asarray(x, dtype=np.float64) + 0.0).view(np.int64)


def draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Factor pairs across the window: |b| in (2^-96, 2^96], a from the smallest subnormal up to
    |a b| < 2^1000, random signs and 53-bit mantissas, plus the hard cases: products of
    significands at or next to a rounding tie, extreme mantissas, zeros, powers of two, subnormal a."""
    signs = rng.choice([-1.0, 1.0], (2, n))
    b = np.ldexp(rng.uniform(1.0, 2.0, n), rng.integers(LO_B, HI_B, n)) * signs[1]
    a = np.ldexp(rng.uniform(1.0, 2.0, n), rng.integers(-1074, 1000 - HI_B - 1, n)) * signs[0]
    k = n // 8
    ties_a = 1.0 + rng.integers(0, 2**26, k) * 2.0**-26  # a b exactly at or next to a tie
    ties_b = 1.0 + rng.integers(1, 2**26, k) * 2.0**-27
    near_a = 1.0 + 2.0**-52 * rng.integers(1, 2**20, k)
    near_b = 1.0 - 2.0**-53 * rng.integers(1, 2**20, k)
    special = np.array([0.0, -0.0, 1.0, -1.0, 2.0**-1074, -(2.0**-1074), 2.0**-1022, 2.0 - 2.0**-52, 2.0**900,
                        3.0 * 2.0**-1070, 2.0**-500, 2.0**-500 * (1 + 2.0**-52)])
    special_b = np.array([1.0, 2.0**96, -(2.0**96), 2.0**-95, 2.0**-96 * (1 + 2.0**-52), 2.0 - 2.0**-52, 3.0,
                          0.0, 2.0**-96, 7.0, 2.0**-40, 1.5])
    a = np.concatenate([a, ties_a * rng.choice([-1.0, 1.0], k) * np.ldexp(1.0, rng.integers(-1074, 800, k)),
                        near_a, np.repeat(special, len(special_b))])
    b = np.concatenate([b, ties_b * np.ldexp(1.0, rng.integers(-90, 90, k)), near_b, np.tile(special_b, len(special))])
    return a, b


def run_multiplier(a: np.ndarray, b: np.ndarray, engine: str = "dense") -> tuple[np.ndarray, np.ndarray]:
    """The block's (product, error) rows for the pairs (a, b), one column each."""
    model, rows, _ = multiplier(1)
    X = np.zeros((model.width, a.size))
    X[rows["one"][0]] = 1.0
    X[rows["x"][0]], X[rows["y"][0]] = a, b
    if engine == "dense":
        Y = forward(model, X)
    else:
        loop = stepper(model, X, engine=engine)
        loop.step()
        Y = np.array(loop.X)
    assert np.all(np.isfinite(Y))
    return Y[rows["product"][0]], Y[rows["error"][0]]


def _check(a: np.ndarray, b: np.ndarray) -> None:
    got, got_error = run_multiplier(a, b)
    want = product(a, b)
    differ = np.flatnonzero(_bits(got) != _bits(want))
    assert differ.size == 0, [(a[k], b[k], want[k], got[k]) for k in differ[:5]]
    # the error, inside mulerr's window (a = 0 or |a| > 2^-500): bit-equal to the reference, and
    # product + error is the exact product a b
    inside = (a == 0) | (np.abs(a) > SMALL_X)
    want_error = product_error(a, b)
    differ = np.flatnonzero((_bits(got_error) != _bits(want_error)) & inside)
    assert differ.size == 0, [(a[k], b[k], want_error[k], got_error[k]) for k in differ[:5]]
    for k in np.flatnonzero(inside & (np.abs(b) > PRODUCT_FLUSH))[:: max(1, a.size // 500)]:
        assert Fraction(float(got[k])) + Fraction(float(got_error[k])) == Fraction(float(a[k])) * Fraction(float(b[k]))
    # the reference is IEEE's product (subnormal results included) but for |b| <= 2^-96
    with np.errstate(under="ignore"):
        ieee = a * b
    flushed = np.abs(b) <= PRODUCT_FLUSH
    assert np.array_equal(_bits(want)[~flushed], _bits(ieee + 0.0)[~flushed])
    assert not np.any(want[flushed])


def subnormal_ties(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs with |a| <= 2^-500 whose product is subnormal and lies at or within a few units of the
    last place of a rounding tie of the subnormal grid (where rounding the product first to 53 bits
    and then to the grid would go wrong): a = k 2^-1074 (k odd, up to 2^20), b = (m + 1/2 + d) / k
    rounded, so a b is close to (m + 1/2) 2^-1074."""
    k = rng.integers(1, 2**20, n) * 2 + 1
    m = rng.integers(0, 2**40, n)
    d = rng.integers(-3, 4, n) * 2.0**-60
    b = (m + 0.5 + d) / k
    b = np.where(np.abs(b) > 2.0**-95, b, 1.0 + 2.0**-30) * rng.choice([-1.0, 1.0], n)
    a = k * 2.0**-1074 * rng.choice([-1.0, 1.0], n)
    return a, b


def test_subnormal_products_of_a_tiny_factor_are_rounded_once():
    """|a| <= 2^-500 is scaled up by 2^256 inside the block; a subnormal result is then rounded to the
    subnormal grid at that scale, with the midpoint settled by the exact error (stages 12-14)."""
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
    model, rows, block = multiplier(1)
    a = np.array([2.0**1000, -(2.0**1000), 2.0**999, 1.0, 2.0**-1074, 2.0**1000])
    b = np.array([2.0**96, 2.0**90, 2.0**97, 2.0**200, 2.0**300, 2.0**-100])
    X = np.zeros((model.width, a.size))
    X[rows["one"][0]], X[rows["x"][0]], X[rows["y"][0]] = 1.0, a, b
    Y = forward(model, X)
    assert np.all(np.isfinite(Y))
    faults = np.max([Y[r] for r in block.fault_rows(0)], axis=0)
    assert list(faults) == [1.0, 1.0, 1.0, 1.0, 1.0, 0.0]
    assert Y[rows["product"][0]][-1] == 0.0  # |b| <= 2^-96 counts as 0


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
    inside = np.abs(a) > SMALL_X
    assert np.array_equal(_bits(X[rows["error"][0]])[inside], _bits(product_error(a, b))[inside])
