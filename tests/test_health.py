"""Health checks: injected faults are reported as MachineFault, never as a silently wrong answer."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import fleqc
from fleqc.runner import run
from fleqc.errors import ErrorCode, FleqError
from fleqc.machines import card_to_program
from fleqc.machines import program_to_card
from fleqc.machines import weights_for
from fleqc.transformer import MachineFault
from fleqc.transformer.layers import FeedForwardLayer
from fleqc.transformer.weights_io import load_weights, save_weights
from tests.support.programs import subleq_program


def _card():
    # m0 -= m1 three times (10 -> 7 -> 4 -> 1 -> -2), then halt
    program = subleq_program(8, [10, 3, 0], [(1, 0, 1), (1, 0, 1), (1, 0, 1), (1, 0, 4), (2, 2, 4)])
    return program_to_card(program)


def test_healthy_run_passes_every_check():
    result = run(_card())
    assert result.halted and result.memory["m0"] == -2


# The cards below are corrupted in memory and run with validate=False: the check of the whole card
# before the first pass (fleqc.card.check, tests/test_card_check.py) refuses each of them,
# so these tests reach the health checks that guard every pass.


def test_corrupted_card_entry_is_reported_with_step_and_field():
    card = _card()
    X = card.X.copy()
    X[card.rows["mem"][2], card.regions.memory_column(0)] = 0.4  # a bit that is neither -1 nor +1
    bad = dataclasses.replace(card, X=X)
    with pytest.raises(MachineFault) as fault:
        run(bad, validate=False)
    assert fault.value.step == 1
    assert fault.value.field.startswith("mem[")
    assert fault.value.deviation > 0.1


def test_nan_in_the_card_is_reported():
    card = _card()
    X = card.X.copy()
    X[card.rows["val_a"][0], 5] = np.nan
    with pytest.raises(MachineFault) as fault:
        run(dataclasses.replace(card, X=X), validate=False)
    assert fault.value.deviation == float("inf")


def test_perturbed_weights_file_is_reported(tmp_path):
    card = _card()
    model = weights_for(card.config)
    path = tmp_path / "m.npz"
    save_weights(model, path)
    loaded = load_weights(path)
    commit = loaded.layers[-1]
    assert isinstance(commit, FeedForwardLayer)
    w2 = commit.w2.copy()
    mem0 = card.rows["mem"][0]
    w2[mem0, np.flatnonzero(w2[mem0])[0]] *= 1.3  # one output weight of the memory commit, off by 30%
    layers = loaded.layers[:-1] + (dataclasses.replace(commit, w2=w2),)
    with pytest.raises(MachineFault) as fault:
        run(card, weights=dataclasses.replace(loaded, layers=layers))
    assert fault.value.field == "mem[0]"


def test_program_counter_outside_the_program_is_reported():
    card = _card()
    X = card.X.copy()
    # point the branch target of instruction 3 (the branch that is taken) at a memory column
    X[card.rows["instr_c"].slice, card.regions.instruction_column(3)] = X[card.rows["pos"].slice, 1]
    program_x = dataclasses.replace(card, X=X)
    with pytest.raises(MachineFault) as fault:
        run(program_x, validate=False)
    assert fault.value.field == "pc"


# -- the FLEQ machine ------------------------------------------------------------------------------


def _fleq_card():
    return fleqc.build(fleqc.compile("samples/fleq_polynomial.fleq"))


def test_fleq_corrupted_instruction_bit_is_reported_at_step_one():
    card = _fleq_card()
    X = card.X.copy()
    X[card.rows["i_not_op"][0], card.regions.instruction_column(0)] = 0.5  # half-selects a block
    with pytest.raises(MachineFault) as fault:
        run(dataclasses.replace(card, X=X), validate=False)
    assert fault.value.step == 1 and fault.value.field.startswith("i_not_op")


def test_fleq_lanes_that_disagree_on_pc_are_reported():
    card = _fleq_card()
    X = card.X.copy()
    lane = card.regions.scratch[0] + 5
    X[card.rows["pc"].slice, lane] = X[card.rows["pos"].slice, card.regions.instruction_column(2)]
    with pytest.raises(MachineFault) as fault:
        run(dataclasses.replace(card, X=X), validate=False)
    assert "lanes disagree" in fault.value.field


def test_fleq_value_beyond_the_limit_is_reported():
    card = _fleq_card()
    first = card_to_program(card).instructions[0]
    address = min({*range(card.memory_size)} - {first.src_a, first.src_b, first.dst})  # not an operand: no window
    X = card.X.copy()
    X[card.rows["mem"][0], card.regions.memory_column(address)] = 2.0**1010
    with pytest.raises(MachineFault) as fault:
        run(dataclasses.replace(card, X=X), validate=False)
    assert fault.value.field.startswith("mem[")


def test_weights_changed_on_disk_are_refused(tmp_path):
    card = fleqc.build(fleqc.compile("samples/fleq_polynomial.fleq"), cell=2)  # a small file (26 M parameters)
    path = tmp_path / "fleq.npz"
    save_weights(weights_for(card.config), path)
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    arrays["layer1.value.val"] = arrays["layer1.value.val"].copy()
    arrays["layer1.value.val"][0] *= 1.001  # a read head's first nonzero
    np.savez(path, **arrays)
    with pytest.raises(FleqError) as error:
        load_weights(path)
    assert error.value.code == ErrorCode.BAD_WEIGHTS and "SHA-256" in error.value.message
