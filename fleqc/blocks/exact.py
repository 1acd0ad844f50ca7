"""Exact tools for real-valued machines: gates, power-of-two splits, thresholds, the exact sign.

Every tool here moves float64 values through ReLU units *without rounding them* (or with one
stated rounding). The facts they rest on are measured in docs/fleq-design.md
(reproduced by ``bench/fleq_block_study.py``).

**Exact gate.** ``out += x`` if every row of ``notsel`` is 0, else ``out += 0``::

    ReLU(x - C sum(notsel)) - ReLU(-x - C sum(notsel)),     C = 2^1020

When selected the pre-activation is x plus exact zeros, so the output is x bit for bit (-0.0 comes
out as +0.0). Otherwise sum(notsel) >= ~1 and |x| <= 2^1002 < C, so both units are 0. The indicator
rows are 0/1 rows of X (never ``1 - row`` with a constant: x + C - C rounds x away).

**Scaled gate.** ``out += 2^e x`` under a gate: the power of two is split so that no pre-activation
can overflow: inside the unit x is multiplied by min(2^e, 1), the output weight is max(2^e, 1).

**Exact threshold** ``[x > tau]`` in two layers, for every finite x::

    layer A:  r = ReLU(x - tau)                      r > 0 iff x > tau, and then r >= ulp(tau)
    layer B:  u = ReLU(1 - G r), G = 1 / ulp(tau);   t = 1 - u (the 1 is the output bias b2)

u and t are exactly 0 or 1 (G r may overflow to inf: the pre-activation is -inf and the ReLU 0).

**Soft closers.** A gate on a value z derived from x (z = 2^-e x with z <= |x|, the power of two
scaled out as :func:`scaled_gate` does) may be closed by a distance of x itself instead of a 0/1 row:
``r = ReLU(x - tau)`` (0 iff x <= tau) and ``v = ReLU(tau+ - x)`` (tau+ the float after tau: 0 iff
x > tau) are, when not 0, at least ulp(tau) = tau 2^-52 (one IEEE addition cannot round a sum below a
float it exceeds), and r >= x 2^-53 once x > tau; so C r >= 2^967 |x| >= |z| and C v >= 2^968 tau
>= |z| for x <= tau, and the gate is closed, in one layer instead of the threshold's two (C r may
overflow to inf: the pre-activation is -inf and the ReLU 0). Only the value measured may be gated
this way: a distance of x cannot close a gate on another factor.

**Exact sign** ``[x > 0]`` for every float x (|x| <= 2^1000), in three feed-forward layers, with
SMALL = 2^-60::

    layer A:  r = ReLU(x - SMALL);  m = ReLU(x) - ReLU(x - SMALL)     (m = x for 0 <= x <= SMALL)
    layer B:  t = [x > SMALL] (exact threshold from r);  big = 2^74 ReLU(2^1000 m)
    layer C:  [x > 0] = 1 - ReLU(1 - t - big)

m has two nonzero terms (one rounding), lies in [0, 2 SMALL] and is 0 for x <= 0; for
0 < x <= SMALL it is x itself, so big = 2^1074 x >= 1 (two exact power-of-two scalings: no single
float weight is 2^1074), and big <= 2^1015 always. So t + big is 0 iff x <= 0 and >= 1 otherwise,
and 1 - t - big rounds to a value <= 0 in any order of addition whenever it is <= 0 exactly (the
rounded sum is monotone in big, and exact at big = 1). No softmax: every engine gives these bits.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

from fleqc.blocks.builders import FeedForwardBuilder

GATE = 2.0**1020
PENALTY = 1024.0  # score gap that makes a softmax weight exactly 0 (e^-1024 underflows to 0)


def _merge(*parts: Mapping[int, float]) -> dict[int, float]:
    total: dict[int, float] = {}
    for part in parts:
        for row, coef in part.items():
            total[row] = total.get(row, 0.0) + coef
    return total


def gate(
    ffn: FeedForwardBuilder,
    terms: Mapping[int, float],
    notsel: Iterable[int],
    outputs: Mapping[int, float],
    constant: float = 0.0,
) -> None:
    """outputs += coef * (sum terms + constant) if every ``notsel`` row is 0, else 0 (2 units)."""
    closed = _merge(*({r: -GATE} for r in notsel))
    one = ffn.rows["one"][0]
    plus = _merge(terms, closed, {one: constant} if constant else {})
    minus = _merge({r: -c for r, c in terms.items()}, closed, {one: -constant} if constant else {})
    ffn.unit(plus, 0.0, outputs)
    ffn.unit(minus, 0.0, {r: -c for r, c in outputs.items()})


def split_gate(
    ffn: FeedForwardBuilder,
    terms: Mapping[int, float],
    notsel: Iterable[int],
    plus: Mapping[int, float],
    minus: Mapping[int, float],
) -> None:
    """gate's two units with their outputs apart: plus += coef * max(x, 0) and minus += coef * max(-x, 0)
    if every ``notsel`` row is 0, else 0 (2 units); ``gate(terms, notsel, out)`` is
    ``split_gate(terms, notsel, out, -out)``."""
    closed = _merge(*({r: -GATE} for r in notsel))
    ffn.unit(_merge(terms, closed), 0.0, plus)
    ffn.unit(_merge({r: -c for r, c in terms.items()}, closed), 0.0, minus)


def scaled_gate(
    ffn: FeedForwardBuilder,
    terms: Mapping[int, float],
    exponent: int,
    notsel: Iterable[int],
    outputs: Mapping[int, float],
    constant: float = 0.0,
) -> None:
    """outputs += coef * 2^exponent * (sum terms + constant) under a gate; no unit can overflow."""
    inner = 2.0 ** min(exponent, 0)
    outer = 2.0 ** max(exponent, 0)
    gate(
        ffn,
        {r: c * inner for r, c in terms.items()},
        notsel,
        {r: c * outer for r, c in outputs.items()},
        constant * inner,
    )


def scaled_abs_gate(
    ffn: FeedForwardBuilder,
    terms: Mapping[int, float],
    exponent: int,
    notsel: Iterable[int],
    outputs: Mapping[int, float],
) -> None:
    """outputs += coef * 2^exponent * |sum terms| under a gate (2 units: the two halves of
    scaled_gate, both added); no unit can overflow."""
    notsel = tuple(notsel)
    scaled_positive_gate(ffn, terms, exponent, notsel, outputs)
    scaled_positive_gate(ffn, {r: -c for r, c in terms.items()}, exponent, notsel, outputs)


def scaled_positive_gate(
    ffn: FeedForwardBuilder,
    terms: Mapping[int, float],
    exponent: int,
    notsel: Iterable[int],
    outputs: Mapping[int, float],
) -> None:
    """outputs += coef * 2^exponent * x under a gate, for x = sum terms >= 0 (1 unit: the half of
    scaled_gate that a nonnegative x can open); no unit can overflow."""
    inner = 2.0 ** min(exponent, 0)
    closed = _merge(*({r: -GATE} for r in notsel))
    ffn.unit(_merge({r: c * inner for r, c in terms.items()}, closed), 0.0,
             {r: c * 2.0 ** max(exponent, 0) for r, c in outputs.items()})


def relu_gate(ffn: FeedForwardBuilder, terms: Mapping[int, float], notsel: Iterable[int], output: int) -> None:
    """output += max(x, 0) if every ``notsel`` row is 0, else 0 (1 unit)."""
    ffn.unit(_merge(terms, *({r: -GATE} for r in notsel)), 0.0, {output: 1.0})


def conjunction(ffn: FeedForwardBuilder, indicator: int, notsel: Iterable[int], output: int) -> None:
    """output += [indicator = 1 and every notsel row = 0] (0/1 rows; 1 unit)."""
    ffn.unit(_merge({indicator: 1.0}, *({r: -1.0} for r in notsel)), 0.0, {output: 1.0})


def threshold_distance(ffn: FeedForwardBuilder, terms: Mapping[int, float], tau: float, output: int) -> None:
    """Layer A: output += ReLU(x - tau), x = sum terms (1 unit)."""
    ffn.unit(terms, -tau, {output: 1.0})


def threshold_below(ffn: FeedForwardBuilder, terms: Mapping[int, float], tau: float, output: int,
                    notsel: Iterable[int] = ()) -> None:
    """Layer A, the other side: output += ReLU(tau+ - x), tau+ the float after tau, x = sum terms (1 unit;
    0, as for a large x, if a ``notsel`` row is 1). 0 iff x > tau, else at least ulp(tau): with
    :func:`threshold_distance`'s ReLU(x - tau) a pair of soft closers (above)."""
    ffn.unit(_merge({r: -c for r, c in terms.items()}, *({r: -GATE} for r in notsel)),
             math.nextafter(tau, math.inf), {output: 1.0})


