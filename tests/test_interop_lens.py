"""The machines as TransformerLens HookedTransformers (fleqc.interop.lens).

One pass through the HookedTransformer equals fleqc's forward pass (SUBLEQ: bit for bit over many
passes; FLEQ with 2 x 2 cells: within tests/test_fast.py's bounds), and ``run_with_cache`` shows
every head's pattern, equal to the attention weights fleqc's executor computes. Skipped without
the extra ``fleqc[lens]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the lens extra is not installed: pip install 'fleqc[lens]'")
pytest.importorskip("transformer_lens", reason="the lens extra is not installed: pip install 'fleqc[lens]'")

import fleqc  # noqa: E402
from fleqc.interop.lens import (  # noqa: E402
    block_plan,
    fleqc_pattern,
    head_names,
    lens_pass,
    run_with_cache,
    to_hooked_transformer,
)
from fleqc.machines import weights_for  # noqa: E402
from fleqc.transformer import forward  # noqa: E402
from fleqc.transformer.executor import attention_weights  # noqa: E402
from fleqc.transformer.layers import AttentionLayer  # noqa: E402

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
torch.set_num_threads(1)


def fleqc_weights(layer: AttentionLayer, X: np.ndarray) -> np.ndarray:
    """The executor's attention weights (H, n_keys, n_queries) of ``layer`` on input X."""
    Q = np.einsum("hkd,dn->hkn", layer.query, X)
    K = np.einsum("hkd,dn->hkn", layer.key, X)
    return attention_weights(np.matmul(np.swapaxes(K, -1, -2), Q), "softmax")


def test_configuration_is_the_faithful_one():
    model = weights_for(fleqc.build(str(SAMPLES / "gcd.fleq")).config)
    lens = to_hooked_transformer(model)
    cfg = lens.cfg
    assert cfg.normalization_type is None and cfg.attention_dir == "bidirectional"
    assert cfg.use_attn_scale is False and cfg.act_fn == "relu" and cfg.dtype == torch.float64
    assert cfg.d_model == model.width and cfg.n_layers == len(block_plan(model)) == 3
    assert block_plan(model) == [(0, None), (1, 2), (3, 4)]
    assert all(float(b.attn.b_Q.abs().sum() + b.attn.b_K.abs().sum() + b.attn.b_V.abs().sum()) == 0 for b in lens.blocks)


@pytest.mark.parametrize("name", ["gcd", "factorial"])
def test_passes_equal_fleqcs_forward_pass(name):
    card = fleqc.build(str(SAMPLES / f"{name}.fleq"))
    model = weights_for(card.config)
    lens = to_hooked_transformer(model)
    X = card.X
    for _ in range(12):
        Y = forward(model, X)
        assert np.array_equal(lens_pass(lens, X), Y)
        X = Y
    batch = np.stack([card.X, X])
    assert np.array_equal(lens_pass(lens, batch), forward(model, batch))


def test_run_with_cache_shows_every_heads_pattern():
    card = fleqc.build(str(SAMPLES / "gcd.fleq"))
    model = weights_for(card.config)
    lens = to_hooked_transformer(model)
    inputs = {}
    previous = [card.X]

    def observe(index, layer, X):
        inputs[index] = previous[0]
        previous[0] = X

    Y = forward(model, card.X, observe=observe)
    out, cache = run_with_cache(lens, card.X)
    assert np.array_equal(out, Y)
    names = head_names(lens, model)
    assert sorted(names.values()) == sorted(f"layer {i}: {h}" for i, layer in enumerate(model.layers)
                                            if isinstance(layer, AttentionLayer) for h in layer.head_names)
    for b in range(lens.cfg.n_layers):
        assert cache[f"blocks.{b}.attn.hook_pattern"].shape == (1, lens.cfg.n_heads, card.X.shape[1], card.X.shape[1])
        assert f"blocks.{b}.hook_resid_post" in cache and f"blocks.{b}.mlp.hook_post" in cache
    for i, layer in enumerate(model.layers):
        if isinstance(layer, AttentionLayer):
            assert np.allclose(fleqc_pattern(cache, model, i)[0], fleqc_weights(layer, inputs[i]), rtol=0, atol=1e-15)
    # the fetch head of the first pass reads the instruction column the pc names
    fetch = fleqc_pattern(cache, model, 0)[0, 0]
    assert fetch[:, 0].argmax() == card.regions.instructions[0] + card.read_pc()


def test_fleq_machine_with_small_cells():
    card = fleqc.build(str(SAMPLES / "fleq_polynomial.fleq"), cell=2)
    model = weights_for(card.config)
    lens = to_hooked_transformer(model)
    X = card.X
    for _ in range(3):
        Y = forward(model, X)
        assert np.array_equal(lens_pass(lens, X), Y)
        X = Y
