"""The classic machine on the transformer: steps per second on the corpus's programs, beside the
plain-Python reference interpreter in the same run.

For each program of ../shared/corpus/subleq (or $FLEQC_SUBLEQ_CORPUS): words, memory, steps, the
seconds of the transformer run (fleqc's run path, fleqc.runner.Run.finish: the incremental engine
running many passes per compiled call, the output streamed by the host) and of the reference, and
their ratio; the transformer's output and step count are checked against the reference's and the
corpus's expected bytes. Steps per second are counted after the first pass (which loads the
engine), in CPU seconds (a shared machine's load stretches the wall clock), from the run's own
progress counts. eForth `2 2 + . cr` (13.9 million steps) runs a
prefix of --eforth-prefix steps, checked against the reference interpreter after as many steps
(output so far and all of memory), and its full time is extrapolated. With --eforth, eForth's tests
(t1 is 92,438 steps; t2-t8 are 9-20 million each).

Usage: python bench/classic_speed.py [--programs 01,08,...] [--eforth t1,t2] [--eforth-prefix 300000]
Timings are single runs on a shared machine: compare the ratios, not the absolute figures.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import fleqc
from fleqc.machines.classic import reference as reference
from fleqc.machines.classic.source import load_image
from fleqc.runner import Run
from fleqc.threads import chosen_blas_threads

CORPUS = Path(os.environ.get("FLEQC_SUBLEQ_CORPUS", Path(__file__).resolve().parents[2] / "shared" / "corpus" / "subleq"))
DEFAULT = "01,08,11,16,15,12,14"
EFORTH_STEPS = 13_900_000  # `2 2 + . cr` prints " 4" and " ok" after about this many steps
TARGET_STEPS_PER_S = 40_000  # programs 08 and 16
TARGET_EFORTH_MINUTES = 6.0


def transformer_run(path: Path, bits: int, memory: int, given_input: bytes, engine: str, max_steps: int):
    """(steps, output, seconds, steps per CPU second after the first pass, final memory) of Run.finish."""
    output = bytearray()
    program = fleqc.compile(path, machine="classic", bits=bits, input=given_input)
    run = Run(program, engine=engine, bits=bits, memory=memory, input=given_input, output=output)
    marks = []
    start = time.perf_counter()
    result = run.finish(max_steps, on_count=lambda steps: marks.append((time.process_time(), steps)))
    seconds = time.perf_counter() - start
    (t0, s0), (t1, s1) = marks[0], marks[-1]
    rate = (s1 - s0) / (t1 - t0) if s1 > s0 and t1 > t0 else result.steps / seconds
    return result.steps, bytes(output), seconds, rate, run.memory()


def measure(name: str, path: Path, words, memory: int, bits: int, given_input: bytes, expected: bytes | None,
            engine: str, max_steps: int = 10**9) -> dict:
    steps, output, seconds, rate, machine_memory = transformer_run(path, bits, memory, given_input, engine, max_steps)
    start = time.perf_counter()
    state = reference.run(reference.initial_state(list(words), memory, bits, given_input), max_steps)
    ref_seconds = time.perf_counter() - start
    assert state.steps == steps and bytes(state.output) == output, name
    assert expected is None or output == expected, name
    assert machine_memory == list(state.mem), name
    return {"program": name, "words": len(words), "memory": memory, "bits": bits, "steps": steps,
            "transformer_s": round(seconds, 2), "steps_per_s": round(rate), "reference_s": round(ref_seconds, 3),
            "slower_than_reference": round(seconds / ref_seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--programs", default=DEFAULT, help="corpus numbers (default %(default)s)")
    parser.add_argument("--eforth", default="", help="eForth tests to run to their end ('' for none)")
    parser.add_argument("--eforth-prefix", type=int, default=300_000,
                        help="steps of eForth `2 2 + . cr` to run and extrapolate (0: none)")
    parser.add_argument("--engine", default="incremental")
    args = parser.parse_args()
    if not (CORPUS / "expected.json").is_file():
        raise SystemExit(f"the SUBLEQ corpus is absent ({CORPUS}); set FLEQC_SUBLEQ_CORPUS")
    table = json.loads((CORPUS / "expected.json").read_text())
    rows = []
    with chosen_blas_threads():
        for number in filter(None, args.programs.split(",")):
            name, entry = next((k, v) for k, v in table.items() if k.startswith(number) and "steps" in v)
            path = CORPUS / entry["file"]
            words = load_image(path, bits=32).words
            memory = reference.memory_size(max(len(words), entry["highest_address_touched"] + 1, 8))
            expected = bytes(entry["expected_output_bytes"]) if entry.get("expected_output_bytes") is not None \
                else entry["expected_output"].encode()
            rows.append(measure(name, path, words, memory, 32, entry["input"].encode(), expected, args.engine))
            print(json.dumps(rows[-1]), flush=True)
        forth = table["13_howerj_eforth"]
        forth_path = CORPUS / forth["file"]
        words = load_image(forth_path, bits=16).words
        prefix = None
        if args.eforth_prefix:
            prefix = measure(f"eforth 2 2 + . cr ({args.eforth_prefix:,} steps)", forth_path, words, 1 << 16, 16,
                             b"2 2 + . cr\n", None, args.engine, args.eforth_prefix)
            rows.append(prefix)
            print(json.dumps(rows[-1]), flush=True)
        for test in filter(None, args.eforth.split(",")):
            folder = CORPUS / "13_howerj_eforth_tests"
            given_input = (folder / f"{test}.in").read_bytes()
            expected = (folder / f"{test}.expected_out").read_bytes()
            rows.append(measure(f"eforth {test}", forth_path, words, 1 << 16, 16, given_input, expected, args.engine))
            print(json.dumps(rows[-1]), flush=True)
    print(f"\n{'program':34} {'words':>6} {'memory':>7} {'steps':>9} {'transformer s':>13} {'steps/s':>8} "
          f"{'reference s':>11} {'ratio':>6}")
    for r in rows:
        print(f"{r['program']:34} {r['words']:>6} {r['memory']:>7} {r['steps']:>9} {r['transformer_s']:>13} "
              f"{r['steps_per_s']:>8} {r['reference_s']:>11} {r['slower_than_reference']:>6}")
    print("(steps per CPU second after the first pass, from the run's progress counts; every run's output, steps "
          "and memory checked against the reference interpreter's)")
    print("\ntargets:")
    for r in rows:
        if r["program"][:2] in ("08", "16"):
            print(f"  classic steps/s, {r['program']}: {r['steps_per_s']:,} (target >= {TARGET_STEPS_PER_S:,})")
    if prefix is not None:
        minutes = EFORTH_STEPS / prefix["steps_per_s"] / 60
        print(f"  eForth `2 2 + . cr`, {EFORTH_STEPS:,} steps at {prefix['steps_per_s']:,} steps/s (a checked prefix of "
              f"{prefix['steps']:,}): about {minutes:.1f} min (target <= {TARGET_EFORTH_MINUTES:.0f} min; "
              "`make eforth` runs it whole)")


if __name__ == "__main__":
    main()