def at_most(ffn: FeedForwardBuilder, distance: int | Sequence[int], tau: float, outputs: Mapping[int, float]) -> None:
    """Layer B's unit: outputs += coef * [x <= tau] (exactly 0 or 1) from distance = ReLU(x - tau), or a
    sum of such (several rows, at most one of them nonzero): ReLU(1 - G distance), G = 1 / ulp(tau)."""
    one = ffn.rows["one"][0]
    rows = list(distance) if isinstance(distance, (list, tuple)) else [distance]
    ffn.unit({one: 1.0, **{r: -1.0 / math.ulp(tau) for r in rows}}, 0.0, outputs)


def threshold_indicators(ffn: FeedForwardBuilder, distance: int | Sequence[int], tau: float, below: int, above: int,
                         also: Mapping[int, float] | None = None) -> None:
    """Layer B: below = [x <= tau], above = [x > tau] from distance = ReLU(x - tau) (or a sum of such:
    several rows, at most one of them nonzero); ``also``: more rows that get coef * [x <= tau] from
    the same unit (:func:`at_most`)."""
    at_most(ffn, distance, tau, {below: 1.0, above: -1.0, **(also or {})})
    ffn.bias(above, 1.0)


def threshold_above(ffn: FeedForwardBuilder, distance: int, tau: float, above: int) -> None:
    """Layer B, one row: above = [x > tau] from distance = ReLU(x - tau) (1 unit)."""
    at_most(ffn, distance, tau, {above: -1.0})
    ffn.bias(above, 1.0)


