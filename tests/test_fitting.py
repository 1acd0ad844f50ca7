"""Sums of sigmoids for recip, sqrt and log on x' in (1/2, 2] (fleqc.construct.fitting)."""

import numpy as np
import pytest

from fleqc.construct import fitting
from fleqc.construct.fitting import (
    DEFAULT_TERMS,
    evaluate,
    fit_functions,
    machine_sigmoid,
    sigmoid_basis,
)

# The default fit measures <= 4e-8 (see the module docstring): 1e-6 leaves a 25x margin.
TOLERANCE = 1e-6
REFERENCE = {"recip": lambda x: 1.0 / x, "sqrt": np.sqrt, "log": np.log}


def independent_grid() -> np.ndarray:
    """100,003 random points of (1/2, 2] (fixed seed), the ends, x' = 1 and points close to 1."""
    rng = np.random.default_rng(20230130)
    u = rng.uniform(np.log(0.5), np.log(2.0), 100_003)
    x = np.exp(u)
    x = x[(x > 0.5) & (x <= 2.0)]
    d = np.geomspace(1e-13, 0.3, 500)
    return np.concatenate([x, [np.nextafter(0.5, 1.0), 2.0, 1.0, np.nextafter(1.0, 0.0), np.nextafter(1.0, 2.0)],
                           1.0 - d, 1.0 + d])


@pytest.mark.parametrize("name", ["recip", "sqrt", "log"])
def test_worst_relative_error(name):
    basis, fit = sigmoid_basis(), fit_functions()[name]
    x = independent_grid()
    g, f = evaluate(basis, fit, x), REFERENCE[name](x)
    assert np.all(np.isfinite(g))
    err = np.abs(g - f)
    rel = np.abs(f) >= fitting.LOG_NEAR_ONE if name == "log" else np.ones(len(x), bool)
    assert (err[rel] / np.abs(f[rel])).max() <= TOLERANCE
    assert fit.max_rel_error <= TOLERANCE  # the module's own dense-grid measurement
    if name == "log":  # absolute near x' = 1, where g is a cancelling sum
        assert err[~rel].max() <= 1e-13
    # the coefficients stay small: no catastrophic cancellation between heads
    assert np.abs(fit.coefficients).sum() <= fitting.COEFFICIENT_BUDGET


def test_log_of_one_is_zero():
    g1 = evaluate(sigmoid_basis(), fit_functions()["log"], np.array([1.0]))[0]
    assert abs(g1) <= 1e-13
    assert g1 == 0.0  # exact in the evaluation order (heads j = 1..m, then c0)


def test_shapes_and_names():
    basis, fits = sigmoid_basis(), fit_functions()
    assert set(fits) == {"recip", "sqrt", "log"}
    assert basis.slopes.shape == basis.offsets.shape == (DEFAULT_TERMS,)
    assert (basis.lo, basis.hi) == (0.5, 2.0)
    for name, fit in fits.items():
        assert fit.name == name
        assert fit.coefficients.shape == (DEFAULT_TERMS,)


def test_deterministic():
    before_basis, before = sigmoid_basis(), fit_functions()
    fitting._tuned.cache_clear()
    after_basis, after = sigmoid_basis(), fit_functions()
    assert np.array_equal(before_basis.slopes, after_basis.slopes)
    assert np.array_equal(before_basis.offsets, after_basis.offsets)
    for name in before:
        assert before[name].constant == after[name].constant
        assert np.array_equal(before[name].coefficients, after[name].coefficients)
        assert before[name].max_rel_error == after[name].max_rel_error


def test_evaluate_matches_the_machine_formula():
    """evaluate = c0 + sum_j c_j * (2-key softmax weight of score w_j x + b_j), summed j = 1..m."""
    basis, fit = sigmoid_basis(), fit_functions()["sqrt"]
    x = np.array([np.nextafter(0.5, 1.0), 0.7, 1.0, 1.3, 2.0])
    expected = []
    for xi in x:
        total = 0.0
        for w, b, c in zip(basis.slopes, basis.offsets, fit.coefficients):
            s = w * xi + b
            top = max(s, 0.0)
            e1, e0 = np.exp(s - top), np.exp(0.0 - top)
            total = total + c * (e1 / (e1 + e0))
        expected.append(total + fit.constant)
    assert np.array_equal(evaluate(basis, fit, x), np.array(expected))


def test_machine_sigmoid_extremes_are_finite():
    s = np.concatenate([np.geomspace(1e-300, 1e300, 601), -np.geomspace(1e-300, 1e300, 601),
                        [0.0, -0.0, 1e300, -1e300, 709.0, -745.0, 800.0, -800.0]])
    y = machine_sigmoid(s)
    assert np.all(np.isfinite(y))
    assert np.all((y >= 0.0) & (y <= 1.0))
    assert machine_sigmoid(np.array([1e300]))[0] == 1.0
    assert machine_sigmoid(np.array([-1e300]))[0] == 0.0
    assert machine_sigmoid(np.array([0.0]))[0] == 0.5


def test_machine_sigmoid_matches_logistic():
    s = np.linspace(-30.0, 30.0, 10_001)
    y = machine_sigmoid(s)
    ref = 1.0 / (1.0 + np.exp(-s.astype(np.longdouble)))
    rel = np.abs((y - ref) / ref).astype(float)
    assert rel.max() <= 1e-15
