"""Milliseconds per executed SUBLEQ instruction on the looped transformer, by machine size.

Runs one looping program on machines of n = 32 ... 1024 columns (the program is padded to n) in
both attention modes, and the plain-Python reference interpreter on the same program in the same
run, and prints the ratio (medians of alternated runs, each run checked against the reference
interpreter); then the same per card when B cards run as one batch (n = 64).
Usage: python bench/subleq_speed.py [--seconds S] [--sizes 32,64,...] [--batches 1,8,32,128] [--repeats R]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import fleqc
from common import alternated, check_result, same_memory  # bench/ is on the path when run as a script
from fleqc.machines import weights_for
from fleqc.transformer import run_batch

# the looping program, shared with tests/test_run_loop.py as a file (benches import no tests, and a
# test has no business importing a bench): 3 instructions per iteration, never halts
PROGRAM = (Path(__file__).resolve().parent.parent / "samples" / "loops" / "countdown.fleq").read_text()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time budget per measurement")
    parser.add_argument("--sizes", default="32,64,128,256,1024")
    parser.add_argument("--batches", default="1,8,32,128")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    program = fleqc.compile(PROGRAM)
    start = time.perf_counter()
    fleqc.run(program, backend="reference", max_steps=20000)
    ref = (time.perf_counter() - start) / 20000
    print(f"reference interpreter: {ref * 1e6:.2f} us per instruction")
    print(f"{'n':>6} {'d':>5} {'softmax ms':>11} {'hardmax ms':>11} {'x reference':>12}")
    for n in [int(s) for s in args.sizes.split(",")]:
        card = fleqc.build(program, columns=n)
        model = weights_for(card.config)

        def dense(steps, mode):
            start = time.perf_counter()
            result = fleqc.run(card, max_steps=steps, mode=mode, engine="dense")
            elapsed = time.perf_counter() - start
            check_result(result, fleqc.run(program, backend="reference", max_steps=steps), f"{mode} at n = {n}")
            return elapsed / steps

        steps = max(5, int(args.seconds / dense(5, "softmax")))
        row = alternated({mode: (lambda mode=mode: dense(steps, mode)) for mode in ("softmax", "hardmax")},
                         args.repeats)
        print(f"{n:>6} {model.width:>5} {row['softmax'] * 1e3:>11.3f} {row['hardmax'] * 1e3:>11.3f} "
              f"{row['softmax'] / ref:>12.0f}")
    print(f"(the dense pass, ms per instruction: medians of {args.repeats}, the modes alternated, each run's memory "
          "checked against the reference interpreter's)")

    card = fleqc.build(program, columns=64)
    model = weights_for(card.config)
    print("\nbatches of cards on one n = 64 machine (softmax, the dense pass), per card and instruction:")
    print(f"{'cards':>6} {'ms':>9} {'x reference':>12}")
    steps = 50
    expected = fleqc.run(program, backend="reference", max_steps=steps)
    for cards in [int(b) for b in args.batches.split(",")]:
        X = np.stack([card.X] * cards)

        def timed(X=X, cards=cards):
            start = time.perf_counter()
            outcome = run_batch(model, X, max_steps=steps, engine="dense")
            each = (time.perf_counter() - start) / (steps * cards)
            assert (outcome.steps == steps).all()
            for b in range(cards):
                if same_memory(card.decode(outcome.X[b]), expected.memory):
                    raise SystemExit(f"batch of {cards}: card {b} differs from the reference interpreter")
            return each

        each = alternated({"batch": timed}, args.repeats)["batch"]
        print(f"{cards:>6} {each * 1e3:>9.4f} {each / ref:>12.1f}")
    print(f"(medians of {args.repeats}; every card checked against the reference interpreter)")


if __name__ == "__main__":
    main()
