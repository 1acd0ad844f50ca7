"""Measured error of every FLEQ function on the transformer, in ulps, over its whole window.

Each function runs on the real machine (frozen weights, punch card, softmax) over R programs of 16
random 8x8 cells (1,024 operands) whose entries are drawn across the function's window (fleqc.machines.fleq.ulps.accepted_operands:
random binary exponents over every accepted order of magnitude, subnormals included where
accepted). Each result is compared with the correctly rounded float64 value (exact rationals where
the function is rational; fleqc.machines.fleq.ulps says how). Prints one row per function: samples,
worst and median error in ulps, the bound in ulps the tests assert (the record's ``ErrorBound.ulps``)
and the seconds per step.

    python bench/fleq_accuracy.py [--runs R] [--seed S] [--only FUNC ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fleqc.machines.fleq.functions import FLEQ_FUNCTIONS  # noqa: E402
from tests.support.fleq_checks import measure_ulps  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="programs per function (1,024 samples each)")
    parser.add_argument("--seed", type=int, default=13, help="each function's generator (tests: 13, slow: 1300)")
    parser.add_argument("--only", nargs="*", default=sorted(FLEQ_FUNCTIONS), help="functions to measure")
    args = parser.parse_args()
    print(f"{'function':<10} {'samples':>8} {'worst ulps':>12} {'median ulps':>12} {'bound ulps':>12}  s/step")
    for func in args.only:
        ulps, per_step = measure_ulps(func, args.runs, np.random.default_rng(args.seed))  # as tests/test_fleq_ulps.py
        bound = FLEQ_FUNCTIONS[func].bound.ulps
        print(f"{func:<10} {ulps.size:>8} {ulps.max():>12.4g} {np.median(ulps):>12.4g} {bound:>12.4g}  {per_step:.3f}")


if __name__ == "__main__":
    main()
