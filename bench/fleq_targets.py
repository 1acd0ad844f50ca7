"""The FLEQ machine's speed figures beside their targets, each run checked against the reference
interpreter in the same run.

Rows:

- the scalar loop (mul, sub-and-branch, jmp) at n = 256 and the 8 x 8 matmul loop at n = 128:
  instructions a second of ``Run(card).finish(K)`` on the transformer (the default engine: the
  loop runs inside it), from the difference of a run of 20 steps and one of 20 + K (so the set-up
  cancels out; the weights are built once, outside the timing), medians of ``--repeats`` with the
  two loops alternated; after every timed run the memory and pc must equal the reference
  interpreter's after as many steps;
- whole processes (``python -m fleqc ...``, after one untimed run so that numba's cache is warm):
  ``fleqc calc "(1 + 2) * 7 / 3"`` (its answer must be 7.0) and ``fleqc run`` of the 8 x 8 inverse,
  power iteration and backpropagation (100 epochs) applications, wall seconds and peak resident
  memory; each application's ``--json`` output (halted, steps, every label) must equal the
  reference interpreter's (``--backend reference``, run beside it).

A wrong result stops the script (exit status 1): a fast wrong answer measures nothing. No time is
asserted. The targets are wall times on a quiet machine; on a shared one read each median with its
spread (min..max) and the CPU time printed beside it (of the process, or per instruction).

    python bench/fleq_targets.py [--repeats 3] [--scalar-steps 3000] [--matmul-steps 300]
                                 [--apps inverse8,power_iteration,backprop]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from common import ROOT  # bench/ is on the path when run as a script (and puts this checkout first)

import numpy as np  # noqa: E402

import fleqc  # noqa: E402
from fleqc.machines import weights_for  # noqa: E402
from fleqc.runner import Run  # noqa: E402

SCALAR = """
.machine fleq
.data
x:    .word 1.0000001
y:    .word 0.0
i:    .word 1000000000.0
one:  .word 1.0
.text
loop: mul y, x, x
      fleq i, sub, i, one, i, done
      jmp loop
done: halt
"""


def _matrix(name: str, values) -> str:
    return f"{name}: .matrix 8 8 " + ", ".join(repr(float(v)) for v in values)


MATMUL = "\n".join([
    ".machine fleq", ".data",
    _matrix("A", [((i * 7) % 11 - 5) / 8 for i in range(64)]),
    _matrix("B", [((i * 5) % 13 - 6) / 16 for i in range(64)]),
    _matrix("C", [0.0] * 64),
    ".text",
    "loop: matmul C, A, B",
    "      matmul C, C, B",
    "      jmp loop",
])

CALC = ("(1 + 2) * 7 / 3", "7.0")
APPS = {"inverse8": "apps/app_inverse8", "power_iteration": "apps/app_power_iteration",
        "backprop": "apps/app_backprop"}
TARGETS = {"scalar": ("instr/s", ">=", 2000.0), "matmul": ("instr/s", ">=", 150.0), "calc": ("s", "<=", 1.0),
           "calc_mb": ("MB", "<=", 300.0), "inverse8": ("s", "<=", 2.0), "power_iteration": ("s", "<=", 3.0),
           "backprop": ("s", "<=", 30.0)}


def target(key: str) -> str:
    unit, relation, value = TARGETS[key]
    return f"target {relation} {value:,.0f} {unit}"


def same_state(run: Run, reference: Run) -> bool:
    return run.pc == reference.pc and all(
        np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(run.memory(), reference.memory()))


def loop_runs(source: str, columns: int, steps: int, warm: int = 20):
    """A measurement of one loop: instructions a second between ``warm`` and ``warm + steps`` steps,
    from two whole runs (``Run(card).finish(K)``, the loop inside the engine; the set-up and the
    first passes cancel out), each run's state checked against the reference interpreter's after as
    many steps (exit 1 if it differs)."""
    card = fleqc.build(fleqc.compile(source), columns=columns)
    model = weights_for(card.config)
    references = {}
    for total in (warm, warm + steps):
        references[total] = Run(card, backend="reference")
        references[total].finish(total)

    def timed(total: int) -> tuple[float, float]:
        run = Run(card, weights=model)
        start, cpu = time.perf_counter(), time.process_time()
        run.finish(total)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        if run.steps != total or not same_state(run, references[total]):
            sys.exit(f"the loop at n = {columns} differs from the reference interpreter after {run.steps} steps")
        return elapsed, cpu

    def measure() -> tuple[float, float]:
        (short, short_cpu), (long, long_cpu) = timed(warm), timed(warm + steps)
        return steps / (long - short), steps / (long_cpu - short_cpu)

    return measure


# The child reports its own peak as its exit handlers run (fleqc's command leaves by os._exit after
# them): VmHWM, the high-water mark of the memory it mapped since exec. Not ru_maxrss: Linux carries
# the parent's resident size at fork into the child's maxrss, which is this benchmark's own peak.
CHILD = """import atexit, resource, runpy, sys
def report():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    sys.stderr.write("\\nPEAK_KB %s %f\\n" % (peak, usage.ru_utime + usage.ru_stime))
    sys.stderr.flush()
