"""Measured error of the stdlib's scalar routines div, mulw, sqrt, exp, log and sigmoid, in ulps of
the exact value, on the reference interpreter, over operands drawn across each routine's whole range
(the generators of tests/test_correct_rounding.py: subnormal and extreme operands, quotients next
to a rounding midpoint, products of any size and at subnormal ties, perfect squares and their
neighbours, arguments near 1). The exact value: Python's decimal at 60 digits, a product as an
exact fraction (tests/test_correct_rounding.exact_value). Prints, per routine:
samples, worst and median ulps, how many results are not the correctly rounded one, and the median
steps per call.

The transformer computes the same functions (mul, mulerr, add, sub, relu and the tables of recip,
sqrt, log and exp bit for bit; the tables only seed the iterations, and
tests/test_correct_rounding.py shows the results do not depend on the seed within 1e-6), so these
figures are the machine's too.

    python bench/routine_accuracy.py [--count N] [--seed S] [--only div mulw sqrt exp log sigmoid]
"""

from __future__ import annotations

import argparse
import sys
from decimal import localcontext
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.test_correct_rounding import (  # noqa: E402
    Routine,
    _ulps,
    division_operands,
    exact_value,
    exp_operands,
    log_operands,
    product_operands,
    sigmoid_operands,
    sqrt_operands,
)


DRAWS = {"div": division_operands, "mulw": product_operands, "sqrt": sqrt_operands, "exp": exp_operands, "log": log_operands,
         "sigmoid": sigmoid_operands}


def measure(name: str, count: int, seed: int) -> tuple[np.ndarray, int, float]:
    routine = Routine(name)
    errors, wrong, steps = [], 0, []
    with localcontext() as context:
        context.prec = 60
        with np.errstate(under="ignore"):
            operands = DRAWS[name](np.random.default_rng(seed), count)
        for args in operands:
            args = args if isinstance(args, tuple) else (args,)
            exact = exact_value(name, *args)
            got, n = routine.run(*args)
            errors.append(_ulps(got, exact))
            wrong += got != float(exact)
            steps.append(n)
    return np.array(errors), wrong, float(np.median(steps))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="operands per routine (the slow tests: 100,000)")
    parser.add_argument("--seed", type=int, default=1300)
    parser.add_argument("--only", nargs="*", default=["div", "mulw", "sqrt", "exp", "log", "sigmoid"])
    args = parser.parse_args()
    print(f"{'routine':<8} {'samples':>8} {'worst ulps':>11} {'median':>8} {'not CR':>7} {'steps':>6}")
    for name in args.only:
        errors, wrong, steps = measure(name, args.count, args.seed)
        print(f"{name:<8} {errors.size:>8} {errors.max():>11.4g} {np.median(errors):>8.3g} {wrong:>7} {steps:>6.0f}")


if __name__ == "__main__":
    main()
