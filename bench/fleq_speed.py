"""Milliseconds per FLEQ step on the looped transformer, by machine size, next to the reference.

Runs a never-halting loop (a matrix-vector product, a table function, a branch) on FLEQ machines
of n = 128 ... columns with 8x8 cells, with the dense pass and the fast path, and the numpy
reference interpreter on the same program in the same run; prints all three, the ratio, and the
time of each dense layer at the first size.

    python bench/fleq_speed.py [--steps K] [--sizes 128,256]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fleqc  # noqa: E402
from fleqc.runner import run_reference, run_transformer  # noqa: E402
from fleqc.machines import weights_for  # noqa: E402
from fleqc.transformer.executor import apply_layer  # noqa: E402

PROGRAM = """
.machine fleq
.data
R:    .matrix 2 2  0.6, -0.8, 0.8, 0.6
v:    .vector 2    1.0, 0.0
x:    .word 2.0
y:    .word 0
one:  .word 1
.text
loop: matmul v, R, v
      sqrt y, x
      sub y, y, one
      jmp loop
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--sizes", default="128,256")
    args = parser.parse_args()
    program = fleqc.compile(PROGRAM)
    start = time.perf_counter()
    reference_steps = 3000
    result = run_reference(program, max_steps=reference_steps)
    reference = (time.perf_counter() - start) / result.steps
    print(f"reference interpreter: {reference * 1e6:.1f} us/step")
    print(f"{'n':>6} {'d':>6} {'dense ms':>9} {'fast ms':>8} {'x reference (fast)':>19}")
    for i, n in enumerate(int(s) for s in args.sizes.split(",")):
        card = fleqc.build(program, columns=n)
        model = weights_for(card.config)
        per = {}
        for fast in (False, True):
            run_transformer(card, max_steps=1, engine="sparse" if fast else "dense")  # warm up (and compile the fast form)
            start = time.perf_counter()
            outcome = run_transformer(card, max_steps=args.steps, engine="sparse" if fast else "dense")
            per[fast] = (time.perf_counter() - start) / outcome.steps
        print(f"{n:>6} {model.width:>6} {per[False] * 1e3:>9.1f} {per[True] * 1e3:>8.1f} {per[True] / reference:>19.0f}")
        if i == 0:
            X = card.X
            times = []
            for layer in model.layers:
                start = time.perf_counter()
                for _ in range(5):
                    Y = apply_layer(layer, X, "softmax")
                times.append((time.perf_counter() - start) / 5)
                X = Y
            parts = ", ".join(f"{getattr(l, 'name', '') or 'attention'} {t * 1e3:.1f}" for l, t in zip(model.layers, times))
            print(f"  per layer at n={n} (ms): {parts}")


if __name__ == "__main__":
    main()