SIGN_SMALL = 2.0**-60  # the exact sign's split: below it x is scaled up by 2^1074, above it a threshold decides


def sign_a(ffn: FeedForwardBuilder, terms: Mapping[int, float], r: int, m: int) -> None:
    """Exact sign, layer A: r += ReLU(x - SMALL), m += ReLU(x) - ReLU(x - SMALL) (3 units)."""
    threshold_distance(ffn, terms, SIGN_SMALL, r)
    ffn.unit(terms, 0.0, {m: 1.0})
    ffn.unit(terms, -SIGN_SMALL, {m: -1.0})


def sign_b(ffn: FeedForwardBuilder, r: int, m: int, below: int, above: int, big: int) -> None:
    """Exact sign, layer B: above = [x > SMALL], below = 1 - above; big = 2^1074 m (2 units)."""
    threshold_indicators(ffn, r, SIGN_SMALL, below, above)
    ffn.unit({m: 2.0**1000}, 0.0, {big: 2.0**74})


def sign_c(ffn: FeedForwardBuilder, above: int, big: int, notsel: Iterable[int], output: int) -> None:
    """Exact sign, layer C: output += [x > 0 and every notsel row = 0] (0/1 rows; 2 units):
    e - ReLU(e - above - big) with e = ReLU(1 - sum notsel)."""
    one = ffn.rows["one"][0]
    closed = {r: -1.0 for r in notsel}
    ffn.unit(_merge({one: 1.0}, closed), 0.0, {output: 1.0})
    ffn.unit(_merge({one: 1.0, above: -1.0, big: -1.0}, closed), 0.0, {output: -1.0})


def clear_rows(ffn: FeedForwardBuilder, rows: Iterable[int], nonnegative: Iterable[int] = ()) -> None:
    """Every listed row <- 0 exactly: X[r] += -(ReLU(x) - ReLU(-x)); rows that the construction keeps
    >= 0 need only -ReLU(x) (were one ever negative, the health check would see it left over)."""
    nonnegative = set(nonnegative)
    for row in rows:
        if row in nonnegative:
            ffn.unit({row: 1.0}, 0.0, {row: -1.0})
        else:
            ffn.identity(row, {row: -1.0})
