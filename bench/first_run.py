"""The first runs after an install: how long a user waits, and how long without a word on screen.

numba compiles the incremental engine's kernels once and caches them (``NUMBA_CACHE_DIR``); the
FLEQ machine's weights are built once per configuration and cached (``FLEQC_CACHE_DIR``). This
script starts from empty caches (two fresh temporary folders, so the user's own caches are neither
used nor touched) and runs, as whole processes, what a user meets after ``make install`` on a fresh
clone:

1. ``python -m fleqc.transformer.warm``: the step of ``make install`` that compiles the kernels;
2. the first ``fleqc run`` of a SUBLEQ sample (the kernels now load from the cache);
3. the first ``fleqc run`` of a FLEQ sample (the FLEQ weights are built for the first time);
4. the same FLEQ run again (everything cached).

For each: the wall time, the silence before the first line on stderr (or before the exit, where
nothing was said), the longest silence between lines, and the lines said (the compile notice states
the compile time). Each run's ``--json`` output (halted, steps, every label) must equal the reference
interpreter's (``--backend reference``, run beside it). Target: no silent wait over 2 s, the
compile time stated.

    python bench/first_run.py [--subleq samples/factorial.fleq] [--fleq samples/fleq_matrix_chain.fleq]
"""

from __future__ import annotations

import argparse
import os
import json
import subprocess
import sys
import tempfile
import threading
import time

from common import ROOT  # bench/ is on the path when run as a script (and puts this checkout first)

SILENCE_TARGET_S = 2.0
JSON = ("--json", "--all-labels")


def timed_process(args: list[str], env: dict) -> dict:
    """Run ``args``; the wall time, each stderr line with the second it came, and stdout."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[tuple[float, str]] = []

    def read_stderr() -> None:
        for line in proc.stderr:
            lines.append((time.perf_counter() - start, line.rstrip("\n")))

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    out = proc.stdout.read()
    proc.wait()
    reader.join()
    wall = time.perf_counter() - start
    moments = [0.0] + [t for t, _ in lines] + [wall]
    return {"rc": proc.returncode, "wall": wall, "stdout": out, "lines": lines,
            "first_word": lines[0][0] if lines else wall,
            "longest_silence": max(b - a for a, b in zip(moments, moments[1:]))}


def check(result: dict, sample: str, env: dict) -> None:
    """The run's --json output equals the reference interpreter's; else the script stops."""
    if result["rc"] != 0:
        sys.exit(f"{sample}: exit status {result['rc']}\n" + "\n".join(t for _, t in result["lines"]))
    reference = subprocess.run([sys.executable, "-m", "fleqc", "run", sample, *JSON, "--backend", "reference"],
                               cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    if json.loads(result["stdout"]) != json.loads(reference.stdout):
        sys.exit(f"{sample}: the transformer's run differs from the reference interpreter's")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subleq", default="samples/factorial.fleq")
    parser.add_argument("--fleq", default="samples/fleq_matrix_chain.fleq")
    args = parser.parse_args()
    fleqc = [sys.executable, "-m", "fleqc"]
    with tempfile.TemporaryDirectory(prefix="fleqc-first-run-") as tmp:
        env = dict(os.environ, NUMBA_CACHE_DIR=os.path.join(tmp, "numba"), FLEQC_CACHE_DIR=os.path.join(tmp, "fleqc"))
        steps = [("make install's compile step (python -m fleqc.transformer.warm)",
                  [sys.executable, "-m", "fleqc.transformer.warm"], None),
                 (f"first fleqc run {args.subleq}", fleqc + ["run", args.subleq, *JSON], args.subleq),
                 (f"first fleqc run {args.fleq} (FLEQ weights built)", fleqc + ["run", args.fleq, *JSON], args.fleq),
                 (f"second fleqc run {args.fleq}", fleqc + ["run", args.fleq, *JSON], args.fleq)]
        print("from empty caches (numba's and fleqc's, in a temporary folder), whole processes, one run each:\n")
        print(f"{'':66} {'wall s':>7} {'silent s':>9} {'longest silence s':>18}")
        worst = 0.0
        for title, command, sample in steps:
            result = timed_process(command, env)
            if sample:
                check(result, sample, env)
            elif result["rc"] != 0:
                sys.exit(f"{title}: exit status {result['rc']}")
            worst = max(worst, result["first_word"])
            print(f"{title:66} {result['wall']:7.2f} {result['first_word']:9.2f} {result['longest_silence']:18.2f}")
            for t, text in result["lines"]:
                print(f"    {t:7.2f} s  {text}")
        print(f"\nsilent: seconds before the first line on stderr (or the exit); the longest silent wait: {worst:.2f} s "
              f"(target: no silent wait over {SILENCE_TARGET_S:g} s, the compile time stated); each run's output "
              "equal to the reference interpreter's")


if __name__ == "__main__":
    main()
