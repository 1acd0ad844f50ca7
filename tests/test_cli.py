"""The command line, through click's CliRunner: build, run, inspect, weights, and error reporting."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
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


@pytest.mark.parametrize("sample, sublayers, layers", [("factorial.fleq", 5, 3), ("fleq_polynomial.fleq", 22, 20),
                                                       ("classic_hello.sq", 7, 5)])
def test_inspect_lists_the_machines_layers_with_its_depth(sample, sublayers, layers, tmp_path):
    from fleqc.machines import load_card, weights_for

    card = tmp_path / "card.npz"
    assert invoke("build", SAMPLES / sample, "-o", card).exit_code == 0
    inspected = invoke("inspect", card)
    assert inspected.exit_code == 0, inspected.output
    model = weights_for(load_card(card).config)
    assert len(model.layers) == sublayers
    assert f"layers    {sublayers} sublayers (" in inspected.output
    assert f"; {layers} layers as the paper counts them" in inspected.output
    for i, layer in enumerate(model.layers):
        name = layer.head_names[0] if hasattr(layer, "head_names") else layer.name
        assert f"  {i:>2}  " in inspected.output and name in inspected.output


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


def test_fleq_sample_runs_on_the_transformer_and_prints_matrices(tmp_path):
    card = tmp_path / "chain.npz"
    built = invoke("build", SAMPLES / "fleq_matrix_chain.fleq", "-o", card)
    assert built.exit_code == 0 and "fleq card" in built.output and "cells up to 8x8" in built.output
    shown = invoke("run", card)
    assert shown.exit_code == 0 and "halted after 4 steps (transformer, softmax)" in shown.output
    assert "AB = [[" in shown.output and "],\n      [" in shown.output  # one matrix row per line, aligned
    as_json = json.loads(invoke("run", card, "--json").stdout)
    reference = json.loads(invoke("run", SAMPLES / "fleq_matrix_chain.fleq", "--backend", "reference", "--json").stdout)
    assert as_json["steps"] == reference["steps"] == 4
    for label, value in reference["memory"].items():
        assert np.allclose(as_json["memory"][label], value, rtol=1e-9, atol=0)
        assert isinstance(as_json["memory"][label], (float, list))
    inspected = invoke("inspect", card)
    assert inspected.exit_code == 0 and "ref+lanes" in inspected.output and "not_entry" in inspected.output


def test_fleq_domain_error_is_a_clear_error_and_hardmax_runs(tmp_path):
    bad = tmp_path / "bad.fleq"
    bad.write_text(".machine fleq\n.data\nx: .word 0\ny: .word 0\n.text\n  recip y, x\n")
    result = invoke("run", bad)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{bad}:6:" in result.output and "domain-error" in result.output and "recip" in result.output
    runs = [invoke("run", SAMPLES / "fleq_polynomial.fleq", "--mode", mode, "--json") for mode in ("softmax", "hardmax")]
    assert all(r.exit_code == 0 for r in runs) and json.loads(runs[0].stdout) == json.loads(runs[1].stdout)


def test_fleq_weights_file_runs_programs(tmp_path):
    weights = tmp_path / "fleq.npz"
    made = invoke("weights", "--machine", "fleq", "--columns", "128", "--cell", "2", "-o", weights)  # 26 M parameters
    assert made.exit_code == 0 and "fleq machine" in made.output
    ran = invoke("run", SAMPLES / "fleq_polynomial.fleq", "--columns", "128", "--cell", "2", "--weights", weights,
                 "--json")
    assert ran.exit_code == 0 and json.loads(ran.stdout)["halted"]


def test_domain_error_inside_an_included_routine_points_at_the_call(tmp_path):
    prog = tmp_path / "neg_log.fleq"
    prog.write_text('.machine fleq\n.include "arith_log.fleq"\n.data\nx: .word -2\ny: .word 0\n.text\n'
                    "  mov log_x, x\n  call log\n  mov y, log_out\n  halt\n")
    for backend in ("transformer", "reference"):
        result = invoke("run", prog, "--backend", backend)
        assert result.exit_code == 1 and "domain-error" in result.output, result.output
        # located at the program's own call, naming the routine's file and line (issue 11)
        assert result.output.startswith(f"{prog}:8:"), result.output
        assert "arith_log.fleq:" in result.output and "call log" in result.output


def test_labels_of_included_files_are_printed_only_on_request(tmp_path):
    app = SAMPLES / "apps" / "app_inverse8.fleq"
    card = tmp_path / "inv8.npz"
    assert invoke("build", app, "-o", card).exit_code == 0
    for target in (app, card):
        own = json.loads(invoke("run", target, "--backend", "reference", "--json").stdout)["memory"]
        every = json.loads(invoke("run", target, "--backend", "reference", "--json", "--all-labels").stdout)["memory"]
        assert list(own) == ["a", "x", "iters"]
        assert {"inv_a", "inv_out", "ar_one"} <= set(every) and set(own) < set(every)
