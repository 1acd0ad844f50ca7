"""The forward pass, the definition: every head of every attention layer over every column, every
unit of every feed-forward layer, in numpy. The other engines compute the same function of
(weights, X) bit for bit (fleqc.transformer.sparse, fleqc.transformer.incremental).

Attention modes over the same weights:

- ``softmax``: the definition, computed stably (the column maximum is subtracted before exp).
- ``hardmax``: the limit of softmax as the temperature grows: each query column puts weight 1/t on
  each of the t keys that tie for the highest score, 0 elsewhere.
"""

from __future__ import annotations

from typing import Callable, Literal, Optional

import numpy as np

from fleqc.transformer.layers import AttentionLayer, FeedForwardLayer, Layer, LoopedTransformer

Mode = Literal["softmax", "hardmax"]
MODES: tuple[Mode, ...] = ("softmax", "hardmax")

LayerObserver = Callable[[int, Layer, np.ndarray], None]


def attention_weights(scores: np.ndarray, mode: Mode) -> np.ndarray:
    """Column-normalised attention weights from scores (..., n_keys, n_queries), in place."""
    scores -= scores.max(axis=-2, keepdims=True)
    if mode == "softmax":
        np.exp(scores, out=scores)
    elif mode == "hardmax":
        scores[...] = scores == 0.0
    else:
        raise ValueError(f"unknown attention mode {mode!r}; use one of {MODES}")
    scores /= scores.sum(axis=-2, keepdims=True)
    return scores


def attention(layer: AttentionLayer, X: np.ndarray, mode: Mode) -> np.ndarray:
    """X + sum_h O_h (V_h X) A_h with A_h = softmax_keys((K_h X)^T (Q_h X))."""
    H, dk, d = layer.query.shape
    dv = layer.value.shape[1]
    n = X.shape[-1]
    batch = X.shape[:-2]
    Q = np.matmul(layer.query.reshape(H * dk, d), X).reshape(batch + (H, dk, n))  # (..., H, dk, n)
    K = np.matmul(layer.key.reshape(H * dk, d), X).reshape(batch + (H, dk, n))  # (..., H, dk, n)
    V = np.matmul(layer.value.reshape(H * dv, d), X).reshape(batch + (H, dv, n))  # (..., H, dv, n)
    A = attention_weights(np.matmul(np.swapaxes(K, -1, -2), Q), mode)  # (..., H, n_keys, n_queries)
    heads = np.matmul(V, A).reshape(batch + (H * dv, n))  # (..., H*dv, n)
    O = layer.output.transpose(1, 0, 2).reshape(d, H * dv)  # (d, H*dv)
    return X + np.matmul(O, heads)


def feed_forward(layer: FeedForwardLayer, X: np.ndarray) -> np.ndarray:
    """X + W2 ReLU(W1 X + b1 1^T) + b2 1^T.

    A pre-activation may overflow to -inf (a steep unit far below its threshold); the ReLU makes it
    0, so that is not reported. Anything non-finite that reaches X is the health check's business.
    """
    with np.errstate(over="ignore"):
        hidden = np.matmul(layer.w1, X)  # (..., h, n)
    hidden += layer.b1[:, None]
    np.maximum(hidden, 0.0, out=hidden)
    out = np.matmul(layer.w2, hidden)  # (..., d, n)
    out += layer.b2[:, None]
    return X + out


def apply_layer(layer: Layer, X: np.ndarray, mode: Mode) -> np.ndarray:
    if isinstance(layer, AttentionLayer):
        return attention(layer, X, mode)
    return feed_forward(layer, X)


def forward(
    model: LoopedTransformer, X: np.ndarray, mode: Mode = "softmax", observe: Optional[LayerObserver] = None
) -> np.ndarray:
    """One pass through every layer of the model."""
    for index, layer in enumerate(model.layers):
        X = apply_layer(layer, X, mode)
        if observe is not None:
            observe(index, layer, X)
    return X
