"""Measured error of every FLEQ function block on the transformer, over its documented domain.

Each function runs on the real machine (frozen weights, punch card, softmax) over random 8x8 cells
whose entries are drawn across the block's domain; the results are compared with numpy.
Prints one row per block: domain, samples, worst error, the bound the tests assert.

    python bench/fleq_accuracy.py [--cells K] [--seed S]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fleqc  # noqa: E402
from fleqc.isa.fleq_functions import FLEQ_FUNCTIONS  # noqa: E402


def spread(rng, shape, lo, hi, signed=True):
    x = 10.0 ** rng.uniform(lo, hi, shape)
    return x * rng.choice([-1.0, 1.0], shape) if signed else x


def domains(rng):
    """function -> (domain words, operand a generator, operand b generator or None, error kind)."""
    return {
        "add": ("|x| in [1e-300, 1e300]", lambda s: spread(rng, s, -300, 300), lambda s: spread(rng, s, -300, 300), "rel"),
        "sub": ("|x| in [1e-300, 1e300]", lambda s: spread(rng, s, -300, 300), lambda s: spread(rng, s, -300, 300), "rel"),
        "mov": ("|x| in [1e-300, 1e300]", lambda s: spread(rng, s, -300, 300), None, "rel"),
        "transpose": ("|x| in [1e-300, 1e300]", lambda s: spread(rng, s, -300, 300), None, "rel"),
        "relu": ("|x| in [1e-300, 1e300]", lambda s: spread(rng, s, -300, 300), None, "rel"),
        "mul": ("|a| in [1e-100, 1e100], |b| in [1e-28, 1e28]", lambda s: spread(rng, s, -100, 100),
                lambda s: spread(rng, s, -28, 28), "rel"),
        "matmul": ("entries 10^U(-5, 5), both signs", lambda s: spread(rng, s, -5, 5),
                   lambda s: spread(rng, s, -5, 5), "componentwise"),
        "sigmoid": ("x in [-800, 800]", lambda s: rng.uniform(-800, 800, s), None, "rel"),
        "exp": ("x in [-708, 693.1]", lambda s: rng.uniform(-708, 693.1, s), None, "rel"),
        "recip": ("|x| in [1e-24, 1e24]", lambda s: spread(rng, s, -24, 24), None, "rel"),
        "sqrt": ("x in [1e-24, 1e24]", lambda s: spread(rng, s, -24, 24, signed=False), None, "rel"),
        "log": ("x in [1e-24, 1e24]", lambda s: spread(rng, s, -24, 24, signed=False), None, "log"),
    }


def measure(func, make_a, make_b, kind, cells):
    shape = (8, 8)
    a = [make_a(shape) for _ in range(cells)]
    b = [make_b(shape) for _ in range(cells)] if make_b else a
    lines = [".machine fleq", ".data"]
    for k in range(cells):
        for name, value in (("a", a[k]), ("b", b[k]), ("c", np.zeros(shape))):
            lines.append(f"{name}{k}: .matrix 8 8 " + ", ".join(repr(float(x)) for x in value.ravel()))
    lines.append(".text")
    for k in range(cells):
        lines.append(f"{func} c{k}, a{k}, b{k}" if make_b else f"{func} c{k}, a{k}")
    lines.append("halt")
    program = fleqc.compile("\n".join(lines))
    start = time.perf_counter()
    result = fleqc.run(program)
    seconds = time.perf_counter() - start
    worst = 0.0
    for k in range(cells):
        got = result.memory[f"c{k}"]
        exact = FLEQ_FUNCTIONS[func].apply(a[k], b[k] if make_b else None)
        err = np.abs(got - exact)
        if kind == "componentwise":
            scale = np.matmul(np.abs(a[k]), np.abs(b[k]))
        else:  # relative (log too: the domain keeps |log x| away from 0)
            scale = np.maximum(np.abs(exact), 1e-300)
        worst = max(worst, float(np.max(err / scale)))
    return worst, 64 * cells, seconds / (cells + 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=8, help="8x8 cells per function (64 samples each)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"{'block':<10} {'domain':<46} {'samples':>7} {'worst error':>12}  kind           s/step")
    for func, (words, make_a, make_b, kind) in domains(rng).items():
        worst, samples, per_step = measure(func, make_a, make_b, kind, args.cells)
        label = {"rel": "relative", "componentwise": "/ sum|a b|", "log": "relative"}[kind]
        print(f"{func:<10} {words:<46} {samples:>7} {worst:>12.2e}  {label:<14} {per_step:.3f}")


if __name__ == "__main__":
    main()
