"""`fleqc show` (pictures of X and of attention) and the attention maps behind them.

The attention maps need only numpy and are always tested; the pictures need matplotlib (the
``plot`` extra, which `make install` and CI install) and are skipped without it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import fleqc
from fleqc.cli import main
from fleqc.machines import weights_for
from fleqc.observe.attention import all_attention_maps, attention_layers, attention_maps, layer_inputs
from fleqc.runner import Run
from fleqc.transformer.executor import attention

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def test_attention_maps_rebuild_the_executor_layer_output():
    card = fleqc.build(SAMPLES / "gcd.fleq")
    machine = Run(card, "transformer")
    machine.advance(5)
    model = machine.model
    inputs = layer_inputs(model, machine.X)
    for number in attention_layers(model):
        layer = model.layers[number]
        X = inputs[number]
        maps = attention_maps(model, machine.X, number)
        assert len(maps) == layer.heads
        rebuilt = X.copy()
        for head in maps:
            assert np.allclose(head.weights.sum(axis=0), 1.0)
            rebuilt += layer.output[head.head] @ (layer.value[head.head] @ X) @ head.weights
        assert np.allclose(rebuilt, attention(layer, X, "softmax"), atol=1e-12)


def test_fetch_head_of_the_scratchpad_looks_at_the_instruction_at_pc():
    card = fleqc.build(SAMPLES / "gcd.fleq")
    machine = Run(card, "transformer")
    machine.advance(7)
    fetch = attention_maps(machine.model, machine.X, 0)[0]  # layer 0, as in layer0.query
    assert fetch.name == "fetch"
    column = int(np.argmax(fetch.weights[:, 0]))  # the scratchpad's query
    assert column == card.regions.instructions[0] + machine.pc
    assert fetch.weights[column, 0] > 1 - 1e-12


def test_fleq_maps_every_head():
    card = fleqc.build(SAMPLES / "fleq_polynomial.fleq")
    model = weights_for(card.config)
    maps = all_attention_maps(model, card.X)
    assert len(maps) == sum(model.layers[k].heads for k in attention_layers(model))
    with pytest.raises(ValueError, match="not an attention layer"):
        attention_maps(model, card.X, 2)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_show_draws_X_and_attention(tmp_path):
    pytest.importorskip("matplotlib")
    runner = CliRunner()
    x = tmp_path / "x.png"
    result = runner.invoke(main, ["show", str(SAMPLES / "gcd.fleq"), "-o", str(x), "--step", "3"])
    assert result.exit_code == 0, result.output
    assert png_size(x)[0] > 300
    card = tmp_path / "gcd.npz"
    fleqc.build(SAMPLES / "gcd.fleq").save(card)
    a = tmp_path / "a.png"
    result = runner.invoke(main, ["show", str(card), "-o", str(a), "--attention", "1", "--step", "4"])
    assert result.exit_code == 0, result.output
    assert png_size(a)[0] > 300
    bad = runner.invoke(main, ["show", str(card), "-o", str(a), "--attention", "2"])
    assert bad.exit_code == 2 and "attention layers are 0, 1, 3" in bad.output


def test_show_fleq_card(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "f.png"
    card = fleqc.build(SAMPLES / "fleq_polynomial.fleq")
    gather = attention_layers(weights_for(card.config))[-1]  # the gather (22 for cell 8 since issue 29)
    result = CliRunner().invoke(main, ["show", str(SAMPLES / "fleq_polynomial.fleq"), "-o", str(out),
                                       "--attention", str(gather), "--max-heads", "4", "--step", "1"])
    assert result.exit_code == 0, result.output
    assert png_size(out)[0] > 300


def test_plot_labels_blocks_and_regions(tmp_path):
    pytest.importorskip("matplotlib")
    from fleqc.observe.show import _spaced_labels, regions

    card = fleqc.build(SAMPLES / "gcd.fleq")
    assert [name for name, _, _ in regions(card)] == ["scratch", "memory", "instructions", "padding"]
    ticks, names = _spaced_labels(list(card.rows), card.X.shape[0], 12.0)
    assert "mem" in names and "pc" in names and ticks == sorted(ticks)


def test_show_only_some_row_blocks(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "rows.png"
    runner = CliRunner()
    result = runner.invoke(main, ["show", str(SAMPLES / "fleq_polynomial.fleq"), "-o", str(out), "--rows", "pc,mem"])
    assert result.exit_code == 0, result.output
    assert png_size(out)[0] > 300
    bad = runner.invoke(main, ["show", str(SAMPLES / "gcd.fleq"), "-o", str(out), "--rows", "pc,nothing"])
    assert bad.exit_code == 2 and "no row block nothing" in bad.output
