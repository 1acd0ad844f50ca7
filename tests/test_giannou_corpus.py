"""The paper's own SUBLEQ programs (the corpus's 10_giannou: github jysohn1108/Looped-Transformer)
run on the paper's machine: factorial(7), list reversal and linear search to their expected final
memory, and the random 8-bit program to its published per-step trace (issue 12).

The programs come as the released code's commands (a, b: memory cells; c: a command, 1-based in
the notebooks' notation) and initial memory; here they are written out as FLEQ-language text, so
they go through the same front end, card and machine as every other program.
"""

from __future__ import annotations

import json

import pytest

from fleqc import api
from tests.support import subleq_corpus
from tests.support.subleq_corpus import corpus

FINAL = ["factorial_7", "reverse_list", "linear_search"]


def programs() -> dict:
    return json.loads((corpus() / "10_giannou" / "giannou_programs.json").read_text())


def as_text(entry: dict) -> str:
    """The program in the FLEQ language: memory cells m0.., commands c0.. (0-based)."""
    lines = [".machine subleq", f".bits {entry['N_bits']}", ".data"]
    lines += [f"m{i}: .word {v}" for i, v in enumerate(entry["init_mem"])]
    lines.append(".text")
    lines += [f"c{i}: subleq m{a - 1}, m{b - 1}, c{c - 1}" for i, (a, b, c) in enumerate(entry["commands_1based"])]
    return "\n".join(lines) + "\n"


def commands_1based(entry: dict) -> list[list[int]]:
    """The random program gives column indices only: a, b count from the first memory column s,
    c from the first command column s + m."""
    s, m = entry["s"], entry["m"]
    return [[a - s + 1, b - s + 1, c - s - m + 1] for a, b, c in entry["commands_column_index"]]


@pytest.mark.parametrize("name", subleq_corpus.params(FINAL))
@pytest.mark.parametrize("backend", ["transformer", "reference"])
def test_paper_program_reaches_its_final_memory(name, backend):
    entry = programs()[name]
    result = api.run(as_text(entry), backend=backend)
    assert result.halted
    assert [result.memory[f"m{i}"] for i in range(entry["m"])] == entry["expected_final_mem"]


@pytest.mark.parametrize("backend", subleq_corpus.params(["transformer", "reference"]))
def test_random_program_follows_the_published_trace(backend):
    """8-bit wraparound included (114 - (-101) = 215 -> -41): after each of the 20 steps, the cell
    written holds the trace's result."""
    entry = dict(programs()["random_trace_N8"])
    entry["commands_1based"] = commands_1based(entry)
    text = as_text(entry)
    s = entry["s"]
    for steps, row in enumerate(entry["trace"], start=1):
        result = api.run(text, backend=backend, max_steps=steps)
        assert result.memory[f"m{row['b'] - s}"] == row["result"], f"step {steps}"
    assert [result.memory[f"m{i}"] for i in range(entry["m"])] == entry["expected_final_mem_after_20_steps"]
