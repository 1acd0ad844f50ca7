"""Study for issue 13: a correctly rounded mul from the operations a ReLU feed-forward layer performs
exactly, emulated in numpy and compared bit for bit with numpy's a * b.

This is not the transformer: it checks the arithmetic of the construction docs/fleq-design.md
("Toward a correctly rounded mul") proposes, with every step restricted to what one feed-forward
unit computes with one IEEE rounding or none:

- ``lin1(w, x)``: a one-term linear map w x (one rounding; exact for a power of two w);
- ``lin2(x, y)``: a two-term linear map x + y (one IEEE addition, as a unit's pre-activation with two
  nonzero weights of magnitude 1 computes it; ReLU(z) - ReLU(-z) passes z on exactly);
- ``gate(flag, x)``: x times a 0/1 flag (the machine's exact gates);
- ``above(x, tau)``: the exact threshold indicator [x > tau] of a fixed threshold.

Each step's comment gives its feed-forward depth; the total is the layer cost the design states.
Operands are drawn with normal results (|a b| in [2^-1000, 2^1000], the window's factor |b| in
(2^-96, 2^96]); subnormal results are not covered (docs: what remains).

    python bench/fleq_mul_study.py [--pairs N] [--seed S]
"""

from __future__ import annotations

import argparse

import numpy as np

MAGIC = 1.5 * 2.0**52  # (v + MAGIC) - MAGIC rounds v to the nearest integer (|v| < 2^51)
SPLIT = 2.0**27 + 1.0  # Veltkamp's constant for 53-bit significands: halves of 26 and 27 bits


def lin1(w: float, x: np.ndarray) -> np.ndarray:
    return w * x


