"""Parameters of a looped transformer: plain dataclasses of numpy arrays (they map onto an .npz).

Shapes (d = residual width = rows of X, n = columns of X):

- AttentionLayer with H heads, key/query width dk, value width dv:
  ``query``, ``key``: (H, dk, d); ``value``: (H, dv, d); ``output``: (H, d, dv).
  Head h computes  scores = (K_h X)^T (Q_h X)           (n_keys x n_queries)
                   A      = softmax over keys, per query column
                   X     += O_h (V_h X) A
  The temperature is folded into ``query``.
- FeedForwardLayer with hidden width h: ``w1`` (h, d), ``b1`` (h,), ``w2`` (d, h), ``b2`` (d,);
  X += W2 ReLU(W1 X + b1 1^T) + b2 1^T. The biases are shared by all columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

import numpy as np


@dataclass(frozen=True)
class AttentionLayer:
    query: np.ndarray
    key: np.ndarray
    value: np.ndarray
    output: np.ndarray
    head_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        H, dk, d = self.query.shape
        if self.key.shape != (H, dk, d):
            raise ValueError(f"key shape {self.key.shape} != query shape {self.query.shape}")
        Hv, dv, dv_in = self.value.shape
        if Hv != H or dv_in != d or self.output.shape != (H, d, dv):
            raise ValueError("value/output shapes do not match the query")

    @property
    def heads(self) -> int:
        return self.query.shape[0]

    @property
    def width(self) -> int:
        return self.query.shape[2]


@dataclass(frozen=True)
class FeedForwardLayer:
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    name: str = ""

    def __post_init__(self) -> None:
        h, d = self.w1.shape
        if self.b1.shape != (h,) or self.w2.shape != (d, h) or self.b2.shape != (d,):
            raise ValueError("feed-forward shapes do not match")

    @property
    def hidden(self) -> int:
        return self.w1.shape[0]

    @property
    def width(self) -> int:
        return self.w1.shape[1]


Layer = Union[AttentionLayer, FeedForwardLayer]


@dataclass(frozen=True)
class LoopedTransformer:
    """A stack of layers applied in a loop to its own output.

    ``row_labels`` names every row of X (for messages and pictures); ``ternary_rows`` lists the rows
    that must hold a value in {-1, 0, +1} between passes (the health check); ``metadata`` is free
    JSON-able data from the builder (machine configuration, constants).
    """

    layers: tuple[Layer, ...]
    row_labels: tuple[str, ...]
    ternary_rows: tuple[int, ...] = ()
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for layer in self.layers:
            if layer.width != self.width:
                raise ValueError(f"layer width {layer.width} != residual width {self.width}")

    @property
    def width(self) -> int:
        return len(self.row_labels)

    def parameter_count(self) -> int:
        total = 0
        for layer in self.layers:
            if isinstance(layer, AttentionLayer):
                total += sum(a.size for a in (layer.query, layer.key, layer.value, layer.output))
            else:
                total += sum(a.size for a in (layer.w1, layer.b1, layer.w2, layer.b2))
        return total
