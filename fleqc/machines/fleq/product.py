"""A correctly rounded product x * y of any two finite factors, and sums of such products in a
stated order, from ReLU feed-forward layers only.

The block computes integer arithmetic that a feed-forward layer performs without rounding, followed
by exactly one IEEE rounding, so the result is ``fl(x * y)``, bit for bit what numpy's ``x * y`` gives,
subnormal results included, for every pair of finite factors whose product is within the machine's
value limit. What a feed-forward layer computes exactly (every fact below is about float64 and holds
for any finite input):

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

 0. **input split**: each factor f as its parts max(f, 0) and max(-f, 0) (one unit each; a host may
    write them itself, as the FLEQ machine's extract layer does with the two units of its gates).
    |f| is their sum, one nonzero term, so every later gate or threshold of |f| is one unit; the
    block works on |x y| and applies the product's sign where it writes the result.
 1. **band ladder A** on both factors: thresholds of |x| and of |y| at 2^(64 j), j = -15 .. 15, both
    sides of each: r = ReLU(|f| - tau) (0 iff |f| <= tau) and v = ReLU(tau+ - |f|), tau+ the float
    after tau (0 iff |f| > tau). Band j (2^64j < |f| <= 2^(64j+64); the top band j = 15 is
    |f| > 2^960) has the exponent a(f) = 64 j; the bottom band |f| <= 2^-960 (subnormals, and 0) has
    a(f) = -1008. A nonzero r or v is at least ulp(tau), so it closes a gate on a value of the same
    factor by itself (fleqc.blocks.exact: soft closers): the band split needs no 0/1 rows.
 2. **band split and ladder B**, in one layer: N = the normalised factor, f 2^-a(f) in (1, 2^64] (y's
    when |y| > 2^-896, else x's: the product commutes), into ``p_y``, and W = the other factor's
    value (its band value, or a bottom-band factor's |f| 2^1008 in [2^-66, 2^48], exact) into
    ``p_x`` (one unit a band and role); |x y| = |N| |W| 2^E, exactly, and |N W| is in
    (2^-66, 2^128]. Every gate is closed by the factor's own distances, and the role by y's side of
    2^-896: a distance there, when not 0, is at least 2^-948, which closes a gate on a value up to
    2^72 (a band value is at most 2^64), and N needs no exact threshold (any banded factor will do,
    and a product with |y| <= 2^-896 and x in the bottom band is 0). A bottom-band factor's gate also
    writes its value into ``xw_pos`` / ``xw_neg`` (``yw_*``) by its sign. Beside it ladder B: the 0/1
    indicator u = [|f| <= tau] of every threshold from r (a steep ramp). With c the number of
    thresholds below |f| and u_lo = [|f| <= 2^-960], a(f) = 64 c - 1024 + 16 u_lo: a linear function
    of the indicators, and so is E = a(x) + a(y): the units write E / 16 + 126 into one row ``e16``
    (integer weights on 0/1 outputs: exact in any order; 0 when both factors are in the bottom band,
    as when no product is wanted, so the row and the exponent units that read it do not change from
    pass to pass in an idle column). The lowest threshold keeps its indicator in a row (``bot``) and
    its two sides apart, so the layer also gives the factor's sign, [f > 2^-960] and [f < -2^-960].
 3. **inner ladder**: the distances r and v of |N| at 2^1 .. 2^63 (one unit each). Beside them the
    exponent rows, from units U_c = ReLU(E / 16 - c) on the row E / 16 (shared between neighbouring
    values: exact): ``ne`` = 1 - [E = v] for the exponents of NE_VALUES (the overflow and subnormal
    sets), ``sub_off`` = 0 iff E is one of the exponents whose results may be subnormal, ``e_big`` =
    [E >= 1008] (the product beyond 2^1008: a fault), and for the normal set, E = 64 A + 16 B:
    ``na`` = 1 - [E of NORMAL_E in the window of A] (two units an A) and ``nb`` = 1 - [B = b] (B = 1
    iff exactly one factor is in the bottom band: from the ladder's rows); the bottom-band factors'
    signs as 0/1 rows. Two bottom-band factors give N = 0 and E = -2016: no exponent row opens, the
    product is 0 (|x y| <= 2^-1920).
 4. **inner split**: for selector i (2^i < |N| <= 2^(i+1), its gates closed by the inner ladder's
    distances): the integer ``m = |N| 2^(52-i)`` in
    (2^52, 2^53], given as ``v = m - 1.5 2^52`` in (-2^51, 2^51] (one data term and a constant:
    exact), and ``xs = |W| 2^(i-52)`` >= 0, so that |N W| = xs m (one unit each); the product's sign,
    ``neg`` = [x y < 0] and ``pos`` = [x y > 0] (both 0 when a factor is 0); beside them Veltkamp's
    C = fl((2^27 + 1) xs) (one weight times W: one rounding) and Q = C - xs (two terms, exact). The
    bias puts the constants 1 - M and 1 + M (M = 1.5 2^52) in the digit rows. Every value from here
    on is a multiple of u = 2^-118 (W's lowest bit is at least 2^-66, xs's 2^-118) and below 2^130.
 5. **digits**: xs = x_hi + x_lo (x_hi = C - Q, at most 26 significant bits each); signed binary
    digits e_j in {-1, 0, 1} of v at positions 0 .. 53 (x_hi >= 0: C >= Q), all at once: with r_j = RNE(v / 2^j) (a unit
    computes v 2^-j + M = M + r_j: |v 2^-j| <= 2^51, so M + r_j lies in [2^52, 2^53], spacing 1),
    e_j = r_j - 2 r_(j+1), and a second unit computes v 2^-j + 2M = 2M + 2 r_(j+1) (spacing 2), so
    the difference of the two units is M - e_j, and the rows get 1 - e_j and 1 + e_j (the gates'
    "not selected" rows for e_j = 1 and e_j = -1). The digits at 0 .. 26 sum to
    lo = v - 2^27 RNE(v / 2^27) in [-2^26, 2^26], those at 27 .. 53 to 2^27 RNE(v / 2^27) (|v| <= 2^51:
    RNE(v / 2^54) = 0), and hi = 1.5 2^52 + 2^27 RNE(v / 2^27) = 2^27 RNE(m / 2^27) (1.5 2^25 is an
    even integer): m = hi + lo, hi rounded to a multiple of 2^27 (one layer fewer than rounding m
    by adding 1.5 2^79 first).
 6. **partial products**, each exact (a 26-bit factor times sums of +-2^j, every partial sum below
    2^53 of the factor's last bit, in any order): T1 = x_hi hi, T2 = x_lo hi, T3 = x_hi lo,
    T4 = x_lo lo; hi's constant 1.5 2^52 is one more term, x 1.5 2^52 (28 bits: exact), and with it
    the terms of T1 and T2 add up to at most 2^26 (2^25 + 1.5 2^25) < 2^53 units of 2^27 x's last
    bit. x_hi >= 0, so its gates are one unit a digit and sign; T1 >= 0. In units u of xs's last bit: |T1| < 2^106 u, T2 and T3 multiples of 2^27 u below 2^79 u,
    |T4| <= 2^52 u.
 7. **middle**: M = T2 + T3, exact (an integer multiple of 2^27 u below 2^80 u); the overflow
    thresholds |T1| > 2^(1002 - E) for the two exponents E = 896, 960 whose products may or may not
    pass 2^1000 (closed for every other E).
 8. **two-sum** (Dekker's fast two-sum, |T1| >= |M|): s = fl(T1 + M), z = s - T1.
 9. **error**: e = M - z, so that T1 + M = s + e exactly; w = T4 + e is exact (|e| <= ulp(s) / 2 <=
    2^52 u, a multiple of 2^27 u; |T4| <= 2^52 u: an integer number of u below 2^53). For an exponent
    E of the subnormal set, s2 = s 2^(E+256) and w2 = (T4 + e) 2^(E+256), exactly (every value a
    multiple of 2^-1000 there): s2 + w2 = x y 2^256.
10. **round**: |N W| = s + w exactly, so ``fl(s + w)`` is the correctly rounded |N W| (one IEEE
    addition of two floats rounds their exact sum); for an exponent E whose results are all normal
    (E >= -960), E = 64 A + 16 B, the unit of B (output weight 2^(16 B), exact) writes it into
    ``r1``; the subnormal grid stage scales r1 by 2^(64 A) into ``r2`` (one unit an A: exact, |x y|
    is normal) and the remainder stage adds sign(x y) r2 to the slot's ``prod`` row: IEEE's x y.
    The unscaled fl(s + w) goes to ``rp`` (slot 0's gives the product's exact error, ``mulerr``),
    and fl(s2 + w2) to ``rp2``.
11. **subnormal grid** (the subnormal set): scaling p = fl(s2 + w2) back by 2^-256 would round a
    second time when the product is subnormal (onto multiples of 2^-1074, i.e. of G = 2^-818 at
    the scaled level). This stage computes t = fl(p 2^-256) 2^256 (one rounding, ties to even: p
    itself when the product is normal) and p's error e = s2 + w2 - p = w2 + (s2 - p) (two terms,
    exact: Dekker's fast two-sum).
12. **subnormal remainder**: r = p - t (exact, |r| <= G/2) and [e <= 0], [e >= 0] as
    ReLU(1 -+ 2^1010 e) (e is a multiple of 2^-1000).
13. **subnormal tie**: the second rounding differs from one rounding of x y 2^256 only when p lies
    exactly halfway between two multiples of G (r = +-G/2, i.e. 2^872 r = +-2^53) and e pushes the
    exact value past that midpoint: then the result is t 2^-256 +- 2^-1074 instead of t 2^-256. Two
    units test this (2^872 |r| - (2^53 - 1) is 1 at a midpoint and <= 0 otherwise; the [e ...] rows
    close them with weight 2^54), and the slot's ``prod`` row gets t 2^-256 plus their 0/1 outputs
    times +-2^-1074 (every term a multiple of 2^-1074 below 2^-1021: exact in any order), each
    written twice, closed by ``neg`` or by ``pos``, with the product's sign. So the
    product is correctly rounded for a subnormal result too, bit for bit numpy's ``x * y``.
14. **tree**: a pairwise sum of the slots' products: ((p0 + p1) + (p2 + p3)) + ((p4 + p5) + (p6 + p7)),
    one level in the pre-activations and one in W2 per layer; the last level is left to the caller
    (the FLEQ machine's select gate adds the last two terms).

Exponents below the subnormal set (E <= -1200) give products below 2^-1075, which round to 0: no
gate opens. Faults: E >= 1008, or |T1| > 2^(1002 - E) for E = 896, 960 (a product beyond 2^1001),
reported through :func:`fault_rows`; the result is then 0, and nothing in the block overflows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from fleqc.blocks.builders import FeedForwardBuilder
from fleqc.blocks.exact import (GATE, at_most, clear_rows, gate, scaled_gate, scaled_positive_gate,
                                threshold_above, threshold_below, threshold_distance, threshold_indicators)
from fleqc.card.rows import RowSpace
from fleqc.transformer.layers import LoopedTransformer
from fleqc.machines.fleq.windows import BOTTOM_SCALE, OUTER_HI, OUTER_LO, OUTER_STEP

INNER = range(1, OUTER_STEP)  # inner thresholds 2^1 .. 2^63 on |N| in (1, 2^64]
BANDS = range(OUTER_LO, OUTER_HI + 1)  # band j: 2^(64 j) < |f| <= 2^(64 j + 64) (j = OUTER_HI: |f| > 2^960)
E_UNIT = 16  # every exponent E = a(x) + a(y) is a multiple of 16
SUB_LEVEL = 256  # the subnormal path works on x y 2^256
SUBNORMAL_GRID = 2.0 ** (-1074 + SUB_LEVEL)  # G: the subnormal spacing 2^-1074 at the scaled level
ERROR_UNIT = 2.0**-1010  # below the lowest bit of x y 2^256 on the subnormal path (2^-1000)
TIE_SCALE = 2.0 * 2.0**53 / SUBNORMAL_GRID  # r -> 2^53 at a midpoint r = G/2 (2^872)
TIE_CLOSED = 2.0**54  # closes a tie unit: above every value 2^872 |r| - 2^53 + 1 <= 1 can take
HALF = 27  # the split of m: hi a multiple of 2^27
DIGITS = 27  # signed digits of H = hi / 2^27 in [2^25, 2^26] and of lo in [-2^26, 2^26]
CENTRE = 1.5 * 2.0**52  # v = m - CENTRE in (-2^51, 2^51]: its signed digits are exact (stage 4)
MAGIC = 1.5 * 2.0**52  # v + MAGIC rounds v to an integer (|v| < 2^51); v + 2 MAGIC to an even one
VELTKAMP = 2.0**HALF + 1.0
B_SIGN_LEAST = 2.0 ** (-1074 + BOTTOM_SCALE)  # 2^-66: |f| 2^1008 for the least subnormal f

# The exponents E = a(x) + a(y) the rounding stages tell apart (module docstring, stages 2, 10-13).
_TOP = OUTER_STEP * OUTER_HI  # 960
_BOTTOM = -BOTTOM_SCALE  # -1008: a(f) of the bottom band
NORMAL_E: tuple[int, ...] = (tuple(OUTER_STEP * k for k in range(OUTER_LO, OUTER_HI + 1))  # both in bands: N W > 1
                             + tuple(_BOTTOM + OUTER_STEP * k for k in range(1, OUTER_HI + 1)))  # one bottom: > 2^-66
SUBNORMAL_E: tuple[int, ...] = (-1152, -1088, -1024, -1136, -1072, -1008)  # results may be subnormal (or 0)
# The normal set's scaling 2^E in two steps, E = 64 A + 16 B: B is 0 (both factors in bands) or 1 (one
# in the bottom band, E = -1008 + 64 k = 64 (k - 16) + 16).
SCALE_A: tuple[int, ...] = tuple(sorted({v // 64 for v in NORMAL_E}))
SCALE_B: tuple[int, ...] = (0, 1)
assert all((v % 64) // E_UNIT in SCALE_B and v % E_UNIT == 0 for v in NORMAL_E)
# E / 16 = E16_CONSTANT + sum over both factors of (E16_BOTTOM [|f| <= 2^-960] - E16_ABOVE sum_j [|f| <= tau_j]):
# a(f) = 64 (OUTER_LO - 1 + c) for c thresholds below |f| (c = 0: the bottom band, a(f) = _BOTTOM instead)
E16_ABOVE = OUTER_STEP // E_UNIT
E16_BOTTOM = (_BOTTOM - OUTER_STEP * (OUTER_LO - 1)) // E_UNIT
E16_CONSTANT = 2 * (OUTER_STEP * (OUTER_LO - 1) // E_UNIT + E16_ABOVE * len(BANDS))
E_IDLE16 = 2 * _BOTTOM // E_UNIT  # E / 16 of two bottom-band factors (-126): the row e16 holds E / 16 - this
ROLE_BAND = -14  # N is y's value when |y| > 2^(64 ROLE_BAND) = 2^-896, else x's (ProductBlock._band_split)
BIG_E = 1008  # E >= 1008: |x y| > 2^1008, a fault
OVERFLOW_E: dict[int, float] = {896: 2.0**106, 960: 2.0**42}  # |T1| > 2^(1002 - E): |x y| > 2^1001, a fault
NE_VALUES: tuple[int, ...] = tuple(OVERFLOW_E) + SUBNORMAL_E  # the exponents with a row ne of their own


def band_exponent(f: float) -> int:
    """a(f): the exponent by which the band split scales the factor f (stage 1)."""
    f = abs(f)
    if f <= 2.0 ** (OUTER_STEP * OUTER_LO):
        return _BOTTOM
    return OUTER_STEP * max(j for j in BANDS if f > 2.0 ** (OUTER_STEP * j))


def row_blocks(slots: int, prefix: str = "xp_") -> list[tuple[str, int, str, str]]:
    """The temp rows of ``slots`` product slots (slot-major within each block)."""
    bands = len(BANDS)
    inner = len(INNER)
    spec = [
        *((f"{f}l_{part}", slots * bands, f"band ladder of {f}: {doc}") for f in "xy" for part, doc in (
            ("r", f"ReLU(|{f}| - 2^64j) (ladder A; the lowest: ReLU({f} - 2^-960))"),
            ("v", f"ReLU(tau+ - |{f}|), tau+ the float after 2^64j (ladder A)"))),
        *((f"{f}l_{part}", slots, doc) for f in "xy" for part, doc in (
            ("n", f"ReLU(-{f} - 2^-960) (the lowest threshold's distance row holds ReLU({f} - 2^-960) only)"),
            ("bot", f"[|{f}| <= 2^-960]: {f} in the bottom band (ladder B)"),
            ("pos", f"[{f} > 2^-960]"),
            ("neg", f"[{f} < -2^-960]"))),
        ("e16", slots, "E / 16 + 126, E = a(x) + a(y) (0 for two bottom-band factors), from the band ladders"),
        *((f"{f}w_{side}", slots, f"|{f}| 2^1008 for {f} in the bottom band and {word} (in [2^-66, 2^48]), else 0")
          for f in "xy" for side, word in (("pos", "positive"), ("neg", "negative"))),
        *((f"{f}b_{side}", slots, f"[{f}w_{side} > 0]: {f} in the bottom band, {word}")
          for f in "xy" for side, word in (("pos", "positive"), ("neg", "negative"))),
        ("p_y", slots, "|N|: N the normalised factor (y's, or x's when |y| <= 2^-896), in (1, 2^64] (or 0)"),
        ("p_x", slots, "|W|: W the other factor scaled by 2^-a, |x y| = |N| |W| 2^E"),
        ("neg", slots, "[x y < 0] (0/1; 0 when a factor is 0): closes the units that write +|x y|"),
        ("pos", slots, "[x y > 0] (0/1; 0 when a factor is 0): closes the units that write -|x y|"),
        ("ne", slots * len(NE_VALUES), "1 - [E = v] for the exponents v of NE_VALUES (overflow and subnormal sets)"),
        ("na", slots * len(SCALE_A), "1 - [E of NORMAL_E with E = 64 A + 16 B, B in {0, 1}] for A of SCALE_A"),
        ("nb", slots * len(SCALE_B), "1 - [B = 0: both factors in bands; B = 1: one in the bottom band]"),
        ("sub_off", slots, "0 iff E is one of SUBNORMAL_E (the result may be subnormal)"),
        ("e_big", slots, "[E >= 1008]: the product is beyond the value limit (a fault)"),
        ("il_r", slots * inner, "inner ladder: ReLU(|N| - 2^i), i = 1..63"),
        ("il_v", slots * inner, "inner ladder: ReLU(tau+ - |N|), tau+ the float after 2^i"),
        ("v", slots, "m - 1.5 2^52, m = |N| 2^(52-i) the integer in (2^52, 2^53]"),
        ("x_lo", slots, "Veltkamp's low half of xs (holds xs until the digits stage)"),
        ("q", slots, "C - xs (holds -xs until the halves stage)"),
        ("c", slots, "fl((2^27 + 1) xs)"),
        ("x_hi", slots, "Veltkamp's high half of xs (>= 0)"),
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
        ("of_r", slots * len(OVERFLOW_E), "ReLU(|t1| - 2^(1002 - E)) for E = 896, 960 (0 for other E)"),
        ("of_u", slots * len(OVERFLOW_E), "[not the overflow of of_t]"),
        ("of_t", slots * len(OVERFLOW_E), "[E = 896 or 960 and |t1| > 2^(1002 - E)]: the product overflows"),
        ("s2", slots, "subnormal set: s 2^(E + 256)"),
        ("w2", slots, "subnormal set: w 2^(E + 256)"),
        ("rp", slots, "fl(s + w), N W rounded once"),
        ("r1", slots, "normal set: fl(s + w) 2^(16 B)"),
        ("r2", slots, "normal set: fl(s + w) 2^E = |x y| (r1 2^(64 A))"),
        ("rp2", slots, "subnormal set: fl(s2 + w2), x y 2^256 rounded once"),
        ("sn_t", slots, "subnormal set: fl(rp2 2^-256) 2^256, rp2 rounded to the subnormal grid G"),
        ("sn_e", slots, "subnormal set: s2 + w2 - rp2, the error of rp2 (exact)"),
        ("sn_r", slots, "subnormal set: rp2 - sn_t, in [-G/2, G/2]"),
        ("sn_np", slots, "[sn_e <= 0] (>= 1 for a negative error; 0 iff it is > 0)"),
        ("sn_nn", slots, "[sn_e >= 0] (>= 1 for a positive error; 0 iff it is < 0)"),
        ("prod", slots, "the slot's product, correctly rounded (level 0 of the pairwise sum)"),
        ("err_w", 1, "slot 0: sign(x y) w (product_error)"),
        ("err_d", 1, "slot 0: sign(x y) (s - rp) (product_error)"),
        ("err1", 1, "slot 0: fl(err_w + err_d) 2^(16 B), the error times 2^(16 B) (exact)"),
    ]
    levels = _tree_levels(slots)
    for n in range(tree_layers(slots)):
        level = 2 + 2 * n
        spec.append((f"sum{level}", levels[level], f"level {level} of the pairwise sum of the slots"))
    return [(prefix + name, size, "temp", doc) for name, size, doc in spec]


# Rows the block keeps >= 0 where they are cleared (one unit instead of two). The digit rows p_*, q_* hold 1 -+ e_j in
# {0, 1, 2} (1 for every j when N = 0: no product, or an idle slot).
NONNEGATIVE = ("xl_r", "xl_v", "yl_r", "yl_v", "xl_n", "xl_bot", "xl_pos", "xl_neg", "yl_n", "yl_bot",
               "yl_pos", "yl_neg", "e16", "na", "nb", "r1", "r2", "p_y", "p_x",
               "xw_pos", "xw_neg", "yw_pos", "yw_neg",
               "xb_pos", "xb_neg", "yb_pos", "yb_neg", "neg", "pos", "ne", "sub_off", "e_big", "il_r", "il_v", "c", "x_hi", "p_h", "q_h", "p_l", "q_l",
               "t1", "of_r", "of_u", "of_t", "rp", "rp2", "sn_t", "sn_np", "sn_nn")


def _selector(below: Callable[[int], list[int]], above: Callable[[int], list[int]], s: int,
              thresholds: range) -> list[int]:
    """The soft closers of selector s, tau_s < |f| <= tau_(s+1), on a ladder of ``thresholds``:
    ``below(t)``, 0 iff |f| > tau_t, for its lower threshold, and ``above(t)``, 0 iff |f| <= tau_t, for
    its upper one (either missing at the ladder's ends)."""
    return (below(s) if s in thresholds else []) + (above(s + 1) if s + 1 in thresholds else [])


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
    """The exact product of ``slots`` slots: slot k multiplies x by y, each given as two nonnegative
    parts, ``x_parts(k)`` = (rows that add up to max(x, 0), rows that add up to max(-x, 0)), at most one
    nonzero row in all (so |x| is the sum of both, one nonzero term). ``inputs``: where the parts
    come from, the signed factors' rows (factor, k) -> terms, when the block's first stage, the input
    split, writes the parts; a host that writes them itself (the FLEQ machine's extract layer, two
    units a factor as for any exact gate) leaves it None and runs the stages from SHARED_STAGES on.
    ``off``: 0/1 rows that are 1 when no product is wanted (then x counts as 0, so every product is
    0)."""

    rows: RowSpace
    slots: int
    x_parts: Callable[[int], tuple[Mapping[int, float], Mapping[int, float]]]
    y_parts: Callable[[int], tuple[Mapping[int, float], Mapping[int, float]]]
    off: Sequence[int] = ()
    prefix: str = "xp_"
    inputs: Callable[[str, int], Mapping[int, float]] | None = None

    def r(self, name: str, slot: int = 0, k: int = 0, per: int = 1) -> int:
        return self.rows[self.prefix + name][slot * per + k]

    def band(self, factor: str, part: str, slot: int, j: int) -> int:
        """Row ``part`` of threshold 2^(64 j) of the band ladder of ``factor`` (x or y): r, the distance
        ReLU(|f| - tau), or v, the distance ReLU(tau+ - |f|) from the next float tau+ above tau."""
        return self.r(f"{factor}l_{part}", slot, j - OUTER_LO, len(BANDS))

    def il(self, part: str, slot: int, i: int) -> int:
        """Row ``part`` (r or v, as for :meth:`band`) of threshold 2^i of the inner ladder."""
        return self.r(f"il_{part}", slot, i - INNER.start, len(INNER))

    def ne(self, slot: int, v: int) -> int:
        """The row that is 0 iff the slot's exponent E is v (one of NE_VALUES)."""
        return self.r("ne", slot, NE_VALUES.index(v), len(NE_VALUES))

    def scale_row(self, name: str, slot: int, value: int) -> int:
        """Row na (A = value) or nb (B = value): 0 iff E is of NORMAL_E with that A or B."""
        values = SCALE_A if name == "na" else SCALE_B
        return self.r(name, slot, values.index(value), len(values))

    def of(self, part: str, slot: int, v: int) -> int:
        return self.r(f"of_{part}", slot, list(OVERFLOW_E).index(v), len(OVERFLOW_E))

    def distance_rows(self, factor: str, slot: int, j: int) -> list[int]:
        """The rows that hold ReLU(|f| - 2^(64 j)) (two for the lowest threshold, which keeps the
        sides of f apart; at most one of them nonzero)."""
        rows = [self.band(factor, "r", slot, j)]
        return rows + [self.r(f"{factor}l_n", slot)] if j == OUTER_LO else rows

    def selector(self, factor: str, slot: int, j: int) -> list[int]:
        """Rows that are all 0 iff the factor lies in band j (j = OUTER_LO - 1: the bottom band), and
        whose sum is otherwise large enough to close a gate on that factor (fleqc.blocks.exact: soft closers)."""
        return _selector(lambda t: [self.band(factor, "v", slot, t)], lambda t: self.distance_rows(factor, slot, t),
                         j, BANDS)

    def inner_selector(self, slot: int, i: int) -> list[int]:
        """The same for the inner ladder's selector i, 2^i < |N| <= 2^(i+1) (i = INNER.start - 1: |N| <= 2)."""
        return _selector(lambda t: [self.il("v", slot, t)], lambda t: [self.il("r", slot, t)], i, INNER)

    def _parts(self, factor: str, slot: int) -> tuple[Mapping[int, float], Mapping[int, float]]:
        return self.x_parts(slot) if factor == "x" else self.y_parts(slot)

    def _abs(self, factor: str, slot: int) -> dict[int, float]:
        """|f| as terms: the sum of both parts (one nonzero term)."""
        plus, minus = self._parts(factor, slot)
        return {**plus, **minus}

    # -- the stages, in order; each adds units to one feed-forward layer --------------------------

    def input_split(self, ffn: FeedForwardBuilder) -> None:
        """The factors' parts max(f, 0) and max(-f, 0) from ``inputs`` (a stand-alone block; one unit
        each: ReLU passes its input on exactly)."""
        assert self.inputs is not None, "a host that runs the input split itself starts at SHARED_STAGES"
        for k in range(self.slots):
            for factor in "xy":
                terms = self.inputs(factor, k)
                for part, sign in zip(self._parts(factor, k), (1.0, -1.0)):
                    (row,) = part
                    ffn.unit({r: sign * c for r, c in terms.items()}, 0.0, {row: 1.0})

    def outer_ladder_a(self, ffn: FeedForwardBuilder) -> None:
        """Both sides of every band threshold: the distance r = ReLU(|f| - tau) (one unit: |f| is the sum
        of the factor's parts) and v = ReLU(tau+ - |f|), tau+ the float after tau. r is 0 iff |f| <= tau
        and v is 0 iff |f| > tau; otherwise each is at least ulp(tau) (a multiple of it, above 0: one
        IEEE addition rounds it no lower), so C r and C v close a gate on the same factor
        (fleqc.blocks.exact: soft closers): the band split reads them directly, without the 0/1 rows of ladder B.
        Closed (0, as for x = y = 0) where an ``off`` row is 1: then nothing after this layer depends
        on x or y, and an engine that follows changes does not recompute the block (the split's gates
        read ``off`` too). Open, the added terms are exact zeros. The lowest threshold keeps its two
        sides apart (ReLU(f - tau) in the ladder's row, ReLU(-f - tau) in ``xl_n`` / ``yl_n``): ladder
        B reads the factor's sign from them."""
        closed = {r: -GATE for r in self.off}
        for k in range(self.slots):
            for factor in "xy":
                plus, minus = self._parts(factor, k)
                magnitude = self._abs(factor, k)
                for j in BANDS:
                    tau = 2.0 ** (OUTER_STEP * j)
                    out = self.band(factor, "r", k, j)
                    if j == OUTER_LO:
                        threshold_distance(ffn, {**plus, **closed}, tau, out)
                        threshold_distance(ffn, {**minus, **closed}, tau, self.r(f"{factor}l_n", k))
                    else:
                        threshold_distance(ffn, {**magnitude, **closed}, tau, out)
                    threshold_below(ffn, magnitude, tau, self.band(factor, "v", k, j), notsel=self.off)
                if self.off:  # closed, v holds tau+ (as for f = 0): a threshold far above |f| then keeps its v
                    # (tau+ - |f| rounds to tau+) whether or not the product runs, and nothing reading it is recomputed
                    ffn.unit({r: 1.0 for r in self.off}, 0.0,
                             {self.band(factor, "v", k, j): math.nextafter(2.0 ** (OUTER_STEP * j), math.inf) for j in BANDS})

    def outer_split(self, ffn: FeedForwardBuilder) -> None:
        """Ladder B and the band split in one layer: the split (:meth:`_band_split`) reads ladder A's
        distances as its gates' closers, not ladder B's 0/1 rows.

        Ladder B: E / 16 - E_IDLE16 into ``e16``: each threshold's unit u = ReLU(1 - G r) (exactly 0 or 1:
        [|f| <= tau]) adds its integer weight to it, and its bias is the constant (E16_CONSTANT: small
        integers, so every partial sum is exact in any order). The lowest threshold's unit also writes ``bot`` = [|f| <= 2^-960], and its two sides
        give the factor's sign ``pos`` = [f > 2^-960], ``neg`` = [f < -2^-960]."""
        for k in range(self.slots):
            e16 = self.r("e16", k)
            for factor in "xy":
                for j in BANDS:  # [|f| <= tau] = 1 - [|f| > tau]: each threshold's unit subtracts its weight
                    distance = self.distance_rows(factor, k, j)
                    if j == OUTER_LO:
                        bot = self.r(f"{factor}l_bot", k)
                        at_most(ffn, distance, 2.0 ** (OUTER_STEP * j), {e16: E16_BOTTOM - E16_ABOVE, bot: 1.0})
                    else:
                        at_most(ffn, distance, 2.0 ** (OUTER_STEP * j), {e16: -E16_ABOVE})
                tau = 2.0 ** (OUTER_STEP * OUTER_LO)
                for side, distance in zip(("pos", "neg"), self.distance_rows(factor, k, OUTER_LO)):
                    threshold_above(ffn, distance, tau, self.r(f"{factor}l_{side}", k))
            self._band_split(ffn, k)
            ffn.bias(e16, E16_CONSTANT - E_IDLE16)

    def _band_split(self, ffn: FeedForwardBuilder, k: int) -> None:
        """|N| into ``p_y`` and |W| into ``p_x``: each factor's value in its band, f 2^-a(f) (one unit a band),
        or a bottom-band factor's |f| 2^1008 (and into ``xw_*`` / ``yw_*`` by its sign), every gate closed
        by the factor's own distances (fleqc.blocks.exact: soft closers). N is y's value when
        |y| > 2^-896 (ROLE_BAND), else x's: a product is wanted from N only if it lies in a band, and
        either factor may be N when both do, so the role needs no exact threshold, and a distance at
        2^-896 (at least ulp(2^-896) = 2^-948 when not 0) closes a gate on the other factor's value
        too (2^1020 2^-948 = 2^72 > 2^64). So y's gates write p_y from ROLE_BAND up and p_x below it,
        and x's gates each role, closed by y's side of that threshold."""
        off = list(self.off)
        y_above = [self.band("y", "v", k, ROLE_BAND)]  # 0 iff |y| > 2^-896: y is N
        y_below = self.distance_rows("y", k, ROLE_BAND)  # 0 iff |y| <= 2^-896: x is N
        n_out, w_out = {self.r("p_y", k): 1.0}, {self.r("p_x", k): 1.0}
        y, x = self._abs("y", k), self._abs("x", k)
        for j in BANDS:
            scale = -OUTER_STEP * j
            scaled_positive_gate(ffn, y, scale, self.selector("y", k, j) + off, n_out if j >= ROLE_BAND else w_out)
            scaled_positive_gate(ffn, x, scale, self.selector("x", k, j) + y_above + off, w_out)
            scaled_positive_gate(ffn, x, scale, self.selector("x", k, j) + y_below + off, n_out)
        for factor, role in (("y", []), ("x", y_above)):  # a bottom-band y is never N; a bottom-band x is W
            for part, side in zip(self._parts(factor, k), ("pos", "neg")):
                scaled_positive_gate(ffn, part, BOTTOM_SCALE, self.selector(factor, k, OUTER_LO - 1) + role + off,
                                     {**w_out, self.r(f"{factor}w_{side}", k): 1.0})

    def inner_ladder(self, ffn: FeedForwardBuilder) -> None:
        """The inner ladder's distances on |N| (thresholds 2^1 .. 2^63, both sides: r = ReLU(|N| - 2^i)
        and v = ReLU(tau+ - |N|), one unit each; the inner split's gates are closed by them); beside
        them the exponent rows (:meth:`_exponent_rows`) and the bottom-band factors' signs as 0/1 rows
        (``xb_side`` = 1 - ReLU(1 - 2^66 xw_side): xw_side is 0 or in [2^-66, 2^48])."""
        one = ffn.rows["one"][0]
        for k in range(self.slots):
            n = {self.r("p_y", k): 1.0}
            for i in INNER:
                threshold_distance(ffn, n, 2.0**i, self.il("r", k, i))
                threshold_below(ffn, n, 2.0**i, self.il("v", k, i))
            for factor in "xy":
                for side in ("pos", "neg"):
                    out = self.r(f"{factor}b_{side}", k)
                    ffn.unit({one: 1.0, self.r(f"{factor}w_{side}", k): -1.0 / B_SIGN_LEAST}, 0.0, {out: -1.0})
                    ffn.bias(out, 1.0)
            self._exponent_rows(ffn, k)

    def _exponent_rows(self, ffn: FeedForwardBuilder, k: int) -> None:
        """The rows ne (1 - [E = v]), na (1 - [E of NORMAL_E with floor(E / 64) = A]), sub_off and e_big
        from the integer e = E / 16 (row e16 and a constant) with units U_c = ReLU(e - c):
        [e = c] = U_(c-1) - 2 U_c + U_(c+1) and [e >= c] = U_(c-1) - U_c, one unit per c that some row
        needs, shared by neighbouring values (every weight and value a small integer: exact in any
        order). The exponents of NORMAL_E are 64 A (e = 4 A) and 64 A + 16 (e = 4 A + 1); no exponent
        has e = 4 A + 2 or 4 A + 3 but the idle one (e = -126), so na_A is the window
        [4 A - 1 <= e <= 4 A + 2], two units an A, shared with A + 1. An idle slot (e16 = 0, e = -126)
        opens no unit. Beside them nb from the bottom-band rows (layer B's: B = 1 iff exactly one
        factor is in the bottom band)."""
        sub_off, e_big = self.r("sub_off", k), self.r("e_big", k)
        ffn.bias(sub_off, 1.0)
        outputs: dict[int, dict[int, float]] = {}  # c -> {row: weight}

        def add(c: int, row: int, weight: float) -> None:
            outputs.setdefault(c, {})
            outputs[c][row] = outputs[c].get(row, 0.0) + weight

        for v in NE_VALUES:
            c, row = v // E_UNIT, self.ne(k, v)
            ffn.bias(row, 1.0)
            for out in [row] + ([sub_off] if v in SUBNORMAL_E else []):  # -[e = c]
                add(c - 1, out, -1.0)
                add(c, out, 2.0)
                add(c + 1, out, -1.0)
        for a in SCALE_A:  # 1 - [e >= 4 a - 1] + [e >= 4 a + 3]
            row, c = self.scale_row("na", k, a), 4 * a
            ffn.bias(row, 1.0)
            for offset, weight in ((-2, -1.0), (-1, 1.0), (2, 1.0), (3, -1.0)):
                add(c + offset, row, weight)
        add(BIG_E // E_UNIT - 1, e_big, 1.0)  # [e >= 63]
        add(BIG_E // E_UNIT, e_big, -1.0)
        for c, weights in sorted(outputs.items()):
            if any(weights.values()):
                ffn.unit({self.r("e16", k): 1.0}, float(E_IDLE16 - c), {r: w for r, w in weights.items() if w})
        one = ffn.rows["one"][0]
        bx, by = self.r("xl_bot", k), self.r("yl_bot", k)  # [|f| <= 2^-960]
        # nb_0 = 1 - [both in bands] = 1 - ReLU(1 - bx - by); nb_1 = 1 - [exactly one in the bottom band]
        for b, units in ((0, ({one: 1.0, bx: -1.0, by: -1.0},)), (1, ({bx: 1.0, by: -1.0}, {by: 1.0, bx: -1.0}))):
            row = self.scale_row("nb", k, b)
            ffn.bias(row, 1.0)
            for terms in units:
                ffn.unit(terms, 0.0, {row: -1.0})

    def _sign_rows(self, ffn: FeedForwardBuilder, k: int) -> None:
        """neg = [x y < 0] and pos = [x y > 0] from the factors' 0/1 sign rows (``xl_*`` for x in a band,
        ``xb_*`` for x in the bottom band; y likewise): at most one row of each side is 1, so
        neg = ReLU(x+ + y- - 1) + ReLU(x- + y+ - 1) (small integers: exact in any order); both 0 when a
        factor is 0."""
        one = ffn.rows["one"][0]
        side = {(f, s): {self.r(f"{f}l_{s}", k): 1.0, self.r(f"{f}b_{s}", k): 1.0} for f in "xy" for s in ("pos", "neg")}
        for out, pairs in (("neg", (("pos", "neg"), ("neg", "pos"))), ("pos", (("pos", "pos"), ("neg", "neg")))):
            for x_side, y_side in pairs:
                ffn.unit({**side["x", x_side], **side["y", y_side], one: -1.0}, 0.0, {self.r(out, k): 1.0})

    def inner_split(self, ffn: FeedForwardBuilder) -> None:
        """For selector i (and N's sign): v = |N| 2^(52-i) - 1.5 2^52 (the gate of m = |N| 2^(52-i) >= 0
        is one unit; the constant is the row's bias: m - 1.5 2^52 is exact, Sterbenz; an idle slot,
        N = 0, opens selector 0 and gets v = -1.5 2^52, as before), xs = |W| 2^(i-52) into x_lo (and -xs
        into q), and Veltkamp's C = fl((2^27 + 1) xs) into c and q (one weight, (2^27 + 1) 2^(i-52),
        times |W|: one rounding), so q = C - xs (two terms, exact); |W| >= 0: one unit each. The gates
        are closed by the inner ladder's distances (fleqc.blocks.exact: soft closers). The digit rows get their
        constants 1 -+ M; beside them the product's sign (:meth:`_sign_rows`)."""
        for k in range(self.slots):
            self._sign_rows(ffn, k)
            p_y, p_x = self.r("p_y", k), self.r("p_x", k)
            v_out = {self.r("v", k): 1.0}
            xs_out = {self.r("x_lo", k): 1.0, self.r("q", k): -1.0}
            c_out = {self.r("c", k): 1.0, self.r("q", k): 1.0}
            for i in range(INNER.start - 1, INNER.stop):
                open_ = self.inner_selector(k, i)
                scaled_positive_gate(ffn, {p_y: 1.0}, 52 - i, open_, v_out)  # m = |N| 2^(52-i) >= 0
                scaled_positive_gate(ffn, {p_x: 1.0}, i - 52, open_, xs_out)  # |W| >= 0
                scaled_positive_gate(ffn, {p_x: VELTKAMP}, i - 52, open_, c_out)
            ffn.bias(self.r("v", k), -CENTRE)  # v = m - 1.5 2^52: two nonzero terms, exact
            for j in range(DIGITS):  # the digits stage adds +-(M - e_j) to these constants
                for part in "hl":
                    ffn.bias(self.r(f"p_{part}", k, j, DIGITS), 1.0 - MAGIC)
                    ffn.bias(self.r(f"q_{part}", k, j, DIGITS), 1.0 + MAGIC)

    def digits(self, ffn: FeedForwardBuilder) -> None:
        """x_hi = C - Q, x_lo = xs - x_hi (Veltkamp); the signed digits of v at positions 0 .. 26
        (the "l" rows: lo = v - 2^27 RNE(v / 2^27), in [-2^26, 2^26]) and 27 .. 53 (the "h" rows:
        2^27 RNE(v / 2^27); |v| <= 2^51, so RNE(v / 2^54) = 0). hi = 1.5 2^52 + 2^27 RNE(v / 2^27) =
        2^27 RNE(m / 2^27) (1.5 2^25 is an even integer): m rounded to a multiple of 2^27, and
        m = hi + lo."""
        for k in range(self.slots):
            # x_hi = C - Q >= 0 (xs >= 0: C >= Q, and the rounding is monotone): one unit
            ffn.unit({self.r("c", k): 1.0, self.r("q", k): -1.0}, 0.0, {self.r("x_hi", k): 1.0, self.r("x_lo", k): -1.0})
            self._digit_units(ffn, self.r("v", k), 2.0**-HALF, "h", k)
            self._digit_units(ffn, self.r("v", k), 1.0, "l", k)

    def _digit_units(self, ffn: FeedForwardBuilder, source: int, scale: float, part: str, slot: int) -> None:
        """Rows p_part, q_part [slot, j] = 1 -+ e_j, the signed digits of the integer V = scale X[source]
        at positions j = 0 .. 26 (|V| <= 2^51): r_j = RNE(V / 2^j), e_j = r_j - 2 r_(j+1) in {-1, 0, 1},
        sum_j e_j 2^j = r_0 - 2^27 r_27.

        Unit a_j computes v 2^-j + M = M + r_j, unit b_j computes v 2^-j + 2M = 2M + 2 r_(j+1) (the
        spacing there is 2); both have one data term and a bias, so any order of summation gives the
        same (M + r_j lies in [2^52, 2^53], spacing 1; 2M + 2 r_(j+1) in [2^53, 2^54), spacing 2).
        b_j - a_j = M - e_j is added to the constants 1 - M and 1 + M the inner split put in the rows
        (two terms: exact in any order)."""
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
                negated = {r: -c for r, c in outputs.items()}
                for j in range(DIGITS):
                    plus, minus = self.r(f"p_{part}", k, j, DIGITS), self.r(f"q_{part}", k, j, DIGITS)
                    if x == x_hi:  # x_hi >= 0: one unit a digit sign
                        scaled_positive_gate(ffn, {x: 1.0}, j + shift, [plus], outputs)
                        scaled_positive_gate(ffn, {x: 1.0}, j + shift, [minus], negated)
                    else:
                        scaled_gate(ffn, {x: 1.0}, j + shift, [plus], outputs)
                        scaled_gate(ffn, {x: -1.0}, j + shift, [minus], outputs)
                if part == "h":  # hi's constant 1.5 2^52: x (26 bits) times 3 2^51, one exact term
                    if x == x_hi:
                        ffn.unit({x: CENTRE}, 0.0, outputs)
                    else:
                        ffn.passes({x: CENTRE}, outputs)

    def middle(self, ffn: FeedForwardBuilder) -> None:
        for k in range(self.slots):
            t1 = self.r("t1", k)
            ffn.passes({self.r("t2", k): 1.0, self.r("t3", k): 1.0}, {self.r("mid", k): 1.0})
            for v, level in OVERFLOW_E.items():  # closed (0) unless E = v: 0 <= t1 < 2^131 < GATE
                threshold_distance(ffn, {t1: 1.0, self.ne(k, v): -GATE}, level, self.of("r", k, v))

    def two_sum(self, ffn: FeedForwardBuilder) -> None:
        for k in range(self.slots):
            ffn.passes({self.r("t1", k): 1.0, self.r("mid", k): 1.0}, {self.r("s", k): 1.0, self.r("z", k): 1.0})
            for v, level in OVERFLOW_E.items():
                threshold_indicators(ffn, self.of("r", k, v), level, self.of("u", k, v), self.of("t", k, v))

    def error(self, ffn: FeedForwardBuilder) -> None:
        """w += e = mid - z; for an exponent of the subnormal set, s2 = s 2^(E+256) and
        w2 = (T4 + e) 2^(E+256) (two gated terms, each exact: the sum is exact too)."""
        for k in range(self.slots):
            ffn.passes({self.r("mid", k): 1.0, self.r("z", k): -1.0}, {self.r("w", k): 1.0})
            s2, w2 = {self.r("s2", k): 1.0}, {self.r("w2", k): 1.0}
            for v in SUBNORMAL_E:
                shift, open_ = v + SUB_LEVEL, [self.ne(k, v)]
                scaled_positive_gate(ffn, {self.r("s", k): 1.0}, shift, open_, s2)  # s >= 0
                scaled_gate(ffn, {self.r("w", k): 1.0}, shift, open_, w2)  # T4 (w before this layer)
                scaled_gate(ffn, {self.r("mid", k): 1.0, self.r("z", k): -1.0}, shift, open_, w2)  # e

    def round(self, ffn: FeedForwardBuilder) -> None:
        """fl(s + w) = fl(|N W|) >= 0 in a unit (the one rounding), times 2^(16 B) by the output weight
        into r1 (E of NORMAL_E, E = 64 A + 16 B; closed for a product beyond the value limit): one
        unit for each B. The scale 2^(64 A) and the sign follow (scale_normal, sign_normal)."""
        for k in range(self.slots):
            terms = {self.r("s", k): 1.0, self.r("w", k): 1.0}
            overflow = [self.of("t", k, v) for v in OVERFLOW_E]  # 0 unless E = v and |x y| > 2^1001
            for b in SCALE_B:
                scaled_positive_gate(ffn, terms, E_UNIT * b, [self.scale_row("nb", k, b), *overflow],
                                     {self.r("r1", k): 1.0})
            ffn.unit(terms, 0.0, {self.r("rp", k): 1.0})  # unscaled (>= 0): product_error()
            ffn.unit({self.r("s2", k): 1.0, self.r("w2", k): 1.0}, 0.0, {self.r("rp2", k): 1.0})  # >= 0

    def _signed(self, ffn: FeedForwardBuilder, terms: Mapping[int, float], closed: Sequence[int], k: int,
                weight: float, row: str = "prod") -> None:
        """row += sign(x y) weight z for z = sum terms >= 0, unless a ``closed`` row is 1 (2 units)."""
        scaled_positive_gate(ffn, terms, 0, [*closed, self.r("neg", k)], {self.r(row, k): weight})
        scaled_positive_gate(ffn, terms, 0, [*closed, self.r("pos", k)], {self.r(row, k): -weight})

    def scale_normal(self, ffn: FeedForwardBuilder, k: int) -> None:
        """r2 = r1 2^(64 A) = |x y| (one unit for each A: r1 >= 0; exact: |x y| is normal here)."""
        for a in SCALE_A:
            scaled_positive_gate(ffn, {self.r("r1", k): 1.0}, 64 * a, [self.scale_row("na", k, a)],
                                 {self.r("r2", k): 1.0})

    def sign_normal(self, ffn: FeedForwardBuilder, k: int) -> None:
        """prod += sign(x y) r2 (two units, one of them open)."""
        self._signed(ffn, {self.r("r2", k): 1.0}, [], k, 1.0)

    def subnormal_grid(self, ffn: FeedForwardBuilder) -> None:
        """The normal set's scale_normal beside the subnormal set: sn_t = fl(p 2^-256) 2^256 and
        sn_e = s2 + w2 - p (two terms each; every value here is at most 2^-640 in magnitude, so nothing
        overflows a later scaling)."""
        for k in range(self.slots):
            self.scale_normal(ffn, k)
            rp, closed = self.r("rp2", k), [self.r("sub_off", k)]
            scaled_positive_gate(ffn, {rp: 2.0**-SUB_LEVEL}, 0, closed, {self.r("sn_t", k): 2.0**SUB_LEVEL})  # rp2 >= 0
            gate(ffn, {self.r("w2", k): 1.0}, closed, {self.r("sn_e", k): 1.0})
            gate(ffn, {self.r("s2", k): 1.0, rp: -1.0}, closed, {self.r("sn_e", k): 1.0})
        # slot 0's error terms with the product's sign, for product_error (rp, s and w are of |x y|)
        for notsel, sign in (("neg", 1.0), ("pos", -1.0)):
            closed = [self.r(notsel)]
            gate(ffn, {self.r("w"): 1.0}, closed, {self.r("err_w"): sign})
            gate(ffn, {self.r("s"): 1.0, self.r("rp"): -1.0}, closed, {self.r("err_d"): sign})

    def subnormal_remainder(self, ffn: FeedForwardBuilder) -> None:
        one = ffn.rows["one"][0]
        for b in SCALE_B:  # slot 0's error, exact (the error of one rounding is a float), times 2^(16 B)
            scaled_gate(ffn, {self.r("err_w"): 1.0, self.r("err_d"): 1.0}, E_UNIT * b, [self.scale_row("nb", 0, b)],
                        {self.r("err1"): 1.0})
        for k in range(self.slots):
            self.sign_normal(ffn, k)
            rp, closed = self.r("rp2", k), [self.r("sub_off", k)]
            gate(ffn, {rp: 1.0, self.r("sn_t", k): -1.0}, closed, {self.r("sn_r", k): 1.0})
            e = self.r("sn_e", k)
            ffn.unit({one: 1.0, e: -1.0 / ERROR_UNIT}, 0.0, {self.r("sn_np", k): 1.0})
            ffn.unit({one: 1.0, e: 1.0 / ERROR_UNIT}, 0.0, {self.r("sn_nn", k): 1.0})

    def subnormal_tie(self, ffn: FeedForwardBuilder) -> None:
        one = ffn.rows["one"][0]
        unit = 2.0 ** (-1074)
        for k in range(self.slots):
            prod, off, r = self.r("prod", k), self.r("sub_off", k), self.r("sn_r", k)
            self._signed(ffn, {self.r("sn_t", k): 2.0**-SUB_LEVEL}, [off], k, 1.0)  # sn_t >= 0
            for sign, closed in ((1.0, "sn_np"), (-1.0, "sn_nn")):  # up past the midpoint, down past it
                for notsel, product_sign in (("neg", 1.0), ("pos", -1.0)):  # of |x y|: times sign(x y)
                    ffn.unit({r: sign * TIE_SCALE, one: 1.0 - 2.0**53, self.r(closed, k): -TIE_CLOSED,
                              off: -TIE_CLOSED, self.r(notsel, k): -TIE_CLOSED}, 0.0, {prod: product_sign * sign * unit})

    def product_error(self, ffn: FeedForwardBuilder, notsel: Sequence[int], outputs: Mapping[int, float]) -> None:
        """outputs += x y - fl(x y) of slot 0, exactly, unless a ``notsel`` row is 1 (2 units per
        A of SCALE_A, in the caller's layer after the block's stages: the FLEQ machine's select
        layer, which reads err1). With p = rp = fl(s + w) and s the larger term (|w| <= ulp(s)),
        Dekker's fast two-sum gives s + w - p = w - (p - s) exactly; the subnormal grid stage writes
        w and s - p with the product's sign (err_w, err_d: two terms, exact), the remainder stage their
        sum (the error of one rounding: a float, so exact) times 2^(16 B) into err1, and here it is
        scaled by 2^(64 A): one rounding of the exact error times 2^E (every value is a multiple of
        2^-104 for factors in bands, so of 2^-1064 once scaled: exact). For an exponent of the
        subnormal set the error is not representable in general: the block writes nothing (mulerr's
        window refuses such factors, see fleq_functions.product_error)."""
        overflow = [self.of("t", 0, v) for v in OVERFLOW_E]  # 0 unless E = v and |x y| > 2^1001
        for a in SCALE_A:
            scaled_gate(ffn, {self.r("err1"): 1.0}, 64 * a, [self.scale_row("na", 0, a), *notsel, *overflow], outputs)

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
        """0/1 rows that are 1 when slot ``slot``'s product is beyond the value limit (|x y| > 2^1001)."""
        return [self.r("e_big", slot)] + [self.of("t", slot, v) for v in OVERFLOW_E]

    def temp_rows(self) -> list[int]:
        """Every row of the block (all temps: a host clears them after it read the result)."""
        return [r for b in self.rows if b.name.startswith(self.prefix) for r in b]

    def nonnegative_rows(self) -> list[int]:
        return [r for name in NONNEGATIVE for r in self.rows[self.prefix + name]]

    def clear(self, ffn: FeedForwardBuilder) -> None:
        """Every row of the block <- 0 exactly (a host calls this after it read the result)."""
        clear_rows(ffn, self.temp_rows(), nonnegative=self.nonnegative_rows())

    def stages(self) -> list[tuple[str, Callable[[FeedForwardBuilder], None]]]:
        """(name, stage) in layer order, the tree layers last."""
        fixed = [(name, getattr(self, method)) for name, method in STAGES]
        return fixed + [(f"tree {n}", lambda ffn, n=n: self.tree(ffn, n)) for n in range(tree_layers(self.slots))]


# (name, method) of the fixed stages, in layer order. A host machine may run the first SHARED_STAGES
# in ladder and normalise layers of its own (the FLEQ machine does); the rest are layers of their own.
STAGES = (("input split", "input_split"), ("outer ladder A", "outer_ladder_a"), ("outer ladder B and split", "outer_split"),
          ("inner ladder", "inner_ladder"), ("inner split", "inner_split"),
          ("digits", "digits"), ("partial products", "partial_products"),
          ("middle", "middle"), ("two-sum", "two_sum"), ("error", "error"), ("round", "round"),
          ("subnormal grid", "subnormal_grid"), ("subnormal remainder", "subnormal_remainder"),
          ("subnormal tie", "subnormal_tie"))
SHARED_STAGES = 4


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
                    + [(f"{f}_{side}", slots, "temp", f"max({'' if side == 'pos' else '-'}{f}, 0) of slot k")
                       for f in "xy" for side in ("pos", "neg")]
                    + row_blocks(slots))

    def parts(factor: str):
        return lambda k: ({rows[f"{factor}_pos"][k]: 1.0}, {rows[f"{factor}_neg"][k]: 1.0})

    block = ProductBlock(rows, slots, parts("x"), parts("y"), inputs=lambda factor, k: {rows[factor][k]: 1.0})
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
