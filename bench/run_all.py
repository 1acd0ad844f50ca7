"""Run every benchmark and write docs/measurements.md (`make bench`).

Each benchmark is a script of this folder, run as its own process with the arguments listed in
BENCHMARKS below; its output goes into docs/measurements.md under its heading, with the exact
command that reproduces it, the seconds it took and the load average when it started. The page
opens with the machine (cores, CPU, memory, Python, numpy, numba, BLAS), the date and the commit,
and closes with the figures that only long runs give (bench/long_runs.md, copied as it is: no
`make bench` regenerates them).

    python bench/run_all.py                 # every benchmark -> docs/measurements.md
    python bench/run_all.py --only engine   # one or more benchmarks, printed (or --output FILE)
    python bench/run_all.py --list

A benchmark that fails (a missing optional package, the SUBLEQ corpus absent, an error) is
recorded as such in its section and the others still run; the exit status is then 1. No
benchmark asserts a time: they assert that results are right (against the reference interpreter
or the dense pass) and report times.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUTPUT = ROOT / "docs" / "measurements.md"
LONG_RUNS = BENCH / "long_runs.md"


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    args: tuple[str, ...]  # the script, then its arguments
    about: str  # what it measures and how to read it (markdown)

    def command(self) -> str:
        return "python " + " ".join(shlex.quote(a) for a in self.args)


BENCHMARKS = [
    Benchmark(
        "engine", "SUBLEQ: every engine by machine size",
        ("bench/engine_speed.py", "--sizes", "64,1024,16384,65536", "--dense-max", "1024", "--skip-fleq"),
        "Instructions per second of every engine on one looping SUBLEQ program (3 instructions per "
        "iteration, never halts) padded to n columns (N = 16): the incremental engine, the sparse path "
        "and the dense pass in softmax and hardmax attention, and in brackets the ratio to the plain-Python "
        "reference interpreter measured in the same run. Medians of 3 runs with the engines alternated; "
        "after every timed run the memory the transformer holds is compared with the reference "
        "interpreter's after as many steps. The dense and sparse passes stop at n = 1,024 (their cost "
        "grows as n^2; `--dense-max 4096` measures them further). Then the engine's peak memory, its "
        "first pass (which loads the compiled code), the fitted exponent of n in its time per "
        "instruction; the run path (`Run.finish`, health check after every pass) at n = 1,024 and 65,536 "
        "in instructions per CPU second, many passes per compiled call against one pass per call, beside "
        "the 60,000/s target; a batch of cards against one; and the start-up of `fleqc run` beside its "
        "0.25 s target.",
    ),
    Benchmark(
        "fleq-engine", "FLEQ: the engine and the sparse path by machine size",
        ("bench/engine_speed.py", "--only-fleq", "--fleq-sizes", "128,256,1024"),
        "Instructions per second of the FLEQ machine (8 x 8 cells, 22 layers) on a 4-instruction loop "
        "that never halts (a matrix product, sigmoid, a product, a jump): the incremental engine and the "
        "sparse path, alternated, medians of 3, with the ratio to the reference interpreter; each timed "
        "run checked bit for bit against the reference interpreter after as many steps.",
    ),
    Benchmark(
        "sparse", "The sparse path against the dense pass",
        ("bench/fast_speed.py", "--fleq", "128,256"),
        "Milliseconds per pass of the dense pass and of the sparse path on the same card, alternated, "
        "medians of 3, and their ratio; the two final X are compared bit for bit. The FLEQ machine's "
        "matrices are almost all zeros; SUBLEQ's layers are small and dense.",
    ),
    Benchmark(
        "dense", "The dense pass by machine size, both attention modes",
        ("bench/subleq_speed.py", "--sizes", "32,256,1024", "--batches", "1,8,64"),
        "Milliseconds per SUBLEQ instruction of the dense pass (the definition) in softmax and hardmax "
        "attention, alternated, medians of 3, against the reference interpreter in the same run (every "
        "timed run's memory checked against it); then per card in batches on one n = 64 machine.",
    ),
    Benchmark(
        "fleq-dense", "FLEQ: the dense pass layer by layer",
        ("bench/fleq_speed.py", "--sizes", "128", "--steps", "5"),
        "Milliseconds per FLEQ step of the dense pass and the sparse path (alternated, medians of 3), "
        "the reference interpreter beside them (every run's memory checked against it), and the time of "
        "each of the 22 layers of the dense pass.",
    ),
    Benchmark(
        "blas", "BLAS threads",
        ("bench/blas_threads.py",),
        "The dense SUBLEQ pass at n = 512 with one BLAS thread and with two, alternated, medians of 3 "
        "(fleqc runs with one; `FLEQC_BLAS_THREADS` overrides); the two final X compared bit for bit.",
    ),
    Benchmark(
        "programs", "FLEQ programs and applications on the transformer",
        ("bench/fleq_programs.py",),
        "Each FLEQ sample and application on the transformer (the default engine) and on the reference "
        "interpreter, with their steps and times; the transformer's memory must equal the reference's "
        "bit for bit. For the applications, their accuracy against numpy's own linear algebra. Then "
        "`fleqc calc` as a whole process (median of 3). The backpropagation application (7,811 steps) "
        "runs on the reference only here: `python bench/fleq_programs.py --backprop` runs it on the "
        "transformer too (several minutes).",
    ),
    Benchmark(
        "fleq-targets", "FLEQ: the speed figures beside their targets",
        ("bench/fleq_targets.py",),
        "The FLEQ machine's rows of the speed targets: instructions a second of the scalar loop (mul, "
        "sub-and-branch, jmp) at n = 256 and of the 8 x 8 matmul loop at n = 128 (`Run.finish`, the "
        "difference of a 20-step and a longer run, medians of 3 alternated; every run's memory and pc "
        "equal to the reference interpreter's); then whole processes with numba's cache warm: `fleqc "
        "calc \"(1 + 2) * 7 / 3\"` (median of 3, its answer 7.0, its peak memory) and `fleqc run` of the "
        "8 x 8 inverse, power iteration and backpropagation (100 epochs) applications, each one's --json "
        "output equal to the reference interpreter's. Each row names its target.",
    ),
    Benchmark(
        "first-run", "The first runs after an install",
        ("bench/first_run.py",),
        "What a user waits for after `make install` on a fresh clone, from empty caches (numba's and "
        "fleqc's, in a temporary folder: the user's own are not touched): the install's compile step "
        "(`python -m fleqc.transformer.warm`), then the first `fleqc run` of a SUBLEQ sample, the first "
        "of a FLEQ sample (its weights built) and that FLEQ run again; whole processes, one run each. "
        "For each: the wall time, the seconds before the first word on stderr and the longest silence "
        "between its lines, and what it said, beside the target (no silent wait over 2 s, the compile "
        "time stated); each run's `--json` output equal to the reference interpreter's.",
    ),
    Benchmark(
        "classic", "The classic machine on programs written by others",
        ("bench/classic_speed.py", "--programs", "01,08,11,15,16", "--eforth", ""),
        "Steps per second of the classic machine on the transformer (the run path: incremental engine, "
        "many passes per compiled call, output streamed) on programs of the SUBLEQ corpus, beside the "
        "reference interpreter in the same run; each program's output, step count and memory checked "
        "against the reference's and the corpus's expected bytes. Then a checked prefix of eForth "
        "`2 2 + . cr` and its full time extrapolated; the targets (40,000 steps/s on programs 08 and 16, "
        "6 minutes for eForth) printed beside the figures. Single runs (they are long): compare the "
        "ratios. Needs the corpus at ../shared/corpus (or `FLEQC_SUBLEQ_CORPUS`).",
    ),
    Benchmark(
        "fleq-accuracy", "FLEQ functions on the transformer, in ulps",
        ("bench/fleq_accuracy.py",),
        "Each FLEQ function on the transformer over 1,024 operands drawn across its whole window, in "
        "ulps of the correctly rounded float64 value (exact rationals; numpy's result for exp and log, "
        "numpy's formula for sigmoid), and the bound the tests assert. add, sub, mov, transpose, relu, "
        "mul, mulerr and matmul are bit-exact (matmul's 1 ulp is its pairwise sum's rounding against the "
        "exactly rounded sum); recip, sqrt, log, exp and sigmoid are exact tables whose ulps measure the "
        "table against the true function. `--runs 98 --seed 1300` measures 100,352 operands per function "
        "(the slow tests' operands; about 5 minutes a function).",
    ),
    Benchmark(
        "routine-accuracy", "The stdlib's routines, in ulps",
        ("bench/routine_accuracy.py",),
        "The stdlib's div, mulw, sqrt, exp, log and sigmoid on the reference interpreter (the transformer "
        "computes the same bits) over 1,000 operands each, drawn across each routine's whole range "
        "(extreme and subnormal operands, quotients at and next to rounding ties, perfect squares, "
        "arguments near 1): worst and median ulps against the exact value (Python's decimal at 60 "
        "digits, or exact fractions), how many results are not correctly rounded, and the median steps "
        "per call. `--count 100000` is the slow tests' count (about 25 minutes).",
    ),
    Benchmark(
        "deviation", "Exactness inside a pass",
        ("bench/deviation.py", "--steps", "300"),
        "The largest deviation from {-1, 0, +1} of any entry of X after each layer of the SUBLEQ machine "
        "(softmax), over 300 steps: every off-target softmax weight is exactly 0.0, so nothing leaks.",
    ),
    Benchmark(
        "interop", "Other engines: numpy, PyTorch, ONNX Runtime",
        ("bench/interop_speed.py", "--columns", "64", "1024", "--batch", "1", "8"),
        "Milliseconds per pass of one SUBLEQ machine in each engine (one thread each), medians of 5 "
        "alternated passes, with each engine's X compared with numpy's dense pass. Rows for torch and "
        "ONNX Runtime appear only where the extras are installed (`make install-extras`); CUDA rows "
        "where torch sees a GPU.",
    ),
]


def machine_description() -> list[str]:
    """The machine and software the figures were measured on, as markdown lines."""
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        memory = next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal"))
        memory = f"{int(memory) / 2**20:.0f} GiB"
    except (OSError, StopIteration):
        memory = "unknown"
    versions = []
    for package in ("numpy", "numba", "llvmlite", "threadpoolctl", "torch", "onnxruntime"):
        try:
            versions.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    blas = "unknown"
    try:
        from threadpoolctl import threadpool_info

        import numpy  # noqa: F401  (loads the BLAS threadpoolctl reports)

        found = [f"{i.get('internal_api')} {i.get('version')}" for i in threadpool_info()
                 if i.get("user_api") == "blas"]
        blas = ", ".join(found) or blas
    except Exception:  # noqa: BLE001  (a description, never a reason to stop)
        pass
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = " with local changes" if _git("status", "--porcelain", "--untracked-files=no") else ""
    return [
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- Commit: {commit}{dirty}",
        f"- CPU: {cpu}; {cores} cores ({usable} usable by this process); memory {memory}",
        f"- System: {platform.system()} {platform.release()}; Python {platform.python_version()}",
        f"- Packages: {', '.join(versions)}; BLAS: {blas} (fleqc runs it on one thread)",
    ]


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def load() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def run(bench: Benchmark, timeout: float) -> tuple[str, float, int, str]:
    """Run one benchmark; its output, seconds, exit status and the load average at its start."""
    started_load = load()
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, *bench.args], cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout)
        output, status = done.stdout, done.returncode
        if status != 0:
            output += "\n" + done.stderr[-4000:]
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        output, status = out + f"\n(stopped after {timeout:.0f} s)", 124
    return output.rstrip(), time.perf_counter() - start, status, started_load


def section(bench: Benchmark, output: str, seconds: float, status: int, started_load: str) -> list[str]:
    lines = [f"## {bench.title}", "", f"`{bench.command()}`", "",
             f"{bench.about}", "",
             f"Ran in {seconds:.0f} s; load average at its start {started_load}."
             + ("" if status == 0 else f" **It failed (exit status {status}): the figures below are incomplete.**"),
             "", "```text", output, "```", ""]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="names of the benchmarks to run (see --list)")
    parser.add_argument("--output", help="where to write (default: docs/measurements.md; with --only, stdout)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per benchmark before it is stopped")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args()
    if args.list:
        for bench in BENCHMARKS:
            print(f"{bench.name:<18} {bench.command()}")
        return
    chosen = [b for b in BENCHMARKS if not args.only or b.name in args.only]
    unknown = set(args.only or ()) - {b.name for b in BENCHMARKS}
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {sorted(unknown)}; --list shows them")
    target = args.output or (None if args.only else str(OUTPUT))
    head = machine_description()
    body, failed, total = [], [], time.perf_counter()
    for bench in chosen:
        print(f"[bench] {bench.name}: {bench.command()}", file=sys.stderr, flush=True)
        output, seconds, status, started_load = run(bench, args.timeout)
        print(f"[bench] {bench.name}: {seconds:.0f} s, exit status {status}", file=sys.stderr, flush=True)
        if status != 0:
            failed.append(bench.name)
        body += section(bench, output, seconds, status, started_load)
    total = time.perf_counter() - total
    page = [
        "# Measurements",
        "",
        "Written by `make bench` (`python bench/run_all.py`); do not edit it by hand: run `make bench` "
        "again. Each section gives the command that reproduces its figures (run from the repository "
        "root, in the virtual environment `make install` creates).",
        "",
        *head,
        f"- `make bench` took {total / 60:.1f} minutes in all.",
        "",
        "The figures come from a small machine shared with other jobs, so absolute times vary from run "
        "to run (the load average at the start of each section says how busy it was): compare the "
        "ratios measured side by side in one run, not absolute figures across runs or machines. Timings "
        "are medians of alternated runs where a section says so; no benchmark asserts a time; where a "
        "section says so, every result was checked against the reference interpreter (or the dense "
        "pass) in the same run.",
        "",
        "Contents: " + ", ".join(f"[{b.title}](#{_anchor(b.title)})" for b in chosen)
        + ("" if args.only else ", [figures that `make bench` does not regenerate]"
                                "(#figures-that-make-bench-does-not-regenerate)") + ".",
        "",
        *body,
    ]
    if not args.only and LONG_RUNS.is_file():
        page.append(LONG_RUNS.read_text(encoding="utf-8").rstrip() + "\n")
    text = "\n".join(page)
    if target is None:
        print(text)
    else:
        Path(target).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        print(f"[bench] wrote {target} ({total / 60:.1f} minutes)", file=sys.stderr)
    if failed:
        print(f"[bench] failed: {', '.join(failed)}", file=sys.stderr)
        raise SystemExit(1)


def _anchor(title: str) -> str:
    """GitHub's anchor of a heading: lowercase, punctuation dropped, spaces as hyphens."""
    kept = "".join(c for c in title.lower() if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


if __name__ == "__main__":
    main()
