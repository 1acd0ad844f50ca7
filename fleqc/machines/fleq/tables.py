"""recip, sqrt, log, exp and sigmoid as the FLEQ machine defines them: linear interpolation in a
table, computed without rounding, so the reference interpreter and every engine of the transformer
agree bit for bit. exp's range reduction and sigmoid (e^z, z from a table of
log(1 + e^-y)) are at the end of this module.

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
every addition is exact, whatever order an engine adds in (numpy, BLAS, torch, ONNX). The only
roundings are q's (one IEEE addition, x' + 1.5 2^23) and log's last addition, one IEEE operation
each, so every backend computes the same bits. The reference
computes ``v_j + k_j (q - t_j)`` (exact too), the ladder by ``np.frexp``.

Accuracy (the interpolation error of a line between knots, h^2 |f''| / 8, and 2^-30 from q and from
the values; the worst cases lie near interval midpoints at x' ~ 1/2): recip within 2.4e-7 relative
(about 2^-22), sqrt within 3.1e-8 relative (2^-25), log within 1.21e-7 absolute (2^-23)
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
REDUCED = ("recip", "sqrt", "log")  # the tables of x' in (1/2, 2] (the machine's g_tab rows: this order)
FUNCTIONS = {"recip": lambda t: 1.0 / t, "sqrt": np.sqrt, "log": np.log, "exp": np.exp,
             "softplus": lambda t: np.log1p(np.exp(-t))}  # softplus: b(y) = log(1 + e^-y), sigmoid's table
LOG4 = 2.0 * math.log(2.0)


@dataclass(frozen=True)
class Table:
    """One function's knots ``t`` (recip, sqrt, log: 2,049; exp: 1,421; softplus: 4,375), values
    ``v`` and interval slopes ``k``; ``kinks``: the ReLU coefficients k_0, k_1 - k_0, ... (one per
    interval start)."""

    name: str
    t: np.ndarray
    v: np.ndarray
    k: np.ndarray

    @property
    def kinks(self) -> np.ndarray:
        return np.diff(self.k, prepend=0.0)

    @property
    def kinks_from_the_right(self) -> np.ndarray:
        """The coefficients c_j of g(q) = v_N + sum_(j>=1) c_j ReLU(t_j - q), one per knot t_1 .. t_N:
        k_j - k_(j-1) at the inner knots, -k_(N-1) at the last (the sum telescopes to the same line).
        For a convex g they are >= 0, so every partial sum lies between 0 and g(0) - v_N."""
        return np.append(np.diff(self.k), -self.k[-1])


def knots(name: str = "recip") -> np.ndarray:
    """recip, sqrt, log: 1/2, 1/2 + 2^-11, ..., 1, 1 + 2^-10, ..., 2. exp: 0, 2^-11, ..., 1420 2^-11
    (just above LN2)."""
    if name == "exp":
        return FINE * np.arange(EXP_KNOTS)
    if name == "softplus":
        return softplus_knots()
    return np.concatenate([0.5 + FINE * np.arange(1024), 1.0 + COARSE * np.arange(1025)])


@functools.lru_cache(maxsize=None)
def table(name: str) -> Table:
    t = knots(name)
    v = np.round(FUNCTIONS[name](t) / VALUE_QUANTUM) * VALUE_QUANTUM  # multiples of 2^-30 (exact)
    if name == "exp":
        v[-1] = _exp_last_value(t, v)
    k = np.diff(v) / np.diff(t)  # a division by a power of two: exact
    for array in (t, v, k):
        array.flags.writeable = False
    return Table(name, t, v, k)


def _exp_last_value(t: np.ndarray, v: np.ndarray) -> float:
    """exp's last knot value, lowered on its grid (by 112 2^-30) so that the line stays <= 2 up to the
    largest argument the table sees, LN2 rounded to 2^-29 (46 2^-40 above LN2): then 2^n T(r) never
    exceeds 2^(n+1), exp is monotone across every power of two and exp(x) <= 1 for x <= 0 (so
    sigmoid <= 1). The line on that last interval stays within 1.1e-8 of e^r, relative."""
    top = math.floor(LN2 / QUANTUM + 0.5) * QUANTUM  # the largest r < LN2 on the 2^-29 grid after rounding
    h = t[-1] - t[-2]
    cap = v[-2] + (2.0 - v[-2]) * h / (top - t[-2])
    return min(float(v[-1]), math.floor(cap / VALUE_QUANTUM) * VALUE_QUANTUM)


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


def log_offset(s):
    """s ln 4 (one rounding) for a selector s or an array of them: the constant the machine's weights
    hold for each selector."""
    return s * LOG4


def evaluate(name: str, x: np.ndarray) -> np.ndarray:
    """The FLEQ function ``name`` (recip, sqrt, log, exp or sigmoid) at x inside its window; recip, sqrt and
    log give 0 at x = 0."""
    x = np.asarray(x, dtype=np.float64)
    if name == "exp":
        return exp(x)
    if name == "sigmoid":
        return sigmoid(x)
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
        value = g + log_offset(s)
    out[nonzero] = value
    return out + 0.0


# -- exp -------------------------------------------------------------------------------------------
#
# e^x = 2^n e^r: x rounded to a multiple of 2^-40 (q, one IEEE addition) is reduced by three levels of
# exact thresholds, q = (64 A + 8 B + C) LN2 + r with r in [0, LN2) (LN2: ln 2 on the 2^-40 grid, every
# threshold and remainder a multiple of 2^-40 below 2^11, so exact); r rounded to 2^-29 enters exp's
# table (knots every 2^-11 on [0, 0.6934], values e^t on 2^-30, so kinks on 2^-19 and every term a
# multiple of 2^-48, every partial sum below 3: exact in any order); the table's value in
# [1, 2 + 2^-24) times 2^(8 B + C) is exact, times 2^(64 A) rounds once where the result is
# subnormal (as ldexp does). e^0 = 1 exactly (r = 0, T(0) = 1). Accuracy: within 3.2e-8 relative
# (measured worst 3.12e-8: the table's line about 3.1e-8, q's and r's roundings 2^-41 and 2^-30,
# LN2's error times n <= 1,108 about 2^-32); 0 below x = -768.

EXP_QUANTUM = 2.0**-40  # q: x rounded to this grid
EXP_ROUNDER = 1.5 * 2.0**12  # x + EXP_ROUNDER rounds x in [-768, 694] to a multiple of 2^-40
LN2 = round(math.log(2.0) / EXP_QUANTUM) * EXP_QUANTUM  # ln 2 on that grid (2^-42.4 from ln 2)
EXP_FLOOR = -768.0  # below: e^x = 0 (e^-768 < 2^-1107 rounds to 0)
EXP_MAX = 693.1471805599452  # the largest float x with e^x <= 2^1000, the machine's largest value; the
# table stays within 2^1000 up to 693.1471805610495 (near the top of a binade it lies below e^x), but
# a routine that computes e^x accurately (the stdlib's exp) must not be handed a larger x
EXP_KNOTS = 1421  # exp's table: knots 0, 2^-11, ..., 1420 2^-11 = 0.6934 >= LN2 rounded to 2^-29


@dataclass(frozen=True)
class Level:
    """One level of exp's range reduction: q_next = q - step LN2 (first + #{j : q >= step j LN2})."""

    step: int  # in units of LN2: the power of two 2^step per selector
    first: int  # the selector when q is above no threshold
    thresholds: range  # j of the thresholds step j LN2

    def tau(self, j: int) -> float:
        return self.step * j * LN2  # exact: a multiple of 2^-40 below 2^11

    def selector(self, q: np.ndarray) -> np.ndarray:
        return self.first + sum((q >= self.tau(j)).astype(np.int64) for j in self.thresholds)


