"""Traces (fleqc.observe.trace) and `fleqc run --trace / --trace-json`, and the progress bar.

The transformer's trace is decoded from X after every pass; it must be the reference's trace:
the same instructions, source lines, branches and next pcs, and the same values read and written
(exactly for SUBLEQ, within the machine's stated accuracy for FLEQ).
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import fleqc
from fleqc.cli import main
from fleqc.observe import progress
from fleqc.runner import Run
from fleqc.observe.trace import trace_program

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
ALL = sorted(SAMPLES.glob("*.fleq"))
SUBLEQ = [p for p in ALL if "machine fleq" not in p.read_text()]
FLEQ = [p for p in ALL if "machine fleq" in p.read_text()]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def close(x, y, rel=1e-7, abs_=1e-12) -> bool:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return x.shape == y.shape and bool(np.all(np.abs(x - y) <= abs_ + rel * np.abs(y)))


def same_events(ours, theirs, exact: bool) -> None:
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        ja, jb = a.to_json(), b.to_json()
        for key in ("step", "pc", "file", "line", "source", "instruction", "branch", "target", "next_pc"):
            assert ja[key] == jb[key], (a.step, key)
        for kind in ("reads", "writes"):
            assert [(x["operand"], x["label"]) for x in ja[kind]] == [(x["operand"], x["label"]) for x in jb[kind]]
            for x, y in zip(ja[kind], jb[kind]):
                assert (x["value"] == y["value"]) if exact else close(x["value"], y["value"]), (a.step, kind, x, y)


@pytest.mark.parametrize("sample", SUBLEQ, ids=[p.stem for p in SUBLEQ])
def test_subleq_transformer_trace_is_the_reference_trace(sample):
    program = fleqc.compile(sample)
    reference = trace_program(program, "reference")
    assert reference and all(e.line > 0 and e.source for e in reference)
    same_events(trace_program(fleqc.build(program), "transformer"), reference, exact=True)


def test_hardmax_and_dense_traces_match_too():
    program = fleqc.compile(SAMPLES / "gcd.fleq")
    reference = trace_program(program, "reference")
    same_events(trace_program(fleqc.build(program), "transformer", mode="hardmax"), reference, exact=True)
    same_events(trace_program(fleqc.build(program), "transformer", engine="dense"), reference, exact=True)
    same_events(trace_program(fleqc.build(program), "transformer", engine="sparse"), reference, exact=True)


@pytest.mark.parametrize("sample", FLEQ, ids=[p.stem for p in FLEQ])
def test_fleq_transformer_trace_is_the_reference_trace(sample):
    program = fleqc.compile(sample)
    reference = trace_program(program, "reference")
    same_events(trace_program(fleqc.build(program), "transformer"), reference, exact=False)


def test_events_say_what_was_read_written_and_where_it_went():
    events = trace_program(fleqc.compile(SAMPLES / "gcd.fleq"), "reference")
    first = events[0]  # loop: subleq zero, b, done   with b = 462
    assert (first.pc, first.line, first.source) == (0, 21, "loop: subleq zero, b, done")
    assert first.instruction == "subleq zero, b, done"
    assert [(a.label, a.value) for a in first.reads] == [("zero", 0), ("b", 462)]
    assert [(a.label, a.value) for a in first.writes] == [("b", 462)]
    assert first.branch is False and first.next_pc == 1
    taken = [e for e in events if e.branch]
    assert taken and all(e.next_pc == e.target for e in taken)
    assert all(e.next_pc == e.pc + 1 for e in events if not e.branch)
    assert "gcd.fleq:21" in first.text() and "read zero=0, b=462" in first.text()


def test_fleq_event_reads_the_flag_after_the_write():
    events = trace_program(fleqc.compile(SAMPLES / "fleq_counter_loop.fleq"), "reference")
    loop_test = next(e for e in events if e.source.startswith("fleq i, sub"))
    flag = [a for a in loop_test.reads if a.operand == "flag"][0]
    assert flag.value == [a for a in loop_test.writes][0].value  # flag = dst = i, the new value
    assert "flag i=" in loop_test.text()


def test_machine_pauses_and_resumes_to_the_same_end():
    program = fleqc.compile(SAMPLES / "gcd.fleq")
    for backend in ("reference", "transformer"):
        machine = Run(program, backend)
        assert machine.advance(5) == 5 and machine.steps == 5 and not machine.halted
        assert machine.advance(100, stop=lambda e: e.pc == 4) >= 1 and machine.pc == 5
        machine.advance(10_000)
        assert machine.halted and machine.steps == 67
        assert machine.memory()[0] == 21


def test_cli_trace_lines_and_json_lines(tmp_path):
    out = tmp_path / "trace.jsonl"
    result = invoke("run", SAMPLES / "gcd.fleq", "--trace", "--trace-json", out)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if "pc " in line]
    assert len(lines) == 67
    assert "gcd.fleq:21" in lines[0] and "loop: subleq zero, b, done" in lines[0]
    assert "a = 21" in result.stdout
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(events) == 67 and events[-1]["step"] == 67
    assert events[0]["reads"][1] == {"operand": "b", "address": 1, "label": "b", "value": 462}


def test_cli_trace_with_json_keeps_stdout_json(tmp_path):
    result = invoke("run", SAMPLES / "fleq_polynomial.fleq", "--trace", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["memory"]["y"] == 1.75
    assert result.stderr.count(" pc ") == 6


def test_cli_trace_of_a_card_and_reference_backend(tmp_path):
    card = tmp_path / "gcd.npz"
    assert invoke("build", SAMPLES / "gcd.fleq", "-o", card).exit_code == 0
    on_card = invoke("run", card, "--trace")
    on_reference = invoke("run", card, "--trace", "--backend", "reference")
    assert on_card.exit_code == on_reference.exit_code == 0
    assert on_card.stdout == on_reference.stdout and "gcd.fleq:21" in on_card.stdout


def test_cli_trace_stops_at_the_step_limit():
    result = invoke("run", SAMPLES / "gcd.fleq", "--trace", "--max-steps", "7")
    assert result.exit_code == 3
    assert len([line for line in result.stdout.splitlines() if " pc " in line]) == 7


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_only_on_a_terminal_and_never_with_json():
    assert not progress.wanted(io.StringIO())
    assert progress.wanted(FakeTerminal())
    assert not progress.wanted(FakeTerminal(), as_json=True)


def test_progress_bar_shows_steps_rate_and_elapsed():
    stream = FakeTerminal()
    with progress.RunProgress(stream, max_steps=1000, delay=0.0) as bar:
        for step in range(1, 50):
            bar.tick(step)
    shown = stream.getvalue()
    assert "steps/s" in shown and "steps" in shown
    assert re.search(r"\d+:\d\d:\d\d elapsed", shown), shown  # its format; its value is the machine's load


def test_no_progress_bar_in_pipes():
    result = invoke("run", SAMPLES / "gcd.fleq")  # CliRunner's stderr is not a terminal
    assert "steps/s" not in result.stderr
