"""A fleqc machine as a TransformerLens ``HookedTransformer``: every head's pattern and every hook by name.

TransformerLens blocks are ``resid += attn(ln1(resid)); resid += mlp(ln2(resid))`` with one
``n_heads``, ``d_head`` and ``d_mlp`` for all blocks. A fleqc machine is a free sequence of
attention and ReLU layers of different sizes, so the mapping (:func:`to_hooked_transformer`) is:

- configuration: ``normalization_type=None`` (``ln1``/``ln2`` are identities), ``attention_dir=
  "bidirectional"`` (no causal mask), ``use_attn_scale=False`` (the scores are not divided by
  sqrt(d_head): fleqc folds its temperature into ``W_Q``), ``act_fn="relu"``, ``dtype=float64``;
  all biases 0 except the MLPs' (``b_in`` = b1, ``b_out`` = b2).
- blocks: the layers are paired greedily, an attention layer followed by a feed-forward layer
  share a block; an attention layer without one gets a block whose MLP is all zeros, a
  feed-forward layer without one a block whose attention is all zeros (:func:`block_plan`).
  An all-zero MLP adds ReLU(0) W_out = 0 exactly, an all-zero attention adds z W_O = 0 exactly.
- heads: head h of fleqc layer i is head h of its block; ``W_Q[h] = query[h]^T``,
  ``W_K[h] = key[h]^T``, ``W_V[h] = value[h]^T``, ``W_O[h] = output[h]^T``, each zero-padded to
  ``d_head = max(dk, dv)`` over all layers; blocks with fewer heads than ``n_heads`` get all-zero
  heads. Padding adds exact zeros to the scores and outputs.
- layout: TransformerLens's residual stream is (batch, pos, d_model) = X^T: position p is column p
  of the card, and ``hook_pattern`` [batch, head, query, key] is fleqc's weights A_h (key, query)
  transposed. The embedding and unembedding are not used: a pass is
  ``model(X^T, start_at_layer=0, stop_at_layer=n_layers)`` (:func:`lens_pass`).

What TransformerLens cannot represent faithfully: **hardmax** attention (it computes softmax only;
the SUBLEQ machine's hardmax mode has no counterpart, while its softmax mode is mapped exactly),
and blocks of different widths (handled by the exact zero padding above, at the cost of memory:
the FLEQ machine with 8 x 8 cells pads to 4 heads of width 122 and 5,226 hidden units in each of
20 blocks, about 9.4 GB of float64; with ``--cell 2`` about 2.4 GB, so use small cells for pictures). The mapping needs TransformerLens
2.x or 3.x: 4.0 removed ``HookedTransformer``.
"""

from __future__ import annotations

import warnings
from typing import Optional

import numpy as np
import torch

from fleqc.transformer.layers import AttentionLayer, FeedForwardLayer, LoopedTransformer


def block_plan(model: LoopedTransformer) -> list[tuple[Optional[int], Optional[int]]]:
    """(attention layer index or None, feed-forward layer index or None) per TransformerLens block."""
    plan: list[tuple[Optional[int], Optional[int]]] = []
    i, layers = 0, model.layers
    while i < len(layers):
        if isinstance(layers[i], AttentionLayer):
            if i + 1 < len(layers) and isinstance(layers[i + 1], FeedForwardLayer):
                plan.append((i, i + 1))
                i += 2
            else:
                plan.append((i, None))
                i += 1
        else:
            plan.append((None, i))
            i += 1
    return plan


def lens_config(model: LoopedTransformer, n_ctx: Optional[int] = None, device: str = "cpu"):
    from transformer_lens import HookedTransformerConfig

    attention = [layer for layer in model.layers if isinstance(layer, AttentionLayer)]
    ffn = [layer for layer in model.layers if isinstance(layer, FeedForwardLayer)]
    if n_ctx is None:
        n_ctx = int(model.metadata.get("machine", {}).get("columns", 0)) or 1024
    return HookedTransformerConfig(
        d_model=model.width,
        d_head=max([1] + [max(a.query.shape[1], a.value.shape[1]) for a in attention]),
        n_layers=len(block_plan(model)),
        n_ctx=n_ctx,
        n_heads=max([1] + [a.heads for a in attention]),
        d_mlp=max([1] + [f.hidden for f in ffn]),
        d_vocab=2,
        act_fn="relu",
        normalization_type=None,
        attention_dir="bidirectional",
        use_attn_scale=False,
        positional_embedding_type="standard",
        default_prepend_bos=False,
        dtype=torch.float64,
        device=device,
        init_weights=False,
        model_name="fleqc-machine",
    )


