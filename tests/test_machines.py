"""The registry of machines and the FLEQ function records.

Every registered machine keeps the interface's promises (fleqc/machines/base.py): its name is its
configuration's kind, its configuration survives a round trip through a file's metadata, its row
blocks are those its weights are labelled with, its weights have its layer kinds and are refused
by every other machine. Every FLEQ function runs on a block the FLEQ machine builds and meets its
record's error bound on the transformer; a record whose block the machine lacks is refused when the
machine registers. A third machine (tests/support/plugin_machine.py) added by one registry line builds,
saves, loads and runs with its own observer.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from fleqc.machines import load_card
import fleqc
from fleqc.errors import ErrorCode, FleqError
from fleqc.machines.fleq.functions import FLEQ_FUNCTIONS
from fleqc.card.card import Card
from fleqc.machines.fleq.rows import OPS
from fleqc.machines import REGISTRY, config_from_dict, machine, machine_for_file, machines, weights_for
from fleqc.machines.fleq import check_function_blocks
from fleqc.runner import Run as Stepper
from fleqc.program import values_by_label
from fleqc.transformer.layers import AttentionLayer
from tests.support.fleq_checks import within_bound

MACHINES = machines()


def small_config(m):
    return m.config_from_options(16, {})


@pytest.mark.parametrize("m", MACHINES, ids=lambda m: m.name)
def test_a_machine_is_registered_under_its_name_and_kind(m):
    config = small_config(m)
    assert m is machine(m.name) and config.kind == m.name and isinstance(config, m.config_class)
    assert config_from_dict(config.to_dict()) == config


@pytest.mark.parametrize("m", MACHINES, ids=lambda m: m.name)
def test_a_machines_stated_layer_kinds_are_those_of_its_default_weights(m):
    """``layer_kinds`` (the shape listings and docs quote) is the default configuration's plan."""
    config = m.config_from_options(m.default_columns, {})
    assert m.kinds(config) == m.layer_kinds
    model = weights_for(config)
    assert "".join("A" if isinstance(layer, AttentionLayer) else "F" for layer in model.layers) == m.layer_kinds


@pytest.mark.parametrize("m", MACHINES, ids=lambda m: m.name)
def test_a_machines_weights_fit_it_and_no_other(m):
    config = small_config(m)
    model = weights_for(config)
    assert model is weights_for(config)  # built once per configuration
    assert list(model.row_labels) == m.rows(config).labels()
    m.check_weights_fit(model, config, "here")
    for other in MACHINES:
        if other is not m:
            with pytest.raises(FleqError) as refused:
                other.check_weights_fit(model, small_config(other), "here")
            assert refused.value.code is ErrorCode.MACHINE_MISMATCH


@pytest.mark.parametrize("kind", ["tanh", None, ["subleq"], {"a": 1}, 3])
def test_an_unknown_machine_kind_is_a_config_error_not_a_traceback(kind):
    with pytest.raises(FleqError) as error:
        config_from_dict({"kind": kind, "columns": 16})
    assert error.value.code is ErrorCode.BAD_CONFIG


def test_fleq_language_files_go_to_the_default_machine_whose_directive_chooses():
    assert machine_for_file("prog.fleq") is machine(next(iter(REGISTRY)))
    assert all(".fleq" in m.suffixes for m in MACHINES if m.language is not None)


def test_every_fleq_function_runs_on_a_block_the_machine_builds():
    """Each function's block is one the machine lists, and the built weights read its selector row
    (the row that is 0 in an instruction column that selects the block)."""
    config = machine("fleq").config_from_options(16, {"cell": 2})
    model = weights_for(config)
    rows = machine("fleq").rows(config)
    for function in FLEQ_FUNCTIONS.values():
        assert function.block in OPS, function.name
        selector = rows["c_not_op"][OPS.index(function.block)]
        assert any(np.any(matrix[:, selector]) for layer in model.layers for matrix in _weights(layer)), function.name


