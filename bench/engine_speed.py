"""Instructions per second of every engine, by machine size, side by side in one run.

SUBLEQ table: one looping program (3 instructions per iteration, never halts) padded to n = 64 ...
65,536 columns (N = 16). For each n: the incremental engine, the sparse path and the dense pass in
softmax and hardmax mode (the last three only up to --dense-max, their cost grows as n^2), and the
plain-Python reference interpreter on the same program in the same run; instructions per second
(median of --repeats runs, the engines alternated), the ratio to the reference, the engine's peak
memory (card, machine, caches; tracemalloc) and the time to build the machine; then the fitted
exponent of n of the engine's time per instruction over 1,024 ... 65,536.

Then: one card against a batch of 64 at n = 256; the start-up of ``fleqc run`` on a small program;
the FLEQ machine by n (engine and sparse path); the FLEQ samples and applications on the
transformer (--apps: the applications, minutes).

Usage: python bench/engine_speed.py [--sizes 64,256,...] [--dense-max 4096] [--repeats 3] [--apps]
Timings are medians on a shared machine: compare the ratios, not the absolute figures.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

import fleqc
from fleqc.runner import run_reference, run_transformer
from fleqc.machines import weights_for
from fleqc.threads import blas_threads, chosen_blas_threads
from fleqc.transformer.executor import run_batch, stepper

ROOT = Path(__file__).resolve().parent.parent
from subleq_speed import PROGRAM  # noqa: E402 (bench/ is on the path when run as a script)


def rate(model, X, engine: str, mode: str, seconds: float, max_passes: int) -> float:
    """Passes per second after the first pass (the engine's set-up is timed apart)."""
    loop = stepper(model, X, mode, engine)
    loop.step()
    done, start = 0, time.perf_counter()
    while done < max_passes and (time.perf_counter() - start < seconds or done < 3):
        loop.step()
        done += 1
    return done / (time.perf_counter() - start)


def reference_rate(program, steps: int = 20_000) -> float:
    start = time.perf_counter()
    outcome = run_reference(program, max_steps=steps)
    return outcome.steps / (time.perf_counter() - start)


def subleq_table(sizes, dense_max, repeats, seconds):
    program = fleqc.compile(PROGRAM)
    ref = statistics.median(reference_rate(program) for _ in range(3))
    paths = [("engine", "incremental", "softmax"), ("engine-hardmax", "incremental", "hardmax"),
             ("sparse", "sparse", "softmax"), ("dense", "dense", "softmax"), ("dense-hardmax", "dense", "hardmax")]
    print(f"reference interpreter: {ref:,.0f} instructions/s (plain Python)\n")
    print(f"{'n':>6} {'build s':>8} {'first pass s':>12} {'peak MiB':>9}  " +
          "  ".join(f"{name:>16}" for name, _, _ in paths))
    engine_times = {}
    for n in sizes:
        card = fleqc.build(PROGRAM, columns=n)
        start = time.perf_counter()
        model = weights_for(card.config)
        build = time.perf_counter() - start
        tracemalloc.start()
        start = time.perf_counter()
        loop = stepper(model, card.X, "softmax", "incremental")
        loop.step()
        first = time.perf_counter() - start
        for _ in range(200):
            loop.step()
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        del loop
        samples = {name: [] for name, _, _ in paths}
        for _ in range(repeats):  # alternate the paths
            for name, engine, mode in paths:
                if engine != "incremental" and n > dense_max:
                    continue
                budget = seconds if engine == "incremental" else seconds / 2
                samples[name].append(rate(model, card.X, engine, mode, budget, 100_000 if engine == "incremental" else 200))
        cells = []
        for name, _, _ in paths:
            if not samples[name]:
                cells.append(f"{'-':>16}")
                continue
            r = statistics.median(samples[name])
            cells.append(f"{r:>9,.0f} ({r / ref:>4.2f}x)")
        engine_times[n] = 1 / statistics.median(samples["engine"])
        print(f"{n:>6} {build:>8.2f} {first:>12.3f} {peak:>9.0f}  " + "  ".join(cells))
    big = [n for n in sizes if n >= 1024]
    if len(big) >= 2:
        slope = np.polyfit(np.log(big), np.log([engine_times[n] for n in big]), 1)[0]
        print(f"\nengine: fitted exponent of n in time per instruction over {big[0]:,}..{big[-1]:,}: {slope:.2f}")
    print(f"(instructions/s, median of {repeats}; in brackets the ratio to the reference interpreter; "
          f"sparse and dense only up to n = {dense_max:,}: their cost grows as n^2)")


def batch_table(n=256, batch=64, steps=300):
    card = fleqc.build(PROGRAM, columns=n)
    model = weights_for(card.config)
    X = np.stack([card.X] * batch)
    print(f"\nbatch of {batch} cards at n = {n} ({steps} passes each):")
    for engine in ("incremental", "sparse", "dense"):
        run_batch(model, X[:1], max_steps=2, engine=engine)
        start = time.perf_counter()
        run_batch(model, X[:1], max_steps=steps, engine=engine)
        one = steps / (time.perf_counter() - start)
        start = time.perf_counter()
        run_batch(model, X, max_steps=steps, engine=engine)
        many = batch * steps / (time.perf_counter() - start)
        print(f"  {engine:>11}: one card {one:>9,.0f} instr/s, batch {many:>9,.0f} instr/s per batch "
              f"({many / one:.1f}x the single-card rate)")


def startup(repeats=5):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "fleqc", "run", str(ROOT / "samples" / "factorial.fleq")],
                       check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    print(f"\nstart-up: `fleqc run samples/factorial.fleq` whole process, median of {repeats}: "
          f"{statistics.median(times):.2f} s")


