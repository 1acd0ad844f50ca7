"""Milliseconds per step, dense executor vs the sparse fast path, side by side in one run.

Runs a never-halting SUBLEQ loop (n = 64, 256) and a never-halting FLEQ loop (n = 128, 256, 512;
the programs of bench/subleq_speed.py and bench/fleq_speed.py) through ``run(..., engine="dense")``
and ``run(..., engine="sparse")`` on the same card, alternating the two, and prints the median over
the repeats of each and their ratio; the two final X must be equal bit for bit.

    python bench/fast_speed.py [--repeats R] [--subleq 64,256] [--fleq 128,256,512]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fleqc  # noqa: E402
from fleqc.machines import weights_for  # noqa: E402
from fleqc.transformer import run  # noqa: E402
from fleqc.transformer.sparse import compile_fast  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import alternated  # noqa: E402
from fleq_speed import PROGRAM as FLEQ_PROGRAM  # noqa: E402
from subleq_speed import PROGRAM as SUBLEQ_PROGRAM  # noqa: E402


FINAL: dict[bool, object] = {}


def per_step(model, X, steps: int, fast: bool) -> float:
    start = time.perf_counter()
    outcome = run(model, X, max_steps=steps, engine="sparse" if fast else "dense")
    elapsed = time.perf_counter() - start
    assert outcome.steps == steps and not outcome.halted
    FINAL[fast] = outcome.X
    return elapsed / (steps + 1)  # the last pass, which tells it did not halt, is one more


def measure(kind: str, source: str, n: int, steps: int, repeats: int) -> None:
    card = fleqc.build(fleqc.compile(source), columns=n)
    model = weights_for(card.config)
    start = time.perf_counter()
    compile_fast(model)
    compile_ms = (time.perf_counter() - start) * 1e3
    run(model, card.X, max_steps=1, engine="sparse")  # warm up both
    run(model, card.X, max_steps=1, engine="dense")
    medians = alternated({"dense": lambda: per_step(model, card.X, steps, fast=False),
                          "sparse": lambda: per_step(model, card.X, steps, fast=True)}, repeats)
    if not (FINAL[False] == FINAL[True]).all():
        raise SystemExit(f"{kind} n = {n}: the sparse path's X differs from the dense pass's after {steps} steps")
    d, f = medians["dense"], medians["sparse"]
    print(f"{kind:>7} {n:>6} {model.width:>6} {d * 1e3:>10.2f} {f * 1e3:>10.2f} {d / f:>7.1f} {compile_ms:>11.0f}"
          "   equal", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--subleq", default="64,256")
    parser.add_argument("--fleq", default="128,256,512")
    parser.add_argument("--subleq-steps", type=int, default=200)
    parser.add_argument("--fleq-steps", type=int, default=4)
    args = parser.parse_args()
    print(f"{'machine':>7} {'n':>6} {'d':>6} {'dense ms':>10} {'sparse ms':>10} {'ratio':>7} {'compile ms':>11}   X")
    for n in [int(s) for s in args.subleq.split(",") if s]:
        measure("subleq", SUBLEQ_PROGRAM, n, args.subleq_steps, args.repeats)
    for n in [int(s) for s in args.fleq.split(",") if s]:
        measure("fleq", FLEQ_PROGRAM, n, args.fleq_steps, args.repeats)
    print(f"(milliseconds per pass, medians of {args.repeats}, dense and sparse alternated; X: the two final X "
          "compared bit for bit)")


if __name__ == "__main__":
    main()
