"""Errors in ulps, issue 13's unit: how far a FLEQ result lies from the correctly rounded float64
value of the exact function, in units in the last place of that value (0: bit-equal to the
correctly rounded result; the reference's add, sub and mul score 0).

The exact value comes from rational arithmetic (``fractions.Fraction``) wherever it is rational:
add, sub, mul, mulerr (the exact error a b - fl(a b)), recip and the copies, and matmul, whose
exact sums are rounded once. sqrt's correctly rounded value is IEEE ``math.sqrt``. exp, log and
sigmoid have no rational value; numpy's libm result stands for it there (within 1 ulp of correctly
rounded for exp and log; numpy's formula for sigmoid, up to 1.8 ulps off), which the figures state.

matmul is measured componentwise: the distance from the correctly rounded exact sum over ulp(sum_k |a_ik b_kj|), since a sum of products may
cancel to a result whose own ulp no float computation of that sum can reach.

The operands are drawn across each function's whole window (its record's ``limits``): random
exponents over the accepted binary orders of magnitude, subnormals included where accepted, random
53-bit mantissas and signs. mul's factor b is drawn from 2^-96 < |b| <= 2^96: below, the machine
counts it as 0 (``fleq_functions.product``: part of the semantics, not measured in ulps).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Callable, Optional

import numpy as np

from fleqc.machines.fleq.functions import FLEQ_FUNCTIONS
from fleqc.machines.fleq.windows import EXP_MAX, PRODUCT_LADDER, TABLE_LADDER

LOWEST_EXPONENT = -1074  # 2^-1074: the smallest subnormal


def _floats(rng: np.random.Generator, shape, lo: int, hi: int, signed: bool = True) -> np.ndarray:
    """Values m 2^e with e uniform in [lo, hi) and m uniform in [1, 2) (rounded to 53 bits)."""
    x = np.ldexp(rng.uniform(1.0, 2.0, shape), rng.integers(lo, hi, shape))
    return x * rng.choice([-1.0, 1.0], shape) if signed else x


def _sampler(func: str) -> Callable[[np.random.Generator, tuple], tuple[np.ndarray, Optional[np.ndarray]]]:
    """How operands inside ``func``'s window are drawn (binary exponents [lo, hi): |x| < 2^hi)."""
    tab = (TABLE_LADDER.thresholds[0] + 1, TABLE_LADDER.thresholds[-1])  # 2^-81 < |x| <= 2^81
    factor = (PRODUCT_LADDER.thresholds[0] + 1, PRODUCT_LADDER.thresholds[-1])  # 2^-96 < |b| <= 2^96
    if func in ("add", "sub"):  # |a|, |b| < 2^999: |a +- b| < 2^1000
        return lambda rng, s: (_floats(rng, s, LOWEST_EXPONENT, 999), _floats(rng, s, LOWEST_EXPONENT, 999))
    if func in ("mov", "transpose", "relu"):
        return lambda rng, s: (_floats(rng, s, LOWEST_EXPONENT, 1000), None)
    if func == "sigmoid":  # half across every exponent, half in the curved part |x| < 40 (where it errs)
        return lambda rng, s: (np.where(rng.random(s) < 0.5, _floats(rng, s, LOWEST_EXPONENT, 1000),
                                        rng.uniform(-40.0, 40.0, s)), None)
    if func in ("mul", "matmul"):  # |a| < 2^(1000 - 96 - 5): |a b| < 2^995, a sum of 8 below 2^998
        return lambda rng, s: (_floats(rng, s, LOWEST_EXPONENT, 1000 - factor[1] - 5), _floats(rng, s, *factor))
    if func == "mulerr":  # as mul, with |a| > 2^-500 (mulerr's window)
        return lambda rng, s: (_floats(rng, s, -499, 1000 - factor[1] - 5), _floats(rng, s, *factor))
    if func == "recip":
        return lambda rng, s: (_floats(rng, s, *tab), None)
    if func in ("sqrt", "log"):
        return lambda rng, s: (_floats(rng, s, *tab, signed=False), None)
    assert func == "exp", func
    return lambda rng, s: (rng.uniform(-745.0, EXP_MAX, s), None)


def accepted_operands(func: str, rng: np.random.Generator, shape: tuple) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Operands (a, b) of ``shape`` inside ``func``'s window (checked against its record)."""
    a, b = _sampler(func)(rng, shape)
    assert FLEQ_FUNCTIONS[func].refusal(a, b) is None, (func, FLEQ_FUNCTIONS[func].refusal(a, b))
    return a, b


def _rounded(value: Fraction) -> float:
    return float(value)  # Fraction -> float rounds to nearest, ties to even


def _exact(func: str, x: float, y: float) -> Fraction:
    """The exact value of a rational function at one entry."""
    a, b = Fraction(x), Fraction(y)
    return {"add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b, "recip": lambda: 1 / a,
            "mulerr": lambda: a * b - Fraction(_rounded(a * b)),  # a float: no rounding left
            "mov": lambda: a, "transpose": lambda: a, "relu": lambda: max(a, Fraction(0))}[func]()


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-x) with full relative precision in both tails (e^x / (1 + e^x) for x < 0)."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


# The stand-ins for the correctly rounded value where it is not rational: IEEE's sqrt, numpy's exp and
# log (within 1 ulp), numpy's sigmoid formula (up to 1.8 ulps from the exact value).
_LIBM: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sqrt": np.vectorize(math.sqrt, otypes=[float]),
    "exp": np.exp,
    "log": np.log,
    "sigmoid": _sigmoid,
}


def ulp_errors(func: str, a: np.ndarray, b: Optional[np.ndarray], got: np.ndarray) -> np.ndarray:
    """|got - correctly rounded value| / ulp(correctly rounded value), entry by entry (matmul:
    |got - correctly rounded sum| / ulp(sum_k |a_ik b_kj|))."""
    got = np.asarray(got, dtype=np.float64)
    if func == "matmul":
        return _matmul_ulps(a, b, got)
    if func == "transpose":
        a = a.T
    if func in _LIBM:
        rounded = _LIBM[func](a)
        return np.abs(got - rounded) / np.vectorize(math.ulp)(rounded)
    bb = np.broadcast_to(b, a.shape) if b is not None else np.zeros_like(a)
    out = np.empty(a.shape)
    for index in np.ndindex(a.shape):
        rounded = _rounded(_exact(func, float(a[index]), float(bb[index])))
        out[index] = _distance(float(got[index]), rounded, rounded)
    return out


def _matmul_ulps(a: np.ndarray, b: np.ndarray, got: np.ndarray) -> np.ndarray:
    A = [[Fraction(float(x)) for x in row] for row in np.atleast_2d(a)]
    B = [[Fraction(float(x)) for x in row] for row in b]
    out = np.empty(got.shape)
    for i, j in np.ndindex(got.shape):
        terms = [A[i][k] * B[k][j] for k in range(len(B))]
        scale = _rounded(sum(abs(t) for t in terms))
        out[i, j] = _distance(float(got[i, j]), _rounded(sum(terms)), scale)
    return out


def _distance(got: float, rounded: float, scale: float) -> float:
    """|got - rounded| in ulps of ``scale``, exactly (a float difference could round)."""
    return float(abs(Fraction(got) - Fraction(rounded)) / Fraction(math.ulp(scale)))
