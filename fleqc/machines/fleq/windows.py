"""The FLEQ machine's numeric windows: the exact power-of-two ladders that bring an operand into a
block's window, and the constants that say where each window ends.

They are part of the machine's definition, so both its reference semantics
(:mod:`fleqc.machines.fleq.functions`: the domains) and its weights (the row layout, the product
block, the tables) read them from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from fleqc.machines.fleq import tables

OUTER_STEP, OUTER_LO, OUTER_HI = 8, -12, 12  # the product's factor |y| in (2^-96, 2^96]: tau_j = 2^(8 j)
SMALL_X = 2.0**-500  # the product's |x| <= SMALL_X: scale x up by 2^256 instead of down by 2^128
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


# Products: b' = b 2^(-8 s) in (1, 256]; |b| in (2^-96, 2^96] (below: the product is 0). The exact
# product block (fleqc.machines.fleq.product) runs on this ladder.
PRODUCT_LADDER = Ladder(step=OUTER_STEP, offset=0, lo=OUTER_LO, hi=OUTER_HI)
PRODUCT_PREFIX = "xp_"  # the exact product block's rows: xp_m, xp_p_h, ...
# The tables (recip, sqrt, log): x' = x 4^(-s) in (1/2, 2]; |x| in (2^-81, 2^81].
TABLE_LADDER = Ladder(step=2, offset=-1, lo=-40, hi=41)
