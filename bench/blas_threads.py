"""The dense pass with one BLAS thread and with two, alternated in one run (fleqc runs with one).

Medians of --repeats; the final X of the two must be equal bit for bit.

Usage: python bench/blas_threads.py [--columns 512] [--passes 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from threadpoolctl import threadpool_limits

import fleqc
from fleqc.machines import weights_for
from fleqc.transformer.executor import run
from subleq_speed import PROGRAM  # bench/ is on the path when run as a script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--columns", type=int, default=512)
    parser.add_argument("--passes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    card = fleqc.build(PROGRAM, columns=args.columns)
    model = weights_for(card.config)
    times: dict[int, list[float]] = {1: [], 2: []}
    final = {}
    for _ in range(args.repeats):
        for threads in times:
            with threadpool_limits(limits=threads, user_api="blas"):
                start = time.perf_counter()
                final[threads] = run(model, card.X, max_steps=args.passes, engine="dense").X
                times[threads].append((time.perf_counter() - start) / (args.passes + 1))
    if not (final[1] == final[2]).all():
        raise SystemExit("the dense pass gave different X with one and two BLAS threads")
    for threads, values in times.items():
        print(f"dense pass, n = {args.columns}, {threads} BLAS thread(s): {statistics.median(values) * 1e3:.1f} ms "
              f"(median of {args.repeats}, alternated)")
    print("the final X of both: equal bit for bit")


if __name__ == "__main__":
    main()
