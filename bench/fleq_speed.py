"""Milliseconds per FLEQ step on the looped transformer, by machine size, next to the reference,
and the time of each layer of the dense pass.

Runs a never-halting loop (a matrix-vector product, a table function, a branch) on FLEQ machines
of n = 128 ... columns with 8x8 cells, with the dense pass and the sparse path alternated (medians
of --repeats), and the reference interpreter on the same program in the same run; every run's
memory is checked bit for bit against the reference interpreter's after as many steps. Prints all
three, the ratio, and the time of each layer of the dense pass at the first size.

    python bench/fleq_speed.py [--steps K] [--sizes 128,256] [--repeats R]
"""

from __future__ import annotations

import argparse
import time

import fleqc
from common import alternated, check_result  # bench/ is on the path when run as a script
from fleqc.machines import weights_for
from fleqc.transformer.executor import apply_layer

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
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--sizes", default="128,256")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    program = fleqc.compile(PROGRAM)
    start = time.perf_counter()
    result = fleqc.run(program, backend="reference", max_steps=3000)
    reference = (time.perf_counter() - start) / result.steps
    expected = fleqc.run(program, backend="reference", max_steps=args.steps)
    print(f"reference interpreter: {reference * 1e6:.1f} us/step")
    print(f"{'n':>6} {'d':>6} {'dense ms':>9} {'sparse ms':>9} {'x reference (sparse)':>21}")
    for i, n in enumerate(int(s) for s in args.sizes.split(",")):
        card = fleqc.build(program, columns=n)
        model = weights_for(card.config)

        def per_step(engine: str) -> float:
            start = time.perf_counter()
            outcome = fleqc.run(card, max_steps=args.steps, engine=engine)
            elapsed = time.perf_counter() - start
            check_result(outcome, expected, f"{engine} at n = {n}")
            return elapsed / outcome.steps

        for engine in ("dense", "sparse"):
            fleqc.run(card, max_steps=1, engine=engine)  # warm up (and compile the sparse form)
        per = alternated({"dense": lambda: per_step("dense"), "sparse": lambda: per_step("sparse")}, args.repeats)
        print(f"{n:>6} {model.width:>6} {per['dense'] * 1e3:>9.1f} {per['sparse'] * 1e3:>9.1f} "
              f"{per['sparse'] / reference:>21.0f}")
        if i == 0:
            X = card.X
            times = []
            for layer in model.layers:
                start = time.perf_counter()
                for _ in range(5):
                    Y = apply_layer(layer, X, "softmax")
                times.append((time.perf_counter() - start) / 5)
                X = Y
            parts = ", ".join(f"{k + 1} {'attention' if hasattr(l, 'heads') else 'ReLU'} {t * 1e3:.1f}"
                              for k, (l, t) in enumerate(zip(model.layers, times)))
            print(f"  the dense pass layer by layer at n = {n} (ms, mean of 5): {parts}")
    print(f"(per step: medians of {args.repeats}, dense and sparse alternated, each run of {args.steps} steps checked "
          "bit for bit against the reference interpreter; the whole run's time, start-up included, over its steps)")


if __name__ == "__main__":
    main()