atexit.register(report)
sys.argv = ["fleqc"] + sys.argv[1:]
runpy.run_module("fleqc", run_name="__main__")
"""


def timed_process(args: list[str]) -> tuple[float, float, str, float]:
    """(wall seconds, peak resident MB (10^6 bytes; VmHWM is in KiB), stdout, CPU seconds) of
    ``python -m fleqc ARGS`` (the child reports its own peak memory and CPU time as it exits)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - start
    peaks = [line.split()[1:] for line in done.stderr.splitlines() if line.startswith("PEAK_KB ")]
    if done.returncode != 0 or not peaks:
        sys.exit(f"fleqc {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return seconds, int(peaks[-1][0]) * 1024 / 1e6, done.stdout, float(peaks[-1][1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scalar-steps", type=int, default=3000)
    parser.add_argument("--matmul-steps", type=int, default=300)
    parser.add_argument("--apps", default="inverse8,power_iteration,backprop",
                        help="the applications to run as whole processes (comma-separated; '' for none)")
    args = parser.parse_args()

    loops = {"scalar": loop_runs(SCALAR, 256, args.scalar_steps), "matmul": loop_runs(MATMUL, 128, args.matmul_steps)}
    rates: dict[str, list[float]] = {key: [] for key in loops}
    cpu_rates: dict[str, list[float]] = {key: [] for key in loops}
    for _ in range(args.repeats):
        for key, measure in loops.items():
            wall, cpu = measure()
            rates[key].append(wall)
            cpu_rates[key].append(cpu)
    labels = {"scalar": "FLEQ scalar loop (mul, sub-and-branch, jmp), n = 256",
              "matmul": "FLEQ 8x8 matmul loop, n = 128"}
    for key, values in rates.items():
        print(f"{labels[key]:<56} {statistics.median(values):>9,.0f} instr/s  (min {min(values):,.0f}, "
              f"max {max(values):,.0f}; of CPU time {statistics.median(cpu_rates[key]):,.0f}; {target(key)})  "
              "state == reference", flush=True)

    timed_process(["calc", CALC[0]])  # numba's cache warm, as a second run finds it
    runs = [timed_process(["calc", CALC[0]]) for _ in range(args.repeats)]
    if any(out.strip() != CALC[1] for _, _, out, _ in runs):
        sys.exit(f"fleqc calc {CALC[0]!r} printed {runs[0][2]!r}, not {CALC[1]}")
    seconds = [s for s, _, _, _ in runs]
    cpu = statistics.median(c for _, _, _, c in runs)
    label = f'fleqc calc "{CALC[0]}", whole process'
    print(f"{label:<56} {statistics.median(seconds):>9.2f} s        "
          f"(min {min(seconds):.2f}, max {max(seconds):.2f}; CPU {cpu:.2f} s; {target('calc')})  answer {CALC[1]}")
    print(f"{'  its peak resident memory':<56} {max(p for _, p, _, _ in runs):>9.0f} MB       ({target('calc_mb')})",
          flush=True)

    for key in [a for a in args.apps.split(",") if a]:
        path = str(ROOT / "samples" / f"{APPS[key]}.fleq")
        seconds, peak, out, cpu = timed_process(["run", path, "--json", "--all-labels"])
        _, _, expected, _ = timed_process(["run", path, "--json", "--all-labels", "--backend", "reference"])
        got, want = json.loads(out), json.loads(expected)
        if got != want:
            sys.exit(f"{APPS[key]}: the transformer's run differs from the reference interpreter's")
        print(f"{'fleqc run ' + APPS[key] + '.fleq, whole process':<56} {seconds:>9.2f} s        "
              f"({want['steps']:,} steps, CPU {cpu:.2f} s, peak {peak:.0f} MB; {target(key)})  == reference", flush=True)
    print(f"(loops: medians of {args.repeats}, alternated, {args.scalar_steps} and {args.matmul_steps} steps a run; "
          "processes: wall time of `python -m fleqc ...` with one BLAS thread, numba's cache warm)")


if __name__ == "__main__":
    main()
