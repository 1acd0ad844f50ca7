"""Errors in ulps: how far a FLEQ result lies from the correctly rounded float64
value of the exact function, in units in the last place of that value (0: bit-equal to the
correctly rounded result; the reference's add, sub and mul score 0).

The exact value comes from rational arithmetic (``fractions.Fraction``) wherever it is rational:
add, sub, mul, mulerr (the exact error a b - fl(a b)), recip and the copies, and matmul, whose
exact sums are rounded once. sqrt's correctly rounded value is IEEE ``math.sqrt``. exp, log and
sigmoid have no rational value; numpy's libm result stands for it there (within 1 ulp of correctly
rounded for exp and log; numpy's formula for sigmoid, up to 1.8 ulps off), which the figures state.

matmul is measured componentwise: the distance from the correctly rounded exact sum over ulp(sum_k |a_ik b_kj|), since a sum of products may
cancel to a result whose own ulp no float computation of that sum can reach.

The operands are drawn across each function's whole window by its record's ``sample`` (inside
its ``limits``): random exponents over the accepted binary orders of magnitude, subnormals included
where accepted, random 53-bit mantissas and signs; the exact value is the record's ``exact`` (or
its ``stand_in``). mul's factors are drawn across the whole float range (subnormals included),
with |a b| < 2^995.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Callable, Optional

import numpy as np

from fleqc.machines.fleq.functions import FLEQ_FUNCTIONS

def accepted_operands(func: str, rng: np.random.Generator, shape: tuple) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Operands (a, b) of ``shape`` inside ``func``'s window (checked against its record)."""
    a, b = FLEQ_FUNCTIONS[func].sample(rng, shape)
    assert FLEQ_FUNCTIONS[func].refusal(a, b) is None, (func, FLEQ_FUNCTIONS[func].refusal(a, b))
    return a, b


def _rounded(value: Fraction) -> float:
    return float(value)  # Fraction -> float rounds to nearest, ties to even


def ulp_errors(func: str, a: np.ndarray, b: Optional[np.ndarray], got: np.ndarray) -> np.ndarray:
    """|got - correctly rounded value| / ulp(correctly rounded value), entry by entry (matmul:
    |got - correctly rounded sum| / ulp(sum_k |a_ik b_kj|))."""
    got = np.asarray(got, dtype=np.float64)
    record = FLEQ_FUNCTIONS[func]
    if record.bound.componentwise:
        return _matmul_ulps(a, b, got)
    if func == "transpose":
        a = a.T
    if record.exact is None:
        rounded = record.stand_in(a)
        return np.abs(got - rounded) / np.vectorize(math.ulp)(rounded)
    bb = np.broadcast_to(b, a.shape) if b is not None else np.zeros_like(a)
    out = np.empty(a.shape)
    for index in np.ndindex(a.shape):
        rounded = _rounded(record.exact(Fraction(float(a[index])), Fraction(float(bb[index]))))
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