FLEQ_LOOP = """
.machine fleq
.data
one:    .word 1.0
R:      .matrix 2 2  0.6, -0.8, 0.8, 0.6
v:      .vector 2    1.0, 0.5
x:      .word 0.75
s:      .word 0
.text
loop:   matmul v, R, v
        sigmoid s, x
        mul x, s, one
        jmp loop
"""


def fleq_scaling(sizes, sparse_max, repeats, seconds):
    """The FLEQ machine (8x8 cells, 64 lanes) on a loop that never halts, by n."""
    ref_program = fleqc.compile(FLEQ_LOOP)
    ref = statistics.median(reference_rate(ref_program, 3000) for _ in range(3))
    heads = sum(getattr(layer, "heads", 0) for layer in weights_for(fleqc.build(FLEQ_LOOP, columns=sizes[0]).config).layers)
    print(f"\nFLEQ machine (cell 8, {heads} heads), a 4-instruction loop; reference interpreter {ref:,.0f} instr/s")
    print(f"{'n':>6} {'first pass s':>12}  {'engine':>16}  {'sparse':>16}")
    for n in sizes:
        card = fleqc.build(FLEQ_LOOP, columns=n)
        model = weights_for(card.config)
        start = time.perf_counter()
        loop = stepper(model, card.X, "softmax", "incremental")
        loop.step()
        first = time.perf_counter() - start
        samples = {"incremental": [], "sparse": []}
        for _ in range(repeats):
            for engine in samples:
                if engine == "sparse" and n > sparse_max:
                    continue
                samples[engine].append(rate(model, card.X, engine, "softmax", seconds, 200))
        cells = [f"{statistics.median(v):>9,.1f} ({statistics.median(v) / ref:>5.3f}x)" if v else f"{'-':>16}"
                 for v in samples.values()]
        print(f"{n:>6} {first:>12.2f}  " + "  ".join(cells))


def fleq_table(apps: bool):
    names = ["fleq_matrix_chain", "fleq_normalize", "fleq_polynomial"]
    if apps:
        names += ["apps/app_inverse4", "apps/app_inverse8", "apps/app_power_iteration", "apps/app_backprop"]
    print("\nFLEQ on the transformer (incremental engine; the sparse path beside it for the short ones):")
    for name in names:
        card = fleqc.build(str(ROOT / "samples" / f"{name}.fleq"))
        row = []
        for engine in (("incremental", "sparse") if not name.startswith("apps/") else ("incremental",)):
            start = time.perf_counter()
            result = run_transformer(card, engine=engine)
            row.append(f"{engine} {time.perf_counter() - start:6.2f} s")
        print(f"  {name:<28} {card.X.shape[1]:>5} columns {result.steps:>6} steps   " + "   ".join(row))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "fleqc", "calc", "(1 + 2) * 7 / 3"], check=True, capture_output=True)
    label = 'fleqc calc "(1 + 2) * 7 / 3"'
    print(f"  {label:<28} whole process {time.perf_counter() - start:6.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="64,256,1024,4096,16384,65536")
    parser.add_argument("--dense-max", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.5, help="time per measurement of the engine")
    parser.add_argument("--apps", action="store_true", help="also the FLEQ applications (minutes)")
    parser.add_argument("--skip-fleq", action="store_true")
    parser.add_argument("--fleq-sizes", default="128,256,1024,4096")
    args = parser.parse_args()
    print(f"BLAS threads: {blas_threads()} (fleqc's choice; FLEQC_BLAS_THREADS overrides)\n")
    with chosen_blas_threads():
        subleq_table([int(s) for s in args.sizes.split(",")], args.dense_max, args.repeats, args.seconds)
        batch_table()
        startup()
        if not args.skip_fleq:
            fleq_scaling([int(s) for s in args.fleq_sizes.split(",")], 512, args.repeats, args.seconds)
            fleq_table(args.apps)


if __name__ == "__main__":
    main()
