"""Milliseconds per executed SUBLEQ instruction on the looped transformer, by machine size.

Runs one looping program on machines of n = 32 ... 1024 columns (the program is padded to n) in
both attention modes, and the plain-Python reference interpreter on the same program in the same
run, and prints the ratio; then the same per card when B cards run as one batch (n = 64).
Usage: python bench/subleq_speed.py [--seconds S] [--sizes 32,64,...] [--batches 1,8,32,128]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import fleqc
from fleqc.runner import run_reference, run_transformer
from fleqc.machines import weights_for
from fleqc.transformer import run_batch

PROGRAM = """
; count down from a large number forever: 3 instructions per iteration, never halts
.bits 16
.data
x:    .word 30000
one:  .word 1
big:  .word -30000
.text
loop: subleq one, x, reset
      jmp loop
reset: subleq x, x
      subleq big, x, loop
"""


def per_step(fn, steps: int) -> float:
    start = time.perf_counter()
    result = fn(steps)
    elapsed = time.perf_counter() - start
    assert result.steps == steps and not result.halted
    return elapsed / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time budget per measurement")
    parser.add_argument("--sizes", default="32,64,128,256,1024")
    parser.add_argument("--batches", default="1,8,32,128")
    args = parser.parse_args()
    program = fleqc.compile(PROGRAM)
    ref = per_step(lambda k: run_reference(program, k), 20000)
    print(f"reference interpreter: {ref * 1e6:.2f} us per instruction")
    print(f"{'n':>6} {'d':>5} {'softmax ms':>11} {'hardmax ms':>11} {'x reference':>12}")
    for n in [int(s) for s in args.sizes.split(",")]:
        card = fleqc.build(program, columns=n)
        model = weights_for(card.config)
        row = []
        for mode in ("softmax", "hardmax"):
            probe = per_step(lambda k: run_transformer(card, k, mode, engine="dense"), 5)
            steps = max(5, int(args.seconds / probe))
            row.append(per_step(lambda k: run_transformer(card, k, mode, engine="dense"), steps))
        print(f"{n:>6} {model.width:>5} {row[0] * 1e3:>11.3f} {row[1] * 1e3:>11.3f} {row[0] / ref:>12.0f}")

    card = fleqc.build(program, columns=64)
    model = weights_for(card.config)
    print("\nbatches of cards on one n = 64 machine (softmax), per card and instruction:")
    print(f"{'cards':>6} {'ms':>9} {'x reference':>12}")
    for cards in [int(b) for b in args.batches.split(",")]:
        X = np.stack([card.X] * cards)
        steps = 50
        start = time.perf_counter()
        outcome = run_batch(model, X, max_steps=steps, engine="dense")
        each = (time.perf_counter() - start) / (steps * cards)
        assert (outcome.steps == steps).all()
        print(f"{cards:>6} {each * 1e3:>9.4f} {each / ref:>12.1f}")


if __name__ == "__main__":
    main()
