"""recip, sqrt and log as the FLEQ machine defines them: linear interpolation in a table, computed
without rounding, so the reference interpreter and every engine of the transformer agree bit for
bit (issue 13).

For x inside the window 2^-81 < |x| <= 2^81::

    |x| = x' 4^s             x' in (1/2, 2], s in [-40, 40]   (the machine's power-of-two ladder)
    q = x' rounded to a multiple of QUANTUM = 2^-29 (ties to even)
    g(q) = v_j + k_j (q - t_j)     for t_j <= q <= t_(j+1): the line through the knots (t_j, v_j)
    recip(x) = sign(x) 4^-s g_recip(q);   sqrt(x) = 2^s g_sqrt(q);   log(x) = fl(g_log(q) + s ln 4)

The knots t_j are spaced 2^-11 on [1/2, 1] and 2^-10 on [1, 2] (2,048 intervals); each value v_j is
f(t_j) rounded to a multiple of 2^-30, so each slope k_j = (v_(j+1) - v_j) / (t_(j+1) - t_j) is a
multiple of 2^-20. The feed-forward layers of the machine compute g as
``v_0 + sum_j (k_j - k_(j-1)) ReLU(q - t_j)`` (the same number: the sum telescopes), where every term
is a multiple of 2^-49 and every partial sum, in any order, is below 7 in magnitude (the larger of
the sums of the positive and of the negative terms at q = 2), far below 2^53 units of 2^-49 = 16:
every addition is exact, whatever order an engine adds in (numpy, BLAS, torch, ONNX). The only roundings are q's (one IEEE addition, x' + 1.5 2^23) and log's last
addition, one IEEE operation each, so every backend computes the same bits. The reference
computes ``v_j + k_j (q - t_j)`` (exact too), the ladder by ``np.frexp``.

Accuracy (the interpolation error of a line between knots, h^2 |f''| / 8, and 2^-30 from q and from
the values; measured on 10^5 random operands): recip within 2.4e-7 relative (2^-22), sqrt within
2^-25, log within 2^-23 absolute
(README "Measured figures" gives the measured worst case in ulps). These are seeds: the stdlib's
div and sqrt (correctly rounded) and log (within 1 ulp) refine them with exact products.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

QUANTUM = 2.0**-29  # q: x' rounded to this grid
ROUNDER = 1.5 * 2.0**23  # x' + ROUNDER rounds x' in (1/2, 2] to a multiple of 2^-29 (the float spacing there)
VALUE_QUANTUM = 2.0**-30  # the knot values' grid
FINE, COARSE = 2.0**-11, 2.0**-10  # knot spacing on [1/2, 1] and on [1, 2]
FUNCTIONS = {"recip": lambda t: 1.0 / t, "sqrt": np.sqrt, "log": np.log}
LOG4 = 2.0 * math.log(2.0)


@dataclass(frozen=True)
class Table:
    """One function's knots ``t`` (2,049), values ``v`` and interval slopes ``k`` (2,048); ``kinks``:
    the ReLU coefficients k_0, k_1 - k_0, ... (one per interval start t_0 .. t_2047)."""

    name: str
    t: np.ndarray
    v: np.ndarray
    k: np.ndarray

    @property
    def kinks(self) -> np.ndarray:
        return np.diff(self.k, prepend=0.0)


def knots() -> np.ndarray:
    """1/2, 1/2 + 2^-11, ..., 1, 1 + 2^-10, ..., 2."""
    return np.concatenate([0.5 + FINE * np.arange(1024), 1.0 + COARSE * np.arange(1025)])


@functools.lru_cache(maxsize=None)
def table(name: str) -> Table:
    t = knots()
    v = np.round(FUNCTIONS[name](t) / VALUE_QUANTUM) * VALUE_QUANTUM  # multiples of 2^-30 (exact)
    k = np.diff(v) / np.diff(t)  # a division by a power of two: exact
    for array in (t, v, k):
        array.flags.writeable = False
    return Table(name, t, v, k)


def quantise(x: np.ndarray) -> np.ndarray:
    """x' in (1/2, 2] rounded to a multiple of 2^-29, ties to even (one IEEE addition)."""
    return (np.asarray(x, dtype=np.float64) + ROUNDER) - ROUNDER


def interpolate(name: str, q: np.ndarray) -> np.ndarray:
    """g(q) for q on the grid in [1/2, 2]: v_j + k_j (q - t_j), exact in float64."""
    tab = table(name)
    j = np.clip(np.searchsorted(tab.t, q, side="right") - 1, 0, len(tab.k) - 1)
    return tab.v[j] + tab.k[j] * (q - tab.t[j])


def reduce(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """|x| = x' 4^s with x' in (1/2, 2] (x != 0): (x', s), both exact."""
    mantissa, exponent = np.frexp(np.abs(x))  # |x| = m 2^e, m in [1/2, 1)
    e = exponent - (mantissa == 0.5)  # |x| in (2^(e-1), 2^e]
    s = e // 2  # 2^(2s-1) < |x| <= 2^(2s+1) for e = 2s and for e = 2s + 1
    return np.ldexp(np.abs(x), -2 * s), s


def log_offset(s: int) -> float:
    """s ln 4 as the machine's weights hold it (one Python float per ladder selector)."""
    return s * LOG4


def evaluate(name: str, x: np.ndarray) -> np.ndarray:
    """The FLEQ function ``name`` (recip, sqrt or log) at x inside its window; 0 where x = 0."""
    x = np.asarray(x, dtype=np.float64)
    out = np.zeros(x.shape)
    nonzero = x != 0
    if not nonzero.any():
        return out
    xr, s = reduce(x[nonzero])
    g = interpolate(name, quantise(xr))
    if name == "recip":
        value = np.copysign(np.ldexp(g, -2 * s), x[nonzero])
    elif name == "sqrt":
        value = np.ldexp(g, s)
    else:
        value = g + np.array([log_offset(int(k)) for k in np.ravel(s)]).reshape(s.shape)
    out[nonzero] = value
    return out + 0.0
