"""The classic machine on the transformer: steps per second on the corpus's programs, beside the
plain-Python reference interpreter in the same run.

For each program of ../shared/corpus/subleq (or $FLEQC_SUBLEQ_CORPUS): words, memory, steps, the
seconds of the transformer run (the incremental engine, output streamed by the host) and of the
reference, and their ratio; the transformer's output is checked against the expected bytes. With
--eforth, eForth's tests (t1 is 92,438 steps; t2-t8 are 9-20 million each: hours on two cores).

Usage: python bench/classic_speed.py [--programs 01,08,...] [--eforth t1,t2] [--engine incremental]
Timings are single runs on a shared machine: compare the ratios, not the absolute figures.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from fleqc.machines.classic.source import load_image
from fleqc.machines.classic import reference as reference
from fleqc.machines.classic.card import encode
from fleqc.machines.classic.config import config_for
from fleqc.machines.classic.run import run_card
from fleqc.machines.classic.weights import build_classic_machine
from fleqc.threads import chosen_blas_threads

CORPUS = Path(os.environ.get("FLEQC_SUBLEQ_CORPUS", Path(__file__).resolve().parents[2] / "shared" / "corpus" / "subleq"))
DEFAULT = "01,08,11,16,15,12,14"


def measure(name: str, words, memory: int, bits: int, given_input: bytes, expected: bytes, engine: str) -> dict:
    config = config_for(len(words), len(given_input), bits, memory=memory)
    start = time.perf_counter()
    model, X = build_classic_machine(config), encode(words, given_input, config)
    built = time.perf_counter() - start
    outcome = run_card(model, X, config, engine=engine)
    start = time.perf_counter()
    state = reference.run(reference.initial_state(words, config.memory, bits, given_input), 10**9)
    ref_seconds = time.perf_counter() - start
    assert state.steps == outcome.steps and bytes(state.output) == outcome.output == expected, name
    return {"program": name, "words": len(words), "memory": config.memory, "bits": bits, "steps": outcome.steps,
            "build_s": round(built, 2), "transformer_s": round(outcome.seconds, 2),
            "steps_per_s": round(outcome.steps / outcome.seconds), "reference_s": round(ref_seconds, 3),
            "slower_than_reference": round(outcome.seconds / ref_seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--programs", default=DEFAULT, help="corpus numbers (default %(default)s)")
    parser.add_argument("--eforth", default="t1", help="eForth tests to run ('' for none)")
    parser.add_argument("--engine", default="incremental")
    args = parser.parse_args()
    if not (CORPUS / "expected.json").is_file():
        raise SystemExit(f"the SUBLEQ corpus is absent ({CORPUS}); set FLEQC_SUBLEQ_CORPUS")
    table = json.loads((CORPUS / "expected.json").read_text())
    rows = []
    with chosen_blas_threads():
        for number in filter(None, args.programs.split(",")):
            name, entry = next((k, v) for k, v in table.items() if k.startswith(number) and "steps" in v)
            words = load_image(CORPUS / entry["file"], bits=32).words
            memory = reference.memory_size(max(len(words), entry["highest_address_touched"] + 1, 8))
            expected = bytes(entry["expected_output_bytes"]) if entry.get("expected_output_bytes") is not None \
                else entry["expected_output"].encode()
            rows.append(measure(name, words, memory, 32, entry["input"].encode(), expected, args.engine))
            print(json.dumps(rows[-1]), flush=True)
        forth = table["13_howerj_eforth"]
        words = load_image(CORPUS / forth["file"], bits=16).words
        for test in filter(None, args.eforth.split(",")):
            folder = CORPUS / "13_howerj_eforth_tests"
            given_input = (folder / f"{test}.in").read_bytes()
            expected = (folder / f"{test}.expected_out").read_bytes()
            rows.append(measure(f"eforth {test}", words, 1 << 16, 16, given_input, expected, args.engine))
            print(json.dumps(rows[-1]), flush=True)
    print(f"\n{'program':26} {'words':>6} {'memory':>7} {'steps':>9} {'transformer s':>13} {'steps/s':>8} "
          f"{'reference s':>11} {'ratio':>6}")
    for r in rows:
        print(f"{r['program']:26} {r['words']:>6} {r['memory']:>7} {r['steps']:>9} {r['transformer_s']:>13} "
              f"{r['steps_per_s']:>8} {r['reference_s']:>11} {r['slower_than_reference']:>6}")


if __name__ == "__main__":
    main()