def _weights(layer):
    """Every matrix of a layer that reads the residual stream (its columns are rows of X)."""
    if isinstance(layer, AttentionLayer):
        return [*layer.query, *layer.key, *layer.value]
    return [layer.w1]


DATA = {  # the cells a, b, y of each function's test (default: scalars -1.25, 0.75, 0)
    "recip": "a: .word 4\nb: .word 0\ny: .word 0", "sqrt": "a: .word 2.25\nb: .word 0\ny: .word 0",
    "log": "a: .word 3\nb: .word 0\ny: .word 0", "exp": "a: .word 1.5\nb: .word 0\ny: .word 0",
    "matmul": "a: .matrix 2 2  1.5, -2, 0.25, 3\nb: .vector 2  0.75, -1\ny: .vector 2",
    "transpose": "a: .matrix 2 3  1, 2, 3, 4, 5, 6\nb: .word 0\ny: .matrix 3 2",
}


@pytest.mark.parametrize("name", sorted(FLEQ_FUNCTIONS))
def test_every_fleq_function_meets_its_bound_on_the_transformer(name):
    """One instruction per function, on the transformer and the reference interpreter: the results
    agree within the function's record (``bound``)."""
    operands = "y, a, b" if FLEQ_FUNCTIONS[name].arity == 2 else "y, a"
    data = DATA.get(name, "a: .word -1.25\nb: .word 0.75\ny: .word 0")
    program = fleqc.compile(f".machine fleq\n.data\n{data}\n.text\n{name} {operands}\nhalt\n")
    given = values_by_label(program.symbols, program.initial_memory())
    got = fleqc.run(program, backend="transformer", max_steps=10).memory["y"]
    want = fleqc.run(program, backend="reference", max_steps=10).memory["y"]
    assert within_bound(name, given["a"], given["b"], want, got), (name, got, want)


def test_a_function_record_without_its_machine_block_is_refused_when_the_machine_registers():
    tanh = dataclasses.replace(FLEQ_FUNCTIONS["sigmoid"], name="tanh", block="tanh")
    with pytest.raises(ValueError, match="'tanh' runs on the machine block 'tanh', which the FLEQ machine does not"):
        check_function_blocks({**FLEQ_FUNCTIONS, "tanh": tanh})
    odd = dataclasses.replace(FLEQ_FUNCTIONS["mov"], name="odd", view_set=frozenset({"a_sideways"}))
    with pytest.raises(ValueError, match="'odd' uses operand views"):
        check_function_blocks({"odd": odd})


@pytest.fixture
def echo(monkeypatch):
    """tests/support/plugin_machine.py registered by one registry line, for one test."""
    monkeypatch.setitem(REGISTRY, "echo", "tests.support.plugin_machine")
    return machine("echo")


def test_a_third_machine_plugs_in_through_the_registry_alone(echo, tmp_path):
    """Its suffix chooses it, its configuration is saved in its card under its kind, the card runs
    on its weights with its observer, and the reference backend agrees."""
    source = tmp_path / "gcd.echo"
    source.write_text((Path(__file__).resolve().parent.parent / "samples" / "gcd.fleq").read_text())
    assert fleqc.compile(source).machine == "echo"
    card = fleqc.build(source)
    card.save(tmp_path / "gcd.npz")
    loaded = load_card(tmp_path / "gcd.npz")
    assert loaded.machine is echo and loaded.config.kind == "echo"
    passes: list = []
    result = fleqc.run(loaded, passes=passes)
    assert result.memory == fleqc.run(source, backend="reference").memory
    assert [step for step, _ in passes] == list(range(1, result.steps + 1))
    assert passes[-1][1] == result.pc
    stepped: list = []
    Stepper(loaded, "transformer", passes=stepped).advance(result.steps)
    assert stepped == passes  # the step-by-step tools (traces, debugger) observe the same passes
