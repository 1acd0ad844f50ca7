"""Sums of sigmoids for 1/x, sqrt(x) and ln(x) on the reduced interval x' in (1/2, 2].

The FLEQ machine evaluates a scalar function g of the reduced input x' as (Giannou et al. 2023)::

    g(x') ~= c0 + sum_{j=1..m} c_j sigmoid(w_j x' + b_j)

Each sigmoid is one attention head whose softmax has exactly two keys: the query column with score
s = fl(fl(w_j x') + b_j) (a float64 dot product of [w_j ; b_j] with [x' ; 1]) and a reference column
with score 0. The softmax weight of the query column is computed stably (:func:`machine_sigmoid`)::

    M = max(s, 0);  e1 = exp(s - M);  e0 = exp(0 - M);  sigmoid = e1 / (e1 + e0)

and the head's value row carries c_j; the heads' outputs are summed and the constant c0 added.
:func:`evaluate` reproduces this arithmetic exactly (heads added one after another in the order
j = 1..m, then c0), so the errors measured here are the machine's errors.

**Range reduction.** The machine first splits x = x' 4^s with x' in (1/2, 2] exactly (scaling by a
power of two loses nothing), then recip(x) = 4^-s g(x'), sqrt(x) = 2^s g(x') (both exact scalings of
the fitted value, so the relative error is g's) and log(x) = s ln 4 + g(x'). On the short interval
(1/2, 2] the three functions are smooth and slowly varying, so a handful of sigmoids is enough:
m = 16 gives 4e-8 relative where an unreduced fit over many decades needs hundreds.

**Basis.** One basis (w_j, b_j) is shared by the three functions (each has its own c0, c_j). The
centres t_j are uniform in ln x' on [ln(1/2) - margin, ln 2 + margin] (step du; a margin beyond the
interval lets the edge sigmoids shape the ends) and each sigmoid is scale-invariant in x'::

    sigmoid(+-beta (x'/t_j - 1) / du):  w_j = +-beta / (t_j du),  b_j = -w_j t_j

The sign is chosen so that every sigmoid sits in its small tail at x' = 1 (w_j < 0 for t_j < 1,
w_j > 0 for t_j >= 1; flipping the sign only changes c0 and c_j, sigmoid(-z) = 1 - sigmoid(z)): a
small sigmoid value carries its own relative precision, so the terms that cancel in ln x' near
x' = 1 are small and their rounding errors are too.

**Fit.** For each (beta, margin) of a small fixed grid, the linear coefficients are a least squares
fit in float64 on a geometric training grid, rows weighted by 1/|g| (relative error; log's weight
is capped at 1e3 near x' = 1), columns scaled to unit norm, reduced to a square problem by a
Householder QR written without BLAS (a threaded BLAS stalls on a busy machine), singular values below
n eps of the largest dropped. For log, g(1) = 0 and g'(1) = 1 are
imposed exactly in the least squares (through the null space of the two constraints); then c0 is
set to minus the machine's sum of the heads at x' = 1, so the machine's g(1) is exactly 0 when the
heads are added in the order of :func:`evaluate` (in another order, within a few ulp of the heads'
sum, ~1e-16). The (beta, margin) with the smallest worst relative error of the three functions on
a validation grid (machine arithmetic) is kept, among those whose sum of |c_j| is at most
``COEFFICIENT_BUDGET`` (large alternating coefficients would cancel and lose digits). Everything is
deterministic and takes about 0.2 s; :func:`fit_functions` is cached.

**Measured** (``python -m fleqc.construct.fitting [m ...]``; dense grid: 200,001 uniform and 100,001
geometric points of (1/2, 2] with both ends 0.5 + ulp and 2.0, and 1 +- [1e-12, 1e-1]), for
m = DEFAULT_TERMS = 16 the search picks beta = 0.8, margin = 0.6 (search, fit and measurement ~0.2 s):

    recip  worst relative error 3.8e-08                       max |c_j| 16.3  sum |c_j| 40.5
    sqrt   worst relative error 3.1e-09                       max |c_j|  3.3  sum |c_j|  8.3
    log    worst relative error 3.0e-08 where |ln x'| >= 1e-8  max |c_j|  9.2  sum |c_j| 21.7
           absolute error 3.6e-16 within 1 +- 1e-8, g(1) = 0 exactly

Other m (worst relative of the three): 12: 1.2e-6, 14: 2.1e-7, 18: 1.3e-8, 20: 5.8e-9, 24: 3.4e-9
(from 24 on, log's rounding near x' = 1, ~3e-17 absolute at |ln x'| = 1e-8, is the limit; recip and
sqrt reach 1e-11). :func:`report` prints these figures; tests/test_fitting.py checks them on an
independent random grid.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass

import numpy as np

DEFAULT_TERMS = 16
LO, HI = 0.5, 2.0
# Grid of the basis design searched at build time (beta: slope in units of the centre spacing;
# margin: how far the centres extend beyond the interval, in ln x' units).
BETAS = (0.7, 0.8, 0.9, 1.0)
MARGINS = (0.4, 0.5, 0.6, 0.7)
COEFFICIENT_BUDGET = 100.0  # largest sum of |c_j| accepted for any of the three functions
LOG_NEAR_ONE = 1e-8  # log's error is relative where |ln x'| >= this, absolute inside
FUNCTIONS = {"recip": lambda x: 1.0 / x, "sqrt": np.sqrt, "log": np.log}


@dataclass(frozen=True)
class SigmoidBasis:
    """The shared sigmoids sigmoid(w_j x' + b_j), j = 1..m, on the interval (lo, hi]."""

    slopes: np.ndarray  # (m,) w_j
    offsets: np.ndarray  # (m,) b_j
    lo: float
    hi: float


@dataclass(frozen=True)
class SigmoidFit:
    """g(x') ~= constant + sum_j coefficients[j] sigmoid(w_j x' + b_j), with its measured errors."""

    name: str  # "recip" | "sqrt" | "log"
    constant: float  # c0
    coefficients: np.ndarray  # (m,) c_j
    max_rel_error: float  # dense grid, machine arithmetic (log: where |ln x'| >= LOG_NEAR_ONE)
    max_abs_error: float  # dense grid, machine arithmetic, every point


def machine_sigmoid(scores: np.ndarray) -> np.ndarray:
    """The softmax weight of the query column over the two scores (s, 0), exactly as the machine's
    stable softmax computes it: M = max(s, 0), e1 = exp(s - M), e0 = exp(-M), e1 / (e1 + e0).

    Finite for every finite s (one of e1, e0 is exactly 1); equal to 1/(1 + exp(-s)) to a few ulp.
    """
    s = np.asarray(scores, dtype=np.float64)
    top = np.maximum(s, 0.0)
    e1 = np.exp(s - top)
    e0 = np.exp(0.0 - top)
    return e1 / (e1 + e0)


def _scores(basis: SigmoidBasis, x: np.ndarray) -> np.ndarray:
    """(B, m) scores fl(fl(w_j x) + b_j): the dot product [w_j ; b_j] . [x ; 1] in float64."""
    return np.asarray(x, dtype=np.float64)[:, None] * basis.slopes[None, :] + basis.offsets[None, :]


def _heads(basis: SigmoidBasis, x: np.ndarray) -> np.ndarray:
    """(B, m) design matrix of sigmoid values, machine arithmetic."""
    return machine_sigmoid(_scores(basis, x))


def _sum_heads(sig: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """sum_j c_j sig[:, j], each product rounded, added in the order j = 1..m starting from 0."""
    terms = sig * coefficients[None, :]
    total = np.zeros(sig.shape[0])
    for j in range(terms.shape[1]):
        total = total + terms[:, j]
    return total


def evaluate(basis: SigmoidBasis, fit: SigmoidFit, x: np.ndarray) -> np.ndarray:
    """g(x') with the machine's arithmetic: each head c_j * machine_sigmoid(fl(w_j x' + b_j)), the
    heads added one after another in the order j = 1..m (starting from 0), then + c0."""
    x = np.atleast_1d(np.asarray(x, dtype=np.float64))
    return _sum_heads(_heads(basis, x), fit.coefficients) + fit.constant


def _design(m: int, beta: float, margin: float) -> SigmoidBasis:
    """Centres t_j uniform in ln x' over [ln lo - margin, ln hi + margin]; w_j = +-beta/(t_j du),
    b_j = -w_j t_j, the sign making each sigmoid small at x' = 1 (see the module docstring)."""
    if m < 2:
        raise ValueError(f"need at least 2 sigmoids, got {m}")
    u = np.linspace(math.log(LO) - margin, math.log(HI) + margin, m)
    du = u[1] - u[0]
    centres = np.exp(u)
    slopes = beta / (centres * du)
    slopes = np.where(centres < 1.0, -slopes, slopes)
    return SigmoidBasis(slopes=slopes, offsets=-slopes * centres, lo=LO, hi=HI)


def _householder_reduce(A: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(R, z) with A = Q [R ; 0] (Householder QR) and z the first k entries of Q^T y, so that
    ||A c - y||^2 = ||R c - z||^2 + const: the tall least squares shrinks to a k x k one.

    Written with elementwise numpy only: a multithreaded BLAS on small tall matrices can stall for
    seconds on a busy machine, and the reduction is cheap (n k^2 flops).
    """
    A, y = A.copy(), y.copy()
    k = A.shape[1]
    for j in range(k):
        v = A[j:, j].copy()
        norm = math.sqrt(float((v * v).sum()))
        if norm == 0.0:
            continue
        v[0] += math.copysign(norm, v[0])  # reflect onto -sign(v0) ||v|| e_1 (no cancellation)
        scale = 2.0 / float((v * v).sum())
        A[j:, j:] -= v[:, None] * (scale * (v[:, None] * A[j:, j:]).sum(axis=0))[None, :]
        y[j:] -= v * (scale * float((v * y[j:]).sum()))
    return np.triu(A[:k]), y[:k]


def _least_squares(
    A: np.ndarray, f: np.ndarray, weights: np.ndarray, C: np.ndarray | None = None, d: np.ndarray | None = None
) -> np.ndarray:
    """argmin || weights * (A c - f) || over c, subject to C c = d if given; columns scaled to unit
    norm; the tall problem is first reduced to a square one (:func:`_householder_reduce`)."""
    Aw = A * weights[:, None]
    scale = np.sqrt((Aw * Aw).sum(axis=0))
    scale[scale == 0] = 1.0
    R, z = _householder_reduce(Aw / scale, f * weights)
    rcond = len(f) * np.finfo(float).eps  # singular values below rcond * largest are dropped (as for A)
    if C is None:
        return np.linalg.lstsq(R, z, rcond=rcond)[0] / scale
    Cs = C / scale
    particular = np.linalg.lstsq(Cs, d, rcond=None)[0]
    null = np.linalg.svd(Cs)[2][Cs.shape[0]:].T  # basis of {u : Cs u = 0}
    u = np.linalg.lstsq(R @ null, z - R @ particular, rcond=rcond)[0]
    return (particular + null @ u) / scale


def _fit_coefficients(basis: SigmoidBasis, x: np.ndarray) -> dict[str, tuple[float, np.ndarray]]:
    """(c0, c) per function: weighted least squares on the training grid x (see module docstring)."""
    A = np.column_stack([np.ones_like(x), _heads(basis, x)])
    out = {}
    for name, func in FUNCTIONS.items():
        f = func(x)
        if name == "log":
            # g(1) = 0 and g'(1) = 1: sigmoid'(s) = sigmoid(s) (1 - sigmoid(s)), ds/dx' = w_j
            at_one = _heads(basis, np.array([1.0]))[0]
            slope = basis.slopes * at_one * (1.0 - at_one)
            C = np.array([np.concatenate([[1.0], at_one]), np.concatenate([[0.0], slope])])
            coef = _least_squares(A, f, 1.0 / np.maximum(np.abs(f), 1e-3), C, np.array([0.0, 1.0]))
            c = coef[1:]
            c0 = -float(_sum_heads(at_one[None, :], c)[0])  # the machine's g(1) is exactly 0
        else:
            coef = _least_squares(A, f, 1.0 / np.abs(f))
            c0, c = float(coef[0]), coef[1:]
        out[name] = (c0, c)
    return out


def _errors(name: str, x: np.ndarray, g: np.ndarray) -> tuple[float, float]:
    """(worst relative error, worst absolute error) of g against the float64 function on x; log's
    relative error only where |ln x| >= LOG_NEAR_ONE."""
    f = FUNCTIONS[name](x)
    err = np.abs(g - f)
    rel_where = np.abs(f) >= LOG_NEAR_ONE if name == "log" else np.ones(len(x), bool)
    return float(np.max(err[rel_where] / np.abs(f[rel_where]), initial=0.0)), float(np.max(err, initial=0.0))


def _near_one(count: int) -> np.ndarray:
    """Points 1 +- d, d geometric in [1e-12, 1e-1]: where log's cancellation is worst."""
    d = np.geomspace(1e-12, 1e-1, count)
    return np.concatenate([1.0 - d, 1.0 + d])


def dense_grid() -> np.ndarray:
    """The measurement grid: 200,001 uniform and 100,001 geometric points of (1/2, 2] (both ends:
    0.5 + ulp and 2.0), x' = 1, and 1 +- [1e-12, 1e-1] (2,000 points)."""
    first = np.nextafter(LO, np.inf)
    return np.unique(np.concatenate([
        np.linspace(LO, HI, 200_001)[1:], np.geomspace(LO, HI, 100_001)[1:],
        [first, 1.0, HI], _near_one(1000),
    ]))


def _training_grid() -> np.ndarray:
    return np.geomspace(np.nextafter(LO, np.inf), HI, 2000)


def _validation_grid() -> np.ndarray:
    return np.concatenate([np.geomspace(np.nextafter(LO, np.inf), HI, 3001), _near_one(50)])


def _search(m: int) -> tuple[float, float]:
    """(beta, margin) of the grid with the smallest worst relative error of the three fits on the
    validation grid (machine arithmetic), among designs within the coefficient budget."""
    xt, xv = _training_grid(), _validation_grid()
    best: tuple[float, float, float] | None = None
    fallback: tuple[float, float, float] | None = None
    for beta in BETAS:
        for margin in MARGINS:
            basis = _design(m, beta, margin)
            sig = _heads(basis, xv)
            worst, budget = 0.0, 0.0
            for name, (c0, c) in _fit_coefficients(basis, xt).items():
                worst = max(worst, _errors(name, xv, _sum_heads(sig, c) + c0)[0])
                budget = max(budget, float(np.abs(c).sum()))
            if not np.isfinite(worst):
                continue
            candidate = (worst, beta, margin)
            if budget <= COEFFICIENT_BUDGET and (best is None or candidate < best):
                best = candidate
            if fallback is None or (budget, worst) < fallback[:2]:
                fallback = (budget, worst, beta, margin)
    if best is not None:
        return best[1], best[2]
    assert fallback is not None
    return fallback[2], fallback[3]


def _measure(basis: SigmoidBasis, coefficients: dict[str, tuple[float, np.ndarray]]) -> dict[str, tuple[float, float]]:
    """(worst relative, worst absolute) error per function on :func:`dense_grid`, machine arithmetic
    (in blocks of rows, to keep the arrays small)."""
    x = dense_grid()
    worst = {name: (0.0, 0.0) for name in coefficients}
    for start in range(0, len(x), 1 << 15):
        block = x[start:start + (1 << 15)]
        sig = _heads(basis, block)
        for name, (c0, c) in coefficients.items():
            rel, ab = _errors(name, block, _sum_heads(sig, c) + c0)
            worst[name] = (max(worst[name][0], rel), max(worst[name][1], ab))
    return worst


@functools.cache
def _tuned(m: int) -> tuple[SigmoidBasis, dict[str, SigmoidFit], tuple[float, float]]:
    """(basis, fits, (beta, margin)) for m sigmoids."""
    design = _search(m)
    basis = _design(m, *design)
    coefficients = _fit_coefficients(basis, _training_grid())
    errors = _measure(basis, coefficients)
    fits = {}
    for name, (c0, c) in coefficients.items():
        c = c.copy()
        c.setflags(write=False)
        rel, ab = errors[name]
        fits[name] = SigmoidFit(name=name, constant=c0, coefficients=c, max_rel_error=rel, max_abs_error=ab)
    basis.slopes.setflags(write=False)
    basis.offsets.setflags(write=False)
    return basis, fits, design


def sigmoid_basis(m: int = DEFAULT_TERMS) -> SigmoidBasis:
    """The shared basis of m sigmoids, its (beta, margin) tuned at build time (cached)."""
    return _tuned(m)[0]


def fit_functions(m: int = DEFAULT_TERMS) -> dict[str, SigmoidFit]:
    """{"recip", "sqrt", "log"}: the fits on :func:`sigmoid_basis` (m), with their measured errors (cached)."""
    return dict(_tuned(m)[1])


def report(m: int = DEFAULT_TERMS) -> str:
    """The design, fit time and measured errors for m sigmoids, as text."""
    start = time.perf_counter()
    basis, fits, (beta, margin) = _tuned(m)
    elapsed = time.perf_counter() - start
    lines = [f"m = {m}: beta = {beta}, margin = {margin}; fit {elapsed * 1e3:.0f} ms"
             + (" (cached)" if elapsed < 1e-3 else "")]
    for name, fit in fits.items():
        c = fit.coefficients
        lines.append(f"  {name:5s} worst relative {fit.max_rel_error:.2e}  absolute {fit.max_abs_error:.2e}  "
                     f"c0 {fit.constant:+.3f}  max |c_j| {np.abs(c).max():.2f}  sum |c_j| {np.abs(c).sum():.2f}")
    near = _near_one(1000)
    near = np.concatenate([near[np.abs(np.log(near)) < LOG_NEAR_ONE], [1.0]])
    err = np.abs(evaluate(basis, fits["log"], near) - np.log(near)).max()
    lines.append(f"  log   absolute within 1 +- {LOG_NEAR_ONE:g}: {err:.2e}; "
                 f"g(1) = {evaluate(basis, fits['log'], np.array([1.0]))[0]!r}")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    for arg in sys.argv[1:] or [str(DEFAULT_TERMS)]:
        print(report(int(arg)))
