"""The command line, through click's CliRunner: build, run, inspect, weights, and error reporting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fleqc.cli import main

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
SUBLEQ_SAMPLES = sorted(p for p in SAMPLES.glob("*.fleq") if "machine fleq" not in p.read_text())


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("sample", SUBLEQ_SAMPLES, ids=[p.stem for p in SUBLEQ_SAMPLES])
def test_build_run_inspect_every_sample(sample, tmp_path):
    card = tmp_path / "card.npz"
    built = invoke("build", sample, "-o", card)
    assert built.exit_code == 0, built.output
    assert built.output.startswith(f"wrote {card}: subleq card: n=")
    on_transformer = invoke("run", card, "--json")
    on_reference = invoke("run", sample, "--backend", "reference", "--json")
    assert on_transformer.exit_code == 0 and on_reference.exit_code == 0
    assert json.loads(on_transformer.stdout) == json.loads(on_reference.stdout)
    inspected = invoke("inspect", card)
    assert inspected.exit_code == 0
    for word in ("machine", "rows", "pos", "columns", "memory", "instructions", "symbols"):
        assert word in inspected.output


def test_run_prints_labels_and_halting():
    result = invoke("run", SAMPLES / "factorial.fleq")
    assert result.exit_code == 0
    assert "result = 5040" in result.stdout
    assert "halted after" in result.stderr


def test_step_limit_prints_the_state_and_exits_3():
    result = invoke("run", SAMPLES / "factorial.fleq", "--max-steps", "10", "--json")
    assert result.exit_code == 3
    data = json.loads(result.stdout)
    assert data["halted"] is False and data["steps"] == 10 and "result" in data["memory"]
    assert "--max-steps 10" in result.stderr


def test_user_error_is_located_without_traceback(tmp_path):
    bad = tmp_path / "bad.fleq"
    bad.write_text(".data\nx: .word 1\n.text\n  subleq x, y\n")
    result = invoke("build", bad, "-o", tmp_path / "bad.npz")
    assert result.exit_code == 1
    assert f"{bad}:4:" in result.stderr and "Traceback" not in result.output
    assert "^" in result.stderr
    assert not (tmp_path / "bad.npz").exists()


def test_failed_build_leaves_an_existing_card_untouched(tmp_path):
    good, bad = tmp_path / "good.fleq", tmp_path / "bad.fleq"
    good.write_text(".data\nx: .word 1\n.text\nsubleq x, x\n")
    bad.write_text("subleq nowhere\n")
    card = tmp_path / "card.npz"
    assert invoke("build", good, "-o", card).exit_code == 0
    before = card.read_bytes()
    assert invoke("build", bad, "-o", card).exit_code == 1
    assert card.read_bytes() == before


def test_bad_card_is_a_clear_error(tmp_path):
    fake = tmp_path / "fake.npz"
    fake.write_text("not a card")
    result = invoke("run", fake)
    assert result.exit_code == 1 and "error[bad-card]" in result.stderr


def test_too_small_machine_is_a_clear_error():
    result = invoke("build", SAMPLES / "factorial.fleq", "--columns", "8", "-o", "/tmp/never-written.npz")
    assert result.exit_code == 1 and "error[program-too-large]" in result.stderr


def test_usage_errors_exit_2():
    assert invoke("run").exit_code == 2
    assert invoke("run", SAMPLES / "factorial.fleq", "--backend", "gpu").exit_code == 2


def test_weights_file_runs_the_same_program(tmp_path):
    weights = tmp_path / "m.npz"
    made = invoke("weights", "--columns", "64", "--bits", "16", "-o", weights)
    assert made.exit_code == 0, made.output
    ran = invoke("run", SAMPLES / "factorial.fleq", "--columns", "64", "--weights", weights, "--json")
    assert ran.exit_code == 0 and json.loads(ran.stdout)["memory"]["result"] == 5040
    mismatch = invoke("run", SAMPLES / "factorial.fleq", "--columns", "128", "--weights", weights)
    assert mismatch.exit_code == 1 and "error[machine-mismatch]" in mismatch.stderr


def test_help_explains_every_command():
    for command in ("build", "run", "inspect", "weights"):
        result = invoke(command, "--help")
        assert result.exit_code == 0 and len(result.output) > 200


def test_python_api_round_trip(tmp_path):
    import fleqc

    card = fleqc.build(SAMPLES / "gcd.fleq")
    result = fleqc.run(card)
    assert (result.memory["a"], result.steps, result.halted) == (21, 67, True)
    assert fleqc.run(card, backend="reference").memory == result.memory
    card.save(tmp_path / "gcd.npz")
    assert fleqc.decode(fleqc.load_card(tmp_path / "gcd.npz"))["a"] == 1071
    inline = fleqc.run(".data\nx: .word 5\n.text\nsubleq x, x\n")
    assert inline.memory == {"x": 0} and inline.steps == 1
