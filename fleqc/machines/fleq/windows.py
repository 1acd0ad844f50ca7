"""The FLEQ machine's numeric windows: the exact power-of-two ladders that bring an operand into a
block's window, and the constants that say where each window ends.

They are part of the machine's definition, so both its reference semantics
(:mod:`fleqc.machines.fleq.functions`: the domains) and its weights (the row layout, the product
block, the tables) read them from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from fleqc.machines.fleq import tables

# The product's band ladder, on each factor f: tau_j = 2^(64 j), j = -15 .. 15. Band j (tau_j < |f| <=
# tau_(j+1); the top band j = 15 is |f| > 2^960) scales f by 2^(-64 j) into (1, 2^64]; the bottom band
# |f| <= 2^-960 (subnormals included) scales it up by 2^1008, exactly (fleqc.machines.fleq.product).
OUTER_STEP, OUTER_LO, OUTER_HI = 64, -15, 15
BOTTOM_SCALE = 1008  # a factor |f| <= 2^-960 times 2^1008: in [2^-66, 2^48], exact
SMALL_X = 2.0**-500  # mulerr's window: a = 0 or |a| > 2^-500 (and b = 0 or |b| > MULERR_B)
MULERR_B = 2.0**-448  # with |a| > 2^-500, the product's exponent band is >= -960: its error is a float
EXP_MAX = tables.EXP_MAX  # the largest float x with e^x <= 2^1000 = VALUE_LIMIT


@dataclass(frozen=True)
class Ladder:
    """Thresholds tau_j = 2^(step * j + offset), j = lo .. hi: the exact power-of-two split.

    Selector s (lo <= s < hi) holds when tau_s < |x| <= tau_(s+1); then x * 2^-(step s) lies in the
    window (2^offset, 2^(step + offset)]. |x| <= tau_lo selects nothing (the result is 0);
    |x| > tau_hi is outside the window.
    """

    step: int
    offset: int
    lo: int
    hi: int

    @property
    def thresholds(self) -> list[int]:
        """The exponents of tau_lo .. tau_hi."""
        return [self.step * j + self.offset for j in range(self.lo, self.hi + 1)]

    def tau(self, j: int) -> float:
        """Threshold j: 2^(step j + offset)."""
        return 2.0 ** (self.step * j + self.offset)

    @property
    def selectors(self) -> range:
        return range(self.lo, self.hi)

    def index(self, j: int) -> int:
        return j - self.lo


# Products: each factor's band, f 2^(-64 s) in (1, 2^64] (fleqc.machines.fleq.product: every finite
# factor; the bottom band |f| <= 2^-960 is scaled by 2^1008 instead).
PRODUCT_LADDER = Ladder(step=OUTER_STEP, offset=0, lo=OUTER_LO, hi=OUTER_HI)
PRODUCT_PREFIX = "xp_"  # the exact product block's rows: xp_v, xp_p_h, ...
# The tables (recip, sqrt, log): x' = x 4^(-s) in (1/2, 2]; |x| in (2^-81, 2^81].
TABLE_LADDER = Ladder(step=2, offset=-1, lo=-40, hi=41)
