"""Instructions per second of every engine, by machine size, side by side in one run.

SUBLEQ table: one looping program (3 instructions per iteration, never halts) padded to n = 64 ...
65,536 columns (N = 16). For each n: the incremental engine, the sparse path and the dense pass in
softmax and hardmax mode (the last three only up to --dense-max, their cost grows as n^2), and the
plain-Python reference interpreter on the same program in the same run; instructions per second
(median of --repeats runs, the engines alternated), the ratio to the reference, the engine's peak
memory (card, machine, caches; tracemalloc) and the time to build the machine; then the fitted
exponent of n of the engine's time per instruction over 1,024 ... 65,536. After every timed run
the memory the transformer holds is checked against the reference interpreter's after as many
steps.

Then: the run path (fleqc.runner.Run.finish, the health check after every pass) at n = 1,024 and
65,536, many passes per compiled call against one pass per call, beside the 60,000/s target; one
card against a batch of cards at n = 256; the start-up of ``fleqc run`` on a small program beside
its 0.25 s target; the FLEQ machine by n (engine and sparse path, checked the same way).

Usage: python bench/engine_speed.py [--sizes 64,256,...] [--dense-max 4096] [--repeats 3]
                                    [--skip-fleq | --only-fleq | --only-run-path] [--fleq-sizes 128,256]
                                    [--run-sizes 1024,65536]
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
from common import alternated, check_against_reference  # bench/ is on the path when run as a script
from fleqc.machines import weights_for
from fleqc.threads import blas_threads, chosen_blas_threads
from fleqc.transformer.executor import run_batch, stepper

ROOT = Path(__file__).resolve().parent.parent
from subleq_speed import PROGRAM  # noqa: E402 (bench/ is on the path when run as a script)


CHECKS = [0]  # timed runs checked against the reference interpreter


def rate(card, program, model, engine: str, mode: str, seconds: float, max_passes: int) -> float:
    """Passes per second after the first pass (the engine's set-up is timed apart); then the memory
    in X is checked against the reference interpreter's after as many steps."""
    loop = stepper(model, card.X, mode, engine)
    loop.step()
    done, start = 0, time.perf_counter()
    while done < max_passes and (time.perf_counter() - start < seconds or done < 3):
        loop.step()
        done += 1
    elapsed = time.perf_counter() - start
    check_against_reference(card, program, loop.X, done + 1, f"{engine} ({mode}) at n = {card.X.shape[-1]}")
    CHECKS[0] += 1
    return done / elapsed


def reference_rate(program, steps: int = 20_000) -> float:
    start = time.perf_counter()
    outcome = fleqc.run(program, backend="reference", max_steps=steps)
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
        runs = {name: (lambda engine=engine, mode=mode: rate(
                    card, program, model, engine, mode, seconds if engine == "incremental" else seconds / 2,
                    100_000 if engine == "incremental" else 200))
                for name, engine, mode in paths if engine == "incremental" or n <= dense_max}
        medians = alternated(runs, repeats)
        cells = [f"{medians[name]:>9,.0f} ({medians[name] / ref:>4.2f}x)" if name in medians else f"{'-':>16}"
                 for name, _, _ in paths]
        engine_times[n] = 1 / medians["engine"]
        print(f"{n:>6} {build:>8.2f} {first:>12.3f} {peak:>9.0f}  " + "  ".join(cells))
    big = [n for n in sizes if n >= 1024]
    if len(big) >= 2:
        slope = np.polyfit(np.log(big), np.log([engine_times[n] for n in big]), 1)[0]
        print(f"\nengine: fitted exponent of n in time per instruction over {big[0]:,}..{big[-1]:,}: {slope:.2f}")
    print(f"(instructions/s, median of {repeats}, the engines alternated; in brackets the ratio to the reference "
          f"interpreter; sparse and dense only up to n = {dense_max:,}: their cost grows as n^2)")
    print(f"every timed run checked: the transformer's memory equals the reference interpreter's after as many "
          f"steps ({CHECKS[0]} runs)")


TARGET_RUN_PATH = 60_000  # SUBLEQ instructions/s through the run path at n = 1,024 and 65,536


class _PerPass:
    """The machine's health check without its LoopCheck: the run loop then calls it after every pass
    from Python, one pass per engine call (the run path before the compiled loop)."""

    def __init__(self, check):
        self.check = check

    def __call__(self, X, step, columns):
        self.check(X, step, columns)


def run_path_rate(card, program, steps: int, per_pass: bool) -> float:
    """Instructions per CPU second of fleqc.runner.Run.finish (the run path: health check after
    every pass, the incremental engine) after its first pass, from the run's own progress counts;
    then the memory checked against the reference interpreter's after as many steps."""
    from fleqc.runner import Run

    run = Run(card, engine="incremental")
    if per_pass:
        run._health = _PerPass(run._health)
    marks = []
    run.finish(steps, on_count=lambda done: marks.append((time.process_time(), done)))
    (t0, s0), (t1, s1) = marks[0], marks[-1]
    check_against_reference(card, program, run.X, run.steps, f"the run path at n = {card.X.shape[-1]}")
    CHECKS[0] += 1
    return (s1 - s0) / (t1 - t0)


def run_path_table(sizes, repeats, steps=200_000):
    """SUBLEQ through the run path, many passes per compiled call against one pass per call."""
    program = fleqc.compile(PROGRAM)
    print(f"\nthe run path (fleqc.runner.Run.finish, incremental engine, health check after every pass), "
          f"{steps:,} instructions, instructions per CPU second after the first pass:")
    print(f"{'n':>6}  {'many passes per call':>20}  {'one pass per call':>17}  target")
    rows = {}
    for n in sizes:
        card = fleqc.build(PROGRAM, columns=n)
        run_path_rate(card, program, 100, False)  # load the kernels, build the machine
        medians = alternated({"many": lambda: run_path_rate(card, program, steps, False),
                              "one": lambda: run_path_rate(card, program, steps // 5, True)}, repeats)
        rows[n] = medians["many"]
        print(f"{n:>6}  {medians['many']:>20,.0f}  {medians['one']:>17,.0f}  >= {TARGET_RUN_PATH:,}")
    print(f"(medians of {repeats}, alternated; every run's memory checked against the reference interpreter)")
    return rows


def batch_table(n=256, batch=16, steps=40, repeats=3):
    program = fleqc.compile(PROGRAM)
    card = fleqc.build(program, columns=n)
    model = weights_for(card.config)
    X = np.stack([card.X] * batch)
    print(f"\nbatch of {batch} cards at n = {n} ({steps} passes each; medians of {repeats}, one card and the batch "
          "alternated):")
    for engine in ("incremental", "sparse", "dense"):
        run_batch(model, X[:1], max_steps=2, engine=engine)
        outcomes = {}

        def timed(cards, engine=engine):
            start = time.perf_counter()
            outcomes[len(cards)] = run_batch(model, cards, max_steps=steps, engine=engine)
            return time.perf_counter() - start

        medians = alternated({"one": lambda: timed(X[:1]), "batch": lambda: timed(X)}, repeats)
        for outcome in outcomes.values():
            for b in range(outcome.X.shape[0]):
                check_against_reference(card, program, outcome.X[b], steps, f"batch on {engine}")
        one, many = steps / medians["one"], batch * steps / medians["batch"]
        print(f"  {engine:>11}: one card {one:>9,.0f} instr/s, batch {many:>9,.0f} instr/s per batch "
              f"({many / one:.1f}x the single-card rate; every card checked against the reference)")


def startup(repeats=5):
    subprocess.run([sys.executable, "-m", "fleqc", "run", str(ROOT / "samples" / "factorial.fleq")],
                   check=True, capture_output=True)  # the parser's cache file, written once
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "fleqc", "run", str(ROOT / "samples" / "factorial.fleq")],
                       check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    print(f"\nstart-up: `fleqc run samples/factorial.fleq`, whole process, median of {repeats}: "
          f"{statistics.median(times):.2f} s (target <= 0.25 s)")


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
    program = fleqc.compile(FLEQ_LOOP)
    ref = statistics.median(reference_rate(program, 3000) for _ in range(3))
    model0 = weights_for(fleqc.build(FLEQ_LOOP, columns=sizes[0]).config)
    heads = sum(getattr(layer, "heads", 0) for layer in model0.layers)
    print(f"FLEQ machine (cell 8, {len(model0.layers)} layers, {heads} heads, d = {model0.width:,}), a 4-instruction "
          f"loop; reference interpreter {ref:,.0f} instr/s")
    print(f"{'n':>6} {'first pass s':>12}  {'engine':>16}  {'sparse':>16}")
    for n in sizes:
        card = fleqc.build(FLEQ_LOOP, columns=n)
        model = weights_for(card.config)
        start = time.perf_counter()
        loop = stepper(model, card.X, "softmax", "incremental")
        loop.step()
        first = time.perf_counter() - start
        runs = {engine: (lambda engine=engine: rate(card, program, model, engine, "softmax", seconds, 200))
                for engine in ("incremental", "sparse") if engine == "incremental" or n <= sparse_max}
        medians = alternated(runs, repeats)
        cells = [f"{medians[e]:>9,.1f} ({medians[e] / ref:>5.3f}x)" if e in medians else f"{'-':>16}"
                 for e in ("incremental", "sparse")]
        print(f"{n:>6} {first:>12.2f}  " + "  ".join(cells))
    print(f"(instructions/s, median of {repeats}, alternated; in brackets the ratio to the reference interpreter; "
          f"the sparse path up to n = {sparse_max}; every timed run checked bit for bit against the reference "
          f"interpreter: {CHECKS[0]} runs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="64,256,1024,4096,16384,65536")
    parser.add_argument("--dense-max", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.5, help="time per measurement of the engine")
    parser.add_argument("--skip-fleq", action="store_true", help="only the SUBLEQ tables")
    parser.add_argument("--only-fleq", action="store_true", help="only the FLEQ table")
    parser.add_argument("--fleq-sizes", default="128,256,1024")
    parser.add_argument("--run-sizes", default="1024,65536", help="sizes of the run-path table")
    parser.add_argument("--only-run-path", action="store_true", help="only the run-path table and the start-up")
    args = parser.parse_args()
    print(f"BLAS threads: {blas_threads()} (fleqc's choice; FLEQC_BLAS_THREADS overrides)\n")
    with chosen_blas_threads():
        if args.only_run_path:
            run_path_table([int(s) for s in args.run_sizes.split(",")], args.repeats)
            startup()
            return
        if not args.only_fleq:
            subleq_table([int(s) for s in args.sizes.split(",")], args.dense_max, args.repeats, args.seconds)
            run_path_table([int(s) for s in args.run_sizes.split(",")], args.repeats)
            batch_table(repeats=args.repeats)
            startup()
        if not args.skip_fleq:
            if not args.only_fleq:
                print()
            fleq_scaling([int(s) for s in args.fleq_sizes.split(",")], 512, args.repeats, args.seconds)


if __name__ == "__main__":
    main()
