"""Attention maps of a layer, recomputed from its weights with the executor's own math.

For head h of an attention layer and the X that enters the layer, the executor computes
``A_h = attention_weights((K_h X)^T (Q_h X), mode)``: column j of A_h is the distribution of query
column j over the key columns. This module recomputes exactly that (through the executor's public
``attention_weights``) for every head; the X entering each layer comes from the executor's
``forward`` with an observer. Nothing here changes the executor.

Layers are numbered from 0, as everywhere in fleqc and in the other engines: the safetensors keys
(``layer3.query``), ONNX, torch's ``model.layers[3]`` and TransformerLens's ``blocks.3``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fleqc.transformer import forward
from fleqc.transformer.executor import attention_weights
from fleqc.transformer.layers import AttentionLayer, LoopedTransformer


@dataclass(frozen=True)
class HeadMap:
    layer: int  # from 0, the index in model.layers
    head: int  # 0-based
    name: str
    weights: np.ndarray  # (n_keys, n_queries), each column sums to 1


def attention_layers(model: LoopedTransformer) -> list[int]:
    """The numbers (from 0: indices in ``model.layers``) of the model's attention layers."""
    return [i for i, layer in enumerate(model.layers) if isinstance(layer, AttentionLayer)]


def layer_inputs(model: LoopedTransformer, X: np.ndarray, mode: str = "softmax") -> list[np.ndarray]:
    """The X entering each layer during one pass from ``X`` (index k = layer k)."""
    inputs = [np.array(X, dtype=np.float64)]

    def observe(index: int, layer, Y: np.ndarray) -> None:
        inputs.append(np.array(Y))

    forward(model, inputs[0], mode, observe=observe)
    return inputs[: len(model.layers)]


def head_weights(layer: AttentionLayer, X: np.ndarray, mode: str = "softmax") -> np.ndarray:
    """(H, n_keys, n_queries): every head's attention weights on ``X`` (the layer's input)."""
    Q = np.einsum("hkd,dn->hkn", layer.query, X)
    K = np.einsum("hkd,dn->hkn", layer.key, X)
    scores = np.matmul(np.swapaxes(K, -1, -2), Q)  # (H, n_keys, n_queries)
    return attention_weights(scores, mode)


def attention_maps(model: LoopedTransformer, X: np.ndarray, layer: int, mode: str = "softmax") -> list[HeadMap]:
    """Every head of attention layer ``layer`` (from 0) during the pass that starts from ``X``."""
    if layer not in attention_layers(model):
        raise ValueError(f"layer {layer} is not an attention layer; the attention layers are "
                         f"{', '.join(map(str, attention_layers(model)))}")
    weights_layer = model.layers[layer]
    entering = layer_inputs(model, X, mode)[layer]
    maps = head_weights(weights_layer, entering, mode)
    names = weights_layer.head_names or ()
    return [HeadMap(layer, h, names[h] if h < len(names) else f"head {h}", maps[h]) for h in range(maps.shape[0])]


def all_attention_maps(model: LoopedTransformer, X: np.ndarray, mode: str = "softmax") -> list[HeadMap]:
    """Every head of every attention layer during the pass from ``X`` (one forward pass)."""
    inputs = layer_inputs(model, X, mode)
    out: list[HeadMap] = []
    for number in attention_layers(model):
        layer = model.layers[number]
        maps = head_weights(layer, inputs[number], mode)
        names = layer.head_names or ()
        out += [HeadMap(number, h, names[h] if h < len(names) else f"head {h}", maps[h]) for h in range(maps.shape[0])]
    return out
