"""A correctly rounded product x * y, and sums of such products in a stated order, from ReLU
feed-forward layers only (issue 13).

The attention product of the FLEQ machine (``fleq_machine.PRODUCT_HEADS``) is a Richardson
combination of two sigmoids: about 1e-10 relative. This block replaces it by integer arithmetic that
a feed-forward layer performs without rounding, followed by exactly one IEEE rounding, so the result
is ``fl(x * y)``, bit for bit what numpy's ``x * y`` gives. What a feed-forward layer computes
exactly (every fact below is about float64 and holds for any finite input):

- ``w x`` for a power of two ``w`` (no underflow: every quantity here is a multiple of the lowest bit
  of the scaled factor, which is at least 2^-1074);
- a pre-activation or output with two nonzero terms, counting the bias: one IEEE addition, whatever
  the order; exact when the exact sum is representable. ``ReLU(z) - ReLU(-z)`` passes z on;
- a sum of more nonzero terms (a W2 row gathering gates) is added in an order BLAS chooses, so such
  a sum is used only where every partial sum is exact (integer multiples of one power of two below
  2^53 of it). So the block computes the same bits whether a framework adds the bias before or
  after the products (numpy's ``W x + b``, torch's fused ``addmm``, TransformerLens, ONNX);
- an exact gate (``exact.gate``): ``x`` times a 0/1 row.

The stages (one feed-forward layer each; slot k works on its own rows, every slot in parallel):

 1. **outer ladder A / B** (the FLEQ machine's product ladder, step 8): thresholds of |y| at 2^(8j),
    and the single threshold [|x| <= 2^-500] ("small x").
 2. **outer split**: for selector s (2^8s < |y| <= 2^(8s+8)), ``p_y = y 2^-8s`` in (1, 256] and
    ``p_x = x 2^(8s) sigma`` with sigma = 2^-128, or 2^256 for a small x. sigma keeps every later
    quantity finite and exact: no bit of x is lost (a small x is scaled up), and a product of at most
    2^1096 stays below 2^1000 until the last stage (the machine faults beyond 2^1000 anyway).
 3. **inner ladder A / B** on p_y (thresholds 2^1 .. 2^7) and y's sign.
 4. **inner split**: for selector i (2^i < |p_y| <= 2^(i+1)): the integer ``m = |p_y| 2^(52-i)`` in
    (2^52, 2^53] and ``xs = sign(y) p_x 2^(i-52)``, so that x y = xs m / sigma.
 5. **halves**: ``hi = RN(m to a multiple of 2^27)`` by adding 1.5 2^79 (the float spacing there is
    2^27), ``lo = m - hi`` in [-2^26, 2^26]; Veltkamp's split of xs begins: C = fl((2^27 + 1) xs),
    Q = C - xs. The bias puts the constants 1 - M and 1 + M (M = 1.5 2^52) in the digit rows.
 6. **digits**: xs = x_hi + x_lo (x_hi = C - Q, at most 26 significant bits each); signed binary
    digits e_j in {-1, 0, 1} of H = hi / 2^27 and of lo, all at once: with r_j = RNE(v / 2^j) (a unit
    computes v 2^-j + M = M + r_j: the spacing at M is 1), e_j = r_j - 2 r_(j+1) and
    sum_j e_j 2^j = r_0 - 2^27 r_27 = v. A second unit computes v 2^-j + 2M = 2M + 2 r_(j+1) (spacing
    2), so the difference of the two units is M - e_j, and the rows get 1 - e_j and 1 + e_j (the
    gates' "not selected" rows for e_j = 1 and e_j = -1).
 7. **partial products**, each exact (a 26-bit factor times sums of +-2^j, every partial sum below
    2^53 of the factor's last bit, in any order): T1 = x_hi hi, T2 = x_lo hi, T3 = x_hi lo,
    T4 = x_lo lo. In units u of xs's last bit: |T1| < 2^106 u, T2 and T3 multiples of 2^27 u below
    2^79 u, |T4| <= 2^52 u.
 8. **middle**: M = T2 + T3, exact (an integer multiple of 2^27 u below 2^80 u).
 9. **two-sum** (Dekker's fast two-sum, |T1| >= |M|): s = fl(T1 + M), z = s - T1.
10. **error**: e = M - z, so that T1 + M = s + e exactly; w = T4 + e is exact (|e| <= ulp(s) / 2 <=
    2^52 u, a multiple of 2^27 u; |T4| <= 2^52 u: an integer number of u below 2^53).
11. **round**: x y sigma = s + w exactly, so ``fl(s + w)`` is the correctly rounded product (one IEEE
    addition of two floats rounds their exact sum); for x > 2^-500 the gate's output weight
    1/sigma = 2^128 scales it back exactly into the slot's ``prod`` row. Every slot's fl(s + w) also
    goes, unscaled, to a row ``rp`` of its own: the small-x path below reads it, and slot 0's gives
    the product's exact error x y - fl(x y) (:meth:`ProductBlock.product_error`, the FLEQ function
    ``mulerr``).
12. **subnormal grid** (small x only, sigma = 2^256): scaling p = fl(s + w) back by 2^-256 would round
    a second time when the product is subnormal (onto multiples of 2^-1074, i.e. of G = 2^-818 at
    the scaled level). This stage computes t = fl(p 2^-256) 2^256 (one rounding, ties to even: p
    itself when the product is normal) and p's error e = s + w - p = w + (s - p) (two terms, exact:
    Dekker's fast two-sum).
13. **subnormal remainder**: r = p - t (exact, |r| <= G/2) and [e <= 0], [e >= 0] as
    ReLU(1 -+ 2^966 e) (e is a multiple of 2^-966, the lowest bit of x y sigma).
14. **subnormal tie**: the second rounding differs from one rounding of x y sigma only when p lies
    exactly halfway between two multiples of G (r = +-G/2, i.e. 2^872 r = +-2^53) and e pushes the
    exact value past that midpoint: then the result is t 2^-256 +- 2^-1074 instead of t 2^-256. Two
    units test this (2^872 |r| - (2^53 - 1) is 1 at a midpoint and <= 0 otherwise; the [e ...] rows
    close them with weight 2^54), and the slot's ``prod`` row gets t 2^-256 plus their 0/1 outputs
    times +-2^-1074 (every term a multiple of 2^-1074 below 2^-1021: exact in any order). So the
    product is correctly rounded for a subnormal result too, bit for bit numpy's ``x * y``.
15. **tree**: a pairwise sum of the slots' products: ((p0 + p1) + (p2 + p3)) + ((p4 + p5) + (p6 + p7)),
    one level in the pre-activations and one in W2 per layer; the last level is left to the caller
    (the FLEQ machine's select gate adds the last two terms).

Faults: |y| > 2^96 (the outer ladder's top) and |T1| > 2^873 (a product beyond about 2^1001) are
reported through :func:`fault_rows`; the result is then 0, and nothing in the block overflows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from fleqc.blocks.builders import FeedForwardBuilder
from fleqc.blocks.exact import GATE, gate, scaled_gate, threshold_distance, threshold_indicators
from fleqc.card.rows import RowSpace
from fleqc.transformer.layers import LoopedTransformer
from fleqc.machines.fleq.windows import OUTER_HI, OUTER_LO, OUTER_STEP, SMALL_X

INNER = range(1, 8)  # inner thresholds 2^1 .. 2^7 on |p_y| in (1, 256]
SCALE_UP, SCALE_DOWN = 256, -128
SUBNORMAL_GRID = 2.0 ** (-1074 + SCALE_UP)  # G: the subnormal spacing 2^-1074 at the scaled level
ERROR_UNIT = 2.0**-966  # the lowest bit of x y 2^256 (2^-1074 of x, 2^-148 of |y| > 2^-96)
TIE_SCALE = 2.0 * 2.0**53 / SUBNORMAL_GRID  # r -> 2^53 at a midpoint r = G/2 (2^872)
TIE_CLOSED = 2.0**54  # closes a tie unit: above every value 2^872 |r| - 2^53 + 1 <= 1 can take
OVERFLOW = 2.0**873  # |T1| above this: the product is beyond 2^1000 (scaled by 2^-128)
HALF = 27  # the split of m: hi a multiple of 2^27
DIGITS = 27  # signed digits of H = hi / 2^27 in [2^25, 2^26] and of lo in [-2^26, 2^26]
MAGIC_HI = 1.5 * 2.0 ** (52 + HALF)  # m + MAGIC_HI rounds m to a multiple of 2^27
MAGIC = 1.5 * 2.0**52  # v + MAGIC rounds v to an integer (|v| < 2^51); v + 2 MAGIC to an even one
VELTKAMP = 2.0**HALF + 1.0


def row_blocks(slots: int, prefix: str = "xp_") -> list[tuple[str, int, str, str]]:
    """The temp rows of ``slots`` product slots (slot-major within each block)."""
    outer = OUTER_HI - OUTER_LO + 1
    inner = len(INNER)
    spec = [
        ("ol_r", slots * outer, "outer ladder: ReLU(|y| - 2^8j) (slot-major)"),
        ("ol_u", slots * outer, "outer ladder: [|y| <= 2^8j]"),
        ("ol_t", slots * outer, "outer ladder: [|y| > 2^8j]"),
        ("sm_r", slots, "ReLU(|x| - 2^-500)"),
        ("sm_u", slots, "[|x| <= 2^-500]: x is scaled up"),
        ("sm_t", slots, "[|x| > 2^-500]"),
        ("p_y", slots, "y 2^-8s in (1, 256] in magnitude"),
        ("p_x", slots, "x 2^8s sigma"),
        ("il_r", slots * inner, "inner ladder: ReLU(|p_y| - 2^i), i = 1..7"),
        ("il_u", slots * inner, "inner ladder: [|p_y| <= 2^i]"),
        ("il_t", slots * inner, "inner ladder: [|p_y| > 2^i]"),
        ("ng_r", slots, "ReLU(-p_y - 1/2)"),
        ("ng_u", slots, "[y >= 0]"),
        ("ng_t", slots, "[y < 0]"),
        ("m", slots, "the integer |p_y| 2^(52-i) in (2^52, 2^53]"),
        ("hi", slots, "m rounded to a multiple of 2^27"),
        ("lo", slots, "m - hi, in [-2^26, 2^26] (holds m until the halves stage)"),
        ("x_lo", slots, "Veltkamp's low half of xs (holds xs until the digits stage)"),
        ("q", slots, "C - xs (holds -xs until the halves stage)"),
        ("c", slots, "fl((2^27 + 1) xs)"),
        ("x_hi", slots, "Veltkamp's high half of xs"),
        ("p_h", slots * DIGITS, "1 - e_k, e_k the signed digit k of hi / 2^27 (0 iff e_k = 1)"),
        ("q_h", slots * DIGITS, "1 + e_k (0 iff e_k = -1)"),
        ("p_l", slots * DIGITS, "1 - e_k, e_k the signed digit k of lo"),
        ("q_l", slots * DIGITS, "1 + e_k"),
        ("t1", slots, "x_hi hi"),
        ("z", slots, "-t1, then s - t1"),
        ("t2", slots, "x_lo hi"),
        ("t3", slots, "x_hi lo"),
        ("w", slots, "x_lo lo, then + the two-sum's error"),
        ("mid", slots, "t2 + t3"),
        ("s", slots, "fl(t1 + mid)"),
        ("of_r", slots, "ReLU(|t1| - 2^873)"),
        ("of_u", slots, "[|t1| <= 2^873]"),
        ("of_t", slots, "[|t1| > 2^873]: the product overflows"),
        ("rp", slots, "fl(s + w), the product x y sigma rounded once"),
        ("sn_t", slots, "small x: fl(rp 2^-256) 2^256, rp rounded to the subnormal grid G"),
        ("sn_e", slots, "small x: s + w - rp, the error of rp (exact)"),
        ("sn_r", slots, "small x: rp - sn_t, in [-G/2, G/2]"),
        ("sn_np", slots, "[sn_e <= 0] (>= 1 for a negative error; 0 iff it is > 0)"),
        ("sn_nn", slots, "[sn_e >= 0] (>= 1 for a positive error; 0 iff it is < 0)"),
        ("prod", slots, "the slot's product, correctly rounded (level 0 of the pairwise sum)"),
    ]
    levels = _tree_levels(slots)
    for n in range(tree_layers(slots)):
        level = 2 + 2 * n
        spec.append((f"sum{level}", levels[level], f"level {level} of the pairwise sum of the slots"))
    return [(prefix + name, size, "temp", doc) for name, size, doc in spec]


# Rows the block keeps >= 0 (cleared by one unit instead of two).
NONNEGATIVE = ("ol_r", "ol_u", "ol_t", "sm_r", "sm_u", "sm_t", "il_r", "il_u", "il_t", "ng_r", "ng_u",
               "ng_t", "m", "hi", "of_r", "of_u", "of_t", "sn_np", "sn_nn")


def _tree_levels(slots: int) -> list[int]:
    """Row counts of the pairwise sum's levels: slots, ceil(slots/2), ... 1."""
    levels = [slots]
    while levels[-1] > 1:
        levels.append((levels[-1] + 1) // 2)
    if len(levels) == 1:
        levels.append(1)
    return levels


def tree_layers(slots: int) -> int:
    """Feed-forward layers the pairwise sum needs after the subnormal tie stage (which writes every
    slot's product); the caller adds the last two terms (or copies the last one) in a
    pre-activation of its own."""
    levels = len(_tree_levels(slots)) - 1  # additions levels: slots -> 1
    # each tree layer does two levels (pre-activation, W2); the caller one
    return max(0, math.ceil((levels - 1) / 2))


@dataclass(frozen=True)
class ProductBlock:
    """The exact product of ``slots`` slots: slot k multiplies the sum of ``x_terms(k)`` rows by the
    sum of ``y_terms(k)`` rows (at most one nonzero row each). ``off``: 0/1 rows that are 1 when no
    product is wanted (then x counts as 0, so every product is 0)."""

    rows: RowSpace
    slots: int
    x_terms: Callable[[int], Mapping[int, float]]
    y_terms: Callable[[int], Mapping[int, float]]
    off: Sequence[int] = ()
    prefix: str = "xp_"

    def r(self, name: str, slot: int = 0, k: int = 0, per: int = 1) -> int:
        return self.rows[self.prefix + name][slot * per + k]

    def ol(self, part: str, slot: int, j: int) -> int:
        return self.r(f"ol_{part}", slot, j - OUTER_LO, OUTER_HI - OUTER_LO + 1)

    def il(self, part: str, slot: int, i: int) -> int:
        return self.r(f"il_{part}", slot, i - INNER.start, len(INNER))

    # -- the stages, in order; each adds units to one feed-forward layer --------------------------

    def outer_ladder_a(self, ffn: FeedForwardBuilder) -> None:
        """The ladder's distances, closed (0, as for y = 0 and a small x) where an ``off`` row is 1:
        then nothing after this layer depends on x or y, and an engine that follows changes does
        not recompute the block. Open, the added terms are exact zeros."""
        closed = {r: -GATE for r in self.off}
        for k in range(self.slots):
            y, x = self.y_terms(k), self.x_terms(k)
            for j in range(OUTER_LO, OUTER_HI + 1):
                tau = 2.0 ** (OUTER_STEP * j)
                threshold_distance(ffn, {**y, **closed}, tau, self.ol("r", k, j))
                threshold_distance(ffn, {**{r: -c for r, c in y.items()}, **closed}, tau, self.ol("r", k, j))
            threshold_distance(ffn, {**x, **closed}, SMALL_X, self.r("sm_r", k))
            threshold_distance(ffn, {**{r: -c for r, c in x.items()}, **closed}, SMALL_X, self.r("sm_r", k))

    def outer_ladder_b(self, ffn: FeedForwardBuilder) -> None:
        for k in range(self.slots):
            for j in range(OUTER_LO, OUTER_HI + 1):
                tau = 2.0 ** (OUTER_STEP * j)
                threshold_indicators(ffn, self.ol("r", k, j), tau, self.ol("u", k, j), self.ol("t", k, j))
            threshold_indicators(ffn, self.r("sm_r", k), SMALL_X, self.r("sm_u", k), self.r("sm_t", k))

    def outer_split(self, ffn: FeedForwardBuilder) -> None:
        for k in range(self.slots):
            y, x = self.y_terms(k), self.x_terms(k)
            for s in range(OUTER_LO, OUTER_HI):  # selector s: 2^8s < |y| <= 2^(8s+8)
                open_ = [self.ol("u", k, s), self.ol("t", k, s + 1)]
                scaled_gate(ffn, y, -OUTER_STEP * s, open_, {self.r("p_y", k): 1.0})
                closed = open_ + list(self.off)
                scaled_gate(ffn, x, OUTER_STEP * s + SCALE_DOWN, closed + [self.r("sm_u", k)], {self.r("p_x", k): 1.0})
                scaled_gate(ffn, x, OUTER_STEP * s + SCALE_UP, closed + [self.r("sm_t", k)], {self.r("p_x", k): 1.0})

    def inner_ladder_a(self, ffn: FeedForwardBuilder) -> None:
        for k in range(self.slots):
            p_y = self.r("p_y", k)
            for i in INNER:
                threshold_distance(ffn, {p_y: 1.0}, 2.0**i, self.il("r", k, i))
                threshold_distance(ffn, {p_y: -1.0}, 2.0**i, self.il("r", k, i))
            threshold_distance(ffn, {p_y: -1.0}, 0.5, self.r("ng_r", k))

    def inner_ladder_b(self, ffn: FeedForwardBuilder) -> None:
        for k in range(self.slots):
            for i in INNER:
                threshold_indicators(ffn, self.il("r", k, i), 2.0**i, self.il("u", k, i), self.il("t", k, i))
            threshold_indicators(ffn, self.r("ng_r", k), 0.5, self.r("ng_u", k), self.r("ng_t", k))

    def inner_split(self, ffn: FeedForwardBuilder) -> None:
        for k in range(self.slots):
            p_y, p_x = self.r("p_y", k), self.r("p_x", k)
            m_out = {self.r("m", k): 1.0, self.r("lo", k): 1.0}
            xs_out = {self.r("x_lo", k): 1.0, self.r("q", k): -1.0}
            for i in range(INNER.start - 1, INNER.stop):
                open_ = []
                if i >= INNER.start:
                    open_.append(self.il("u", k, i))
                if i + 1 < INNER.stop:
                    open_.append(self.il("t", k, i + 1))
                positive, negative = open_ + [self.r("ng_t", k)], open_ + [self.r("ng_u", k)]
                scaled_gate(ffn, {p_y: 1.0}, 52 - i, positive, m_out)
                scaled_gate(ffn, {p_y: -1.0}, 52 - i, negative, m_out)
                scaled_gate(ffn, {p_x: 1.0}, i - 52, positive, xs_out)
                scaled_gate(ffn, {p_x: -1.0}, i - 52, negative, xs_out)

    def halves(self, ffn: FeedForwardBuilder) -> None:
        for k in range(self.slots):
            hi, lo = self.r("hi", k), self.r("lo", k)
            ffn.unit({self.r("m", k): 1.0}, MAGIC_HI, {hi: 1.0, lo: -1.0})
            ffn.bias(hi, -MAGIC_HI)
            ffn.bias(lo, MAGIC_HI)
            for j in range(DIGITS):  # the digits stage adds +-(M - e_j) to these constants
                for part in "hl":
                    ffn.bias(self.r(f"p_{part}", k, j, DIGITS), 1.0 - MAGIC)
                    ffn.bias(self.r(f"q_{part}", k, j, DIGITS), 1.0 + MAGIC)
            ffn.passes({self.r("x_lo", k): VELTKAMP}, {self.r("c", k): 1.0, self.r("q", k): 1.0})

    def digits(self, ffn: FeedForwardBuilder) -> None:
        for k in range(self.slots):
            ffn.passes({self.r("c", k): 1.0, self.r("q", k): -1.0}, {self.r("x_hi", k): 1.0, self.r("x_lo", k): -1.0})
            self._digit_units(ffn, self.r("hi", k), 2.0**-HALF, "h", k)
            self._digit_units(ffn, self.r("lo", k), 1.0, "l", k)

    def _digit_units(self, ffn: FeedForwardBuilder, source: int, scale: float, part: str, slot: int) -> None:
        """Rows p_part, q_part [slot, j] = 1 -+ e_j, the signed digits of the integer v = scale X[source]
        (|v| <= 2^26): r_j = RNE(v / 2^j), e_j = r_j - 2 r_(j+1) in {-1, 0, 1}, sum_j e_j 2^j = v.

        Unit a_j computes v 2^-j + M = M + r_j, unit b_j computes v 2^-j + 2M = 2M + 2 r_(j+1) (the
        spacing there is 2); both have one data term and a bias, so any order of summation gives the
        same. b_j - a_j = M - e_j is added to the constants 1 - M and 1 + M the halves stage put in
        the rows (two terms: exact in any order)."""
        for j in range(DIGITS):
            p, q = self.r(f"p_{part}", slot, j, DIGITS), self.r(f"q_{part}", slot, j, DIGITS)
            ffn.unit({source: scale * 2.0**-j}, MAGIC, {p: -1.0, q: 1.0})
            ffn.unit({source: scale * 2.0**-j}, 2.0 * MAGIC, {p: 1.0, q: -1.0})

    def partial_products(self, ffn: FeedForwardBuilder) -> None:
        for k in range(self.slots):
            x_hi, x_lo = self.r("x_hi", k), self.r("x_lo", k)
            products = (("h", x_hi, "t1", HALF, {self.r("z", k): -1.0}), ("h", x_lo, "t2", HALF, {}),
                        ("l", x_hi, "t3", 0, {}), ("l", x_lo, "w", 0, {}))
            for part, x, target, shift, extra in products:
                outputs = {self.r(target, k): 1.0, **extra}
                for j in range(DIGITS):
                    plus, minus = self.r(f"p_{part}", k, j, DIGITS), self.r(f"q_{part}", k, j, DIGITS)
                    scaled_gate(ffn, {x: 1.0}, j + shift, [plus], outputs)
                    scaled_gate(ffn, {x: -1.0}, j + shift, [minus], outputs)

    def middle(self, ffn: FeedForwardBuilder) -> None:
        for k in range(self.slots):
            t1 = self.r("t1", k)
            ffn.passes({self.r("t2", k): 1.0, self.r("t3", k): 1.0}, {self.r("mid", k): 1.0})
            threshold_distance(ffn, {t1: 1.0}, OVERFLOW, self.r("of_r", k))
            threshold_distance(ffn, {t1: -1.0}, OVERFLOW, self.r("of_r", k))

    def two_sum(self, ffn: FeedForwardBuilder) -> None:
        for k in range(self.slots):
            ffn.passes({self.r("t1", k): 1.0, self.r("mid", k): 1.0}, {self.r("s", k): 1.0, self.r("z", k): 1.0})
            threshold_indicators(ffn, self.r("of_r", k), OVERFLOW, self.r("of_u", k), self.r("of_t", k))

    def error(self, ffn: FeedForwardBuilder) -> None:
        for k in range(self.slots):
            ffn.passes({self.r("mid", k): 1.0, self.r("z", k): -1.0}, {self.r("w", k): 1.0})

    def round(self, ffn: FeedForwardBuilder) -> None:
        for k in range(self.slots):
            terms = {self.r("s", k): 1.0, self.r("w", k): 1.0}
            gate(ffn, terms, [self.r("sm_u", k), self.r("of_t", k)], {self.r("prod", k): 2.0**-SCALE_DOWN})
            ffn.passes(terms, {self.r("rp", k): 1.0})  # unscaled: the small-x path, product_error()

    def subnormal_grid(self, ffn: FeedForwardBuilder) -> None:
        """Small x: sn_t = fl(p 2^-256) 2^256 and sn_e = s + w - p (two terms each; every value here is
        at most 2^-148 in magnitude, so nothing overflows a later scaling)."""
        for k in range(self.slots):
            rp, normal = self.r("rp", k), [self.r("sm_t", k)]
            gate(ffn, {rp: 2.0**-SCALE_UP}, normal, {self.r("sn_t", k): 2.0**SCALE_UP})
            gate(ffn, {self.r("w", k): 1.0}, normal, {self.r("sn_e", k): 1.0})
            gate(ffn, {self.r("s", k): 1.0, rp: -1.0}, normal, {self.r("sn_e", k): 1.0})

    def subnormal_remainder(self, ffn: FeedForwardBuilder) -> None:
        one = ffn.rows["one"][0]
        for k in range(self.slots):
            rp, normal = self.r("rp", k), [self.r("sm_t", k)]
            gate(ffn, {rp: 1.0, self.r("sn_t", k): -1.0}, normal, {self.r("sn_r", k): 1.0})
            e = self.r("sn_e", k)
            ffn.unit({one: 1.0, e: -1.0 / ERROR_UNIT}, 0.0, {self.r("sn_np", k): 1.0})
            ffn.unit({one: 1.0, e: 1.0 / ERROR_UNIT}, 0.0, {self.r("sn_nn", k): 1.0})

    def subnormal_tie(self, ffn: FeedForwardBuilder) -> None:
        one = ffn.rows["one"][0]
        unit = 2.0 ** (-1074)
        for k in range(self.slots):
            prod, normal, r = self.r("prod", k), self.r("sm_t", k), self.r("sn_r", k)
            gate(ffn, {self.r("sn_t", k): 2.0**-SCALE_UP}, [normal], {prod: 1.0})
            for sign, closed in ((1.0, "sn_np"), (-1.0, "sn_nn")):  # up past the midpoint, down past it
                ffn.unit({r: sign * TIE_SCALE, one: 1.0 - 2.0**53, self.r(closed, k): -TIE_CLOSED,
                          normal: -TIE_CLOSED}, 0.0, {prod: sign * unit})

    def product_error(self, ffn: FeedForwardBuilder, notsel: Sequence[int], outputs: Mapping[int, float]) -> None:
        """outputs += x y - fl(x y) of slot 0, exactly, unless a ``notsel`` row is 1 (4 units in the
        caller's layer after the block's stages, the FLEQ machine's select layer, which reads s, w
        and rp). With p = rp = fl(s + w) and s the larger term (|w| <= ulp(s)), Dekker's fast
        two-sum gives s + w - p = w - (p - s) exactly; the two units compute w and s - p (two
        terms: exact), the output weight 1/sigma = 2^128 scales each exactly, and their sum is the
        representable error (one rounding of an exact sum). For a small x (sigma = 2^256) the error
        is not representable in general: the block writes nothing (the function's window refuses
        such an x, see fleq_functions.product_error)."""
        scale = -SCALE_DOWN
        closed = [self.r("sm_u"), self.r("of_t"), *notsel]
        scaled_gate(ffn, {self.r("w"): 1.0}, scale, closed, outputs)
        scaled_gate(ffn, {self.r("s"): 1.0, self.r("rp"): -1.0}, scale, closed, outputs)

    def tree(self, ffn: FeedForwardBuilder, layer: int) -> None:
        """Tree layer ``layer`` (0-based): two more levels of the pairwise sum."""
        levels = _tree_levels(self.slots)
        source = 2 * layer  # the level this layer reads (level 0 = prod)
        block = self._level_block(source)
        middle = levels[source + 1]
        target = self._level_block(source + 2)
        for p in range(middle):
            terms = {self.rows[block][2 * p]: 1.0}
            if 2 * p + 1 < levels[source]:
                terms[self.rows[block][2 * p + 1]] = 1.0
            ffn.passes(terms, {self.rows[target][p // 2]: 1.0})

    def _level_block(self, level: int) -> str:
        return self.prefix + ("prod" if level == 0 else f"sum{level}")

    def result_terms(self) -> dict[int, float]:
        """The last level: a pre-activation of the caller adds these (at most two nonzero rows)."""
        levels = _tree_levels(self.slots)
        last = 2 * tree_layers(self.slots)  # the level the last tree layer (or subnormal tie) wrote
        block = self._level_block(last)
        return {r: 1.0 for r in list(self.rows[block])[: levels[last]]}

    def fault_rows(self, slot: int) -> list[int]:
        """0/1 rows that are 1 when slot ``slot``'s product cannot be computed: |y| > 2^96, overflow."""
        return [self.ol("t", slot, OUTER_HI), self.r("of_t", slot)]

    def temp_rows(self) -> list[int]:
        """Every row of the block (all temps: a host clears them after it read the result)."""
        return [r for b in self.rows if b.name.startswith(self.prefix) for r in b]

    def nonnegative_rows(self) -> list[int]:
        return [r for name in NONNEGATIVE for r in self.rows[self.prefix + name]]

    def stages(self) -> list[tuple[str, Callable[[FeedForwardBuilder], None]]]:
        """(name, stage) in layer order, the tree layers last."""
        fixed = [(name, getattr(self, method)) for name, method in STAGES]
        return fixed + [(f"tree {n}", lambda ffn, n=n: self.tree(ffn, n)) for n in range(tree_layers(self.slots))]


# (name, method) of the fixed stages, in layer order. A host machine may run the first SHARED_STAGES
# in ladder and normalise layers of its own (the FLEQ machine does); the rest are layers of their own.
STAGES = (("outer ladder A", "outer_ladder_a"), ("outer ladder B", "outer_ladder_b"), ("outer split", "outer_split"),
          ("inner ladder A", "inner_ladder_a"), ("inner ladder B", "inner_ladder_b"), ("inner split", "inner_split"),
          ("halves", "halves"), ("digits", "digits"), ("partial products", "partial_products"),
          ("middle", "middle"), ("two-sum", "two_sum"), ("error", "error"), ("round", "round"),
          ("subnormal grid", "subnormal_grid"), ("subnormal remainder", "subnormal_remainder"),
          ("subnormal tie", "subnormal_tie"))
SHARED_STAGES = 3


def own_layers(slots: int) -> int:
    """The layers the block adds to a host that runs its first SHARED_STAGES stages itself."""
    return len(STAGES) - SHARED_STAGES + tree_layers(slots)


def multiplier(slots: int = 1):
    """A stand-alone transformer of these layers: rows ``x`` and ``y`` (one per slot) in, row
    ``product`` out (the pairwise sum of the slots' products, with one slot the product itself) and
    row ``error`` (slot 0's exact error x y - fl(x y), :meth:`ProductBlock.product_error`). Every
    column is one independent multiplication (tests/test_exact_product.py runs it)."""
    rows = RowSpace([("one", 1, "static", "1 in every column"), ("x", slots, "state", "factor x of slot k"),
                     ("y", slots, "state", "factor y of slot k"), ("product", 1, "state", "the result"),
                     ("error", 1, "state", "slot 0's product error")]
                    + row_blocks(slots))
    block = ProductBlock(rows, slots, lambda k: {rows["x"][k]: 1.0}, lambda k: {rows["y"][k]: 1.0})
    layers = []
    for name, stage in block.stages():
        ffn = FeedForwardBuilder(rows)
        stage(ffn)
        layers.append(ffn.build(name))
    last = FeedForwardBuilder(rows)
    last.passes(block.result_terms(), {rows["product"][0]: 1.0})
    block.product_error(last, [], {rows["error"][0]: 1.0})
    layers.append(last.build("result"))
    return LoopedTransformer(tuple(layers), tuple(rows.labels())), rows, block