# n = 64 A + 8 B + C: A in [-18, 15], B and C in [0, 7]; r = q - n LN2 in [0, LN2)
EXP_LEVELS = (Level(64, -18, range(-17, 16)), Level(8, 0, range(1, 8)), Level(1, 0, range(1, 8)))


def exp_reduce(x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """x in [EXP_FLOOR, EXP_MAX] -> (r, [A, B, C]): q = x rounded to 2^-40 = (64 A + 8 B + C) LN2 + r,
    r in [0, LN2), all exact."""
    q = (np.asarray(x, dtype=np.float64) + EXP_ROUNDER) - EXP_ROUNDER
    selectors = []
    for level in EXP_LEVELS:
        s = level.selector(q)
        q = q - level.step * LN2 * s  # exact: both multiples of 2^-40, the difference below 2^11
        selectors.append(s)
    return q, selectors


def exp(x: np.ndarray) -> np.ndarray:
    """e^x as the FLEQ machine computes it, for x <= EXP_MAX: 2^n T(r) (one rounding, by ldexp, when
    the result is subnormal); 0 below EXP_FLOOR."""
    x = np.asarray(x, dtype=np.float64)
    out = np.zeros(x.shape)
    live = x >= EXP_FLOOR
    r, (A, B, C) = exp_reduce(x[live])
    g = interpolate("exp", quantise(r))
    outer, middle, inner = (level.step for level in EXP_LEVELS)  # 64, 8, 1
    out[live] = np.ldexp(np.ldexp(g, middle * B + inner * C), outer * A)  # the first scaling is exact
    return out + 0.0


# -- sigmoid ---------------------------------------------------------------------------------------
#
# sigmoid(x) = e^z with z = min(x, 0) - b(|x|), b(y) = log(1 + e^-y) (for x >= 0: 1 / (1 + e^-x) =
# e^-b(x); for x < 0: e^x / (1 + e^x) = e^(x - b(-x))). The machine and the reference compute
#
#     y = min(|x|, SIGMOID_Y) rounded to a multiple of 2^-26 (one IEEE addition, SIGMOID_ROUNDER)
#     b = the line of the softplus table at y (exact)
#     z = fl(min(x, 0) - b)                                  (one IEEE subtraction)
#     sigmoid(x) = exp(z)                                    (the exp above, 0 below EXP_FLOOR)
#
# The table: knots from 0 to SIGMOID_Y = 22 with spacing 2^-10 near 0, doubled, quarter by quarter,
# wherever the line's error h^2/8 max|b''| stays within 2^-25 (up to 2^-3: SIGMOID_COARSEST);
# values b(t) rounded to 2^-30. The machine sums v_N + sum_j c_j ReLU(t_j - q) (the kinks taken from
# the right, Table.kinks_from_the_right): b is convex, so the c_j are >= 0 but for a few rounding
# wiggles in the flat tail, every term is a multiple of 2^-56 / 2^-3 = 2^-53 (slopes on 2^-27, y on
# 2^-26), and the positive terms add up to at most b(0) = 0.69 (the negative to 1e-6): every partial
# sum is a multiple of 2^-53 below 1, exact in any order. b(22) < 2.8e-10 rounds to 0, so beyond 22
# sigmoid is exactly exp(min(x, 0)): 1 for x >= 22, the exp block for x <= -22. Accuracy: b within
# 3.4e-8 (the line 3e-8, y's rounding 2^-27 |b'|, the values 2^-31), so sigmoid within 6.6e-8
# relative with exp's 3.2e-8 (measured: README). 4,375 knots; the machine needs one unit per nonzero
# kink (4,352: the tail's rounded values are flat in places).

SIGMOID_Y = 22.0  # |x| beyond: b = 0 (b(22) < 2.8e-10 rounds to 0 on the values' grid)
SIGMOID_QUANTUM = 2.0**-26  # y: min(|x|, 22) rounded to this grid
SIGMOID_ROUNDER = 1.5 * 2.0**26  # y + SIGMOID_ROUNDER rounds y in [0, 22] to a multiple of 2^-26
SIGMOID_FINEST, SIGMOID_COARSEST = 2.0**-10, 2.0**-3  # the table's knot spacing
SIGMOID_LINE_ERROR = 2.0**-25  # each quarter's spacing: the largest with h^2/8 max|b''| within this


def softplus_knots() -> np.ndarray:
    """0 = t_0 < ... < t_N = SIGMOID_Y: each quarter [i/4, (i+1)/4) at the coarsest power-of-two
    spacing between SIGMOID_FINEST and SIGMOID_COARSEST whose line error stays within
    SIGMOID_LINE_ERROR (b'' = e^-y / (1 + e^-y)^2 falls with y, so its maximum is at the start)."""
    t = [0.0]
    for quarter in range(int(4 * SIGMOID_Y)):
        start = quarter / 4
        e = math.exp(-start)
        curvature = e / (1 + e) ** 2
        h = SIGMOID_COARSEST
        while h * h / 8 * curvature > SIGMOID_LINE_ERROR and h > SIGMOID_FINEST:
            h /= 2
        t += [start + h * k for k in range(1, int(0.25 / h) + 1)]
    return np.array(t)


def sigmoid_reduce(x: np.ndarray) -> np.ndarray:
    """z = fl(min(x, 0) - b(y)), y = min(|x|, 22) rounded to 2^-26: sigmoid(x) = exp(z)."""
    x = np.asarray(x, dtype=np.float64)
    y = (np.minimum(np.abs(x), SIGMOID_Y) + SIGMOID_ROUNDER) - SIGMOID_ROUNDER
    return np.minimum(x, 0.0) - interpolate("softplus", y)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-x) as the FLEQ machine computes it: exp(sigmoid_reduce(x)), for every float x."""
    return exp(sigmoid_reduce(x))
