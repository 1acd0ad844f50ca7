"""The forward pass and the loop. Nothing else computes anything in a fleqc machine.

``forward`` applies every layer once; ``run`` applies ``forward`` until X stops changing (a fixed
point: the machine has halted) or a step limit is reached. X may carry leading batch axes:
shape (..., d, n); every card in a batch runs through the same weights.

Attention modes over the same weights:

- ``softmax``: the definition, computed stably (the column maximum is subtracted before exp).
- ``hardmax``: the limit of softmax as the temperature grows: each query column puts weight 1/t on
  each of the t keys that tie for the highest score, 0 elsewhere.

``run`` and ``run_batch`` take ``fast=True`` to loop :func:`fleqc.transformer.fast.fast_forward`
instead: the same function evaluated through the nonzeros of the weights (see that module).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Optional

import numpy as np

from fleqc.transformer.layers import AttentionLayer, FeedForwardLayer, Layer, LoopedTransformer

Mode = Literal["softmax", "hardmax"]
MODES: tuple[Mode, ...] = ("softmax", "hardmax")

LayerObserver = Callable[[int, Layer, np.ndarray], None]
StepCheck = Callable[[np.ndarray, int], None]


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


def _pass_function(model: LoopedTransformer, mode: Mode, fast: bool) -> Callable[[np.ndarray], np.ndarray]:
    """X -> one pass of ``model``: :func:`forward`, or the precompiled sparse form if ``fast``."""
    if not fast:
        return lambda X: forward(model, X, mode)
    from fleqc.transformer.fast import compile_fast, fast_forward  # fast imports this module

    compiled = compile_fast(model)
    return lambda X: fast_forward(compiled, X, mode)


@dataclass(frozen=True)
class RunOutcome:
    """The final X, the number of passes that changed X, and whether a fixed point was reached."""

    X: np.ndarray
    steps: int
    halted: bool


def run(
    model: LoopedTransformer,
    X: np.ndarray,
    *,
    max_steps: int,
    mode: Mode = "softmax",
    check: Optional[StepCheck] = None,
    on_step: Optional[Callable[[int, np.ndarray], None]] = None,
    fast: bool = False,
) -> RunOutcome:
    """Loop ``forward`` until X is a fixed point or ``max_steps`` passes have changed it.

    A pass that leaves X exactly unchanged is not counted: ``steps`` counts the passes that changed
    X. After ``max_steps`` changing passes, one more pass tells whether the machine halted right
    there. ``check(X, step)`` runs after every changing pass (health checks raise there);
    ``on_step(step, X)`` observes the state (lockstep tests, traces). ``fast`` evaluates each pass
    through the nonzeros of the weights (:mod:`fleqc.transformer.fast`).
    """
    step = _pass_function(model, mode, fast)
    X = np.array(X, dtype=np.float64)
    steps = 0
    while True:
        Y = step(X)
        if np.array_equal(Y, X):
            return RunOutcome(X, steps, halted=True)
        if steps == max_steps:
            return RunOutcome(X, steps, halted=False)
        steps += 1
        if check is not None:
            check(Y, steps)
        if on_step is not None:
            on_step(steps, Y)
        X = Y


@dataclass(frozen=True)
class BatchOutcome:
    """Per card of a batch: the final X, the passes that changed it, whether it reached a fixed point."""

    X: np.ndarray  # (B, d, n)
    steps: np.ndarray  # (B,) int
    halted: np.ndarray  # (B,) bool


def run_batch(
    model: LoopedTransformer, X: np.ndarray, *, max_steps: int, mode: Mode = "softmax", fast: bool = False
) -> BatchOutcome:
    """:func:`run` for a batch of cards (B, d, n) on the same weights, in one product per layer.

    Each card stops at its own fixed point (or after ``max_steps`` changing passes, then one more
    pass tells whether it halted right there); the cards still running are stepped together.
    ``fast`` as in :func:`run`.
    """
    step = _pass_function(model, mode, fast)
    X = np.array(X, dtype=np.float64)
    batch = X.shape[0]
    steps = np.zeros(batch, dtype=np.int64)
    halted = np.zeros(batch, dtype=bool)
    running = np.arange(batch)
    while running.size:
        Y = step(X[running])
        fixed = np.all(Y == X[running], axis=(1, 2))
        halted[running[fixed]] = True
        out_of_steps = ~fixed & (steps[running] == max_steps)
        moving = ~fixed & ~out_of_steps
        X[running[moving]] = Y[moving]
        steps[running[moving]] += 1
        running = running[moving]
    return BatchOutcome(X, steps, halted)