def to_hooked_transformer(model: LoopedTransformer, n_ctx: Optional[int] = None, device: str = "cpu"):
    """A ``HookedTransformer`` with the weights of ``model`` (see the module docstring)."""
    from transformer_lens import HookedTransformer

    cfg = lens_config(model, n_ctx, device)
    with warnings.catch_warnings():  # 3.x announces HookedTransformer's removal in 4.0 (module docstring)
        warnings.filterwarnings("ignore", message="HookedTransformer is deprecated", category=DeprecationWarning)
        lens = HookedTransformer(cfg)
    lens.eval()
    lens.requires_grad_(False)

    def put(param: torch.Tensor, value: np.ndarray) -> None:
        param[tuple(slice(0, s) for s in value.shape)] = torch.as_tensor(value, dtype=param.dtype)

    with torch.no_grad():
        for p in lens.parameters():
            p.zero_()
        for b, (a, f) in enumerate(block_plan(model)):
            block = lens.blocks[b]
            if a is not None:
                layer = model.layers[a]
                assert isinstance(layer, AttentionLayer)
                put(block.attn.W_Q, layer.query.transpose(0, 2, 1))  # (H, d, dk)
                put(block.attn.W_K, layer.key.transpose(0, 2, 1))
                put(block.attn.W_V, layer.value.transpose(0, 2, 1))  # (H, d, dv)
                put(block.attn.W_O, layer.output.transpose(0, 2, 1))  # (H, dv, d)
            if f is not None:
                layer = model.layers[f]
                assert isinstance(layer, FeedForwardLayer)
                put(block.mlp.W_in, layer.w1.T)  # (d, h)
                put(block.mlp.b_in, layer.b1)
                put(block.mlp.W_out, layer.w2.T)  # (h, d)
                put(block.mlp.b_out, layer.b2)
    lens.fleqc_plan = block_plan(model)  # type: ignore[attr-defined]
    lens.fleqc_row_labels = tuple(model.row_labels)  # type: ignore[attr-defined]
    return lens


def residual(X: np.ndarray) -> torch.Tensor:
    """A card (d, n) or batch (B, d, n) as TransformerLens's residual stream (batch, pos, d_model)."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 2:
        X = X[None]
    return torch.as_tensor(np.ascontiguousarray(X.transpose(0, 2, 1)))


def card_layout(resid: torch.Tensor) -> np.ndarray:
    """The inverse of :func:`residual`: (batch, pos, d_model) -> (batch, d, n) numpy."""
    return resid.detach().cpu().numpy().transpose(0, 2, 1)


@torch.no_grad()
def lens_pass(lens, X: np.ndarray) -> np.ndarray:
    """One pass of the machine through the HookedTransformer: X (B, d, n) or (d, n) -> same shape."""
    out = card_layout(lens(residual(X), start_at_layer=0, stop_at_layer=lens.cfg.n_layers))
    return out[0] if np.asarray(X).ndim == 2 else out


@torch.no_grad()
def run_with_cache(lens, X: np.ndarray, **kwargs):
    """(X after one pass, ActivationCache): every hook of every block, e.g.
    ``cache["blocks.0.attn.hook_pattern"]`` (batch, head, query, key)."""
    out, cache = lens.run_with_cache(residual(X), start_at_layer=0, stop_at_layer=lens.cfg.n_layers, **kwargs)
    result = card_layout(out)
    return (result[0] if np.asarray(X).ndim == 2 else result), cache


def head_names(lens, model: LoopedTransformer) -> dict[tuple[int, int], str]:
    """(block, head) -> ``layer i: head name`` for every real (not padding) head."""
    names = {}
    for b, (a, _) in enumerate(block_plan(model)):
        if a is None:
            continue
        layer = model.layers[a]
        assert isinstance(layer, AttentionLayer)
        for h in range(layer.heads):
            name = layer.head_names[h] if h < len(layer.head_names) else f"head {h}"
            names[(b, h)] = f"layer {a}: {name}"
    return names


def fleqc_pattern(cache, model: LoopedTransformer, layer_index: int) -> np.ndarray:
    """fleqc's attention weights (batch, H, n_keys, n_queries) of attention layer ``layer_index``,
    read from the cache of :func:`run_with_cache`."""
    for b, (a, _) in enumerate(block_plan(model)):
        if a == layer_index:
            heads = model.layers[a].heads  # type: ignore[union-attr]
            pattern = cache[f"blocks.{b}.attn.hook_pattern"][:, :heads]
            return pattern.detach().cpu().numpy().transpose(0, 1, 3, 2)
    raise ValueError(f"layer {layer_index} is not an attention layer")