def lin2(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return x + y


def gate(flag: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.where(flag == 1.0, x, 0.0)


def above(x: np.ndarray, tau: float) -> np.ndarray:
    return (x > tau).astype(np.float64)


def split(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Veltkamp: m (an integer < 2^53) = hi + lo exactly, hi a multiple of 2^27 with 26 bits,
    |lo| <= 2^26. Depth 3 (c, then c - m, then hi; lo = m - hi with the next step)."""
    c = lin1(SPLIT, m)
    hi = lin2(c, -lin2(c, -m))
    return hi, lin2(m, -hi)


def bits(x: np.ndarray, count: int) -> list[np.ndarray]:
    """The binary digits of the integers 0 <= x < 2^count, all at once: floor(x 2^-k) by rounding
    x 2^-k - 1/2 + 2^-(k+1) (never a tie) with MAGIC, then digit k = f_k - 2 f_(k+1). Depth 4."""
    floors = []
    for k in range(count + 1):
        t = lin2(lin1(2.0**-k, x), np.full_like(x, 2.0 ** -(k + 1) - 0.5))  # exact: few bits
        floors.append(lin2(lin2(t, np.full_like(x, MAGIC)), np.full_like(x, -MAGIC)))
    return [lin2(floors[k], lin1(-2.0, floors[k + 1])) for k in range(count)]


def product(x: np.ndarray, digits: list[np.ndarray]) -> np.ndarray:
    """x times the integer whose digits are given: sum_k gate(digit_k, x 2^k), every partial sum an
    integer multiple of x's last bit below 2^53 of it, so exact in any order. Depth 1."""
    total = np.zeros_like(x)
    for k, digit in enumerate(digits):
        total = lin2(total, gate(digit, lin1(2.0**k, x)))
    return total


def fast_two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """s + e = a + b exactly when |a| >= |b| (Dekker). Depth 3."""
    s = lin2(a, b)
    return s, lin2(b, -lin2(s, -a))


def correctly_rounded_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    sign = np.sign(a) * np.sign(b)
    # ladders (depth 2 with the machine's 8-step ladder and a 1-step one inside (1, 256]): integer
    # significands ma, mb in [2^52, 2^53) and the exponents, exactly
    fa, ea = np.frexp(np.abs(a))
    fb, eb = np.frexp(np.abs(b))
    ma, mb = np.ldexp(fa, 53), np.ldexp(fb, 53)
    a_hi, a_lo = split(ma)  # depth 3
    b_hi, b_lo = split(mb)
    neg = above(-b_lo, 0.0)  # b_lo's sign, exact (b_lo is an integer)
    b_lo_abs = lin2(gate(1.0 - neg, b_lo), gate(neg, -b_lo))
    high_digits = bits(lin1(2.0**-27, b_hi), 27)  # depth 4 (b_hi may round up to 2^53: 27 digits)
    low_digits = bits(b_lo_abs, 27)
    # the four partial products, exact (depth 1): a_hi b_hi, a_lo b_hi, a_hi b_lo, a_lo b_lo
    hh = lin1(2.0**27, product(a_hi, high_digits))
    lh = lin1(2.0**27, product(a_lo, high_digits))
    hl = product(a_hi, low_digits)
    ll = product(a_lo, low_digits)
    hl = lin2(gate(1.0 - neg, hl), gate(neg, -hl))
    ll = lin2(gate(1.0 - neg, ll), gate(neg, -ll))
    # the exact sum as s + t + r (|hh| > |lh|, |hl| >> |ll|: fast two-sums apply), depth 9 + 3
    s, e1 = fast_two_sum(hh, lh)
    s, e2 = fast_two_sum(s, hl)
    s, e3 = fast_two_sum(s, ll)
    t, r = _two_sum(lin2(e1, e2), e3)
    s, t = fast_two_sum(s, t)
    # a tie of s + t (|t| = ulp(s) / 2) broken by r's sign: step once more in t's direction when r
    # has t's sign (exact indicators on the fixed thresholds of s in [2^104, 2^106)); depth 3
    half = np.where(above(s, 2.0**105) == 1.0, 2.0**52, 2.0**51)
    tie = (np.abs(t) == half) & (np.sign(r) == np.sign(t)) & (r != 0)
    s = np.where(tie, lin2(s, lin1(2.0, t)), s)
    # back to the exponent ea + eb - 106 by exact power-of-two gates (depth 2), and the sign
    return sign * np.ldexp(s, ea + eb - 106)


def _two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """s + e = a + b exactly for any order of magnitude (Knuth). Depth 5."""
    s = lin2(a, b)
    bv = lin2(s, -a)
    av = lin2(s, -bv)
    return s, lin2(lin2(a, -av), lin2(b, -bv))


def draw(rng: np.random.Generator, pairs: int) -> tuple[np.ndarray, np.ndarray]:
    b = np.ldexp(rng.uniform(1.0, 2.0, pairs), rng.integers(-95, 96, pairs))
    a = np.ldexp(rng.uniform(1.0, 2.0, pairs), rng.integers(-1000, 1000, pairs))
    with np.errstate(over="ignore"):
        keep = (np.abs(a * b) >= 2.0**-1000) & (np.abs(a * b) <= 2.0**1000)
    signs = rng.choice([-1.0, 1.0], (2, pairs))
    return (a * signs[0])[keep], (b * signs[1])[keep]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    a, b = draw(rng, args.pairs)
    # the hard cases too: products of significands whose exact value lies at a tie or next to one
    ties = np.ldexp(1.0 + rng.integers(0, 2**26, args.pairs // 10) * 2.0**-26, 0)
    a = np.concatenate([a, ties, 1.0 + 2.0**-52 * rng.integers(1, 2**20, args.pairs // 10)])
    b = np.concatenate([b, 1.0 + 2.0**-27 * rng.integers(1, 2**26, args.pairs // 10),
                        1.0 - 2.0**-53 * rng.integers(1, 2**20, args.pairs // 10)])
    got = correctly_rounded_product(a, b)
    same = got.view(np.int64) == (a * b).view(np.int64)
    print(f"{a.size} pairs: {int(same.sum())} bit-equal to numpy's a * b, {int((~same).sum())} differ")
    if not same.all():
        k = int(np.argmin(same))
        print(f"first difference: {a[k]!r} * {b[k]!r} = {a[k] * b[k]!r}, construction {got[k]!r}")


if __name__ == "__main__":
    main()
