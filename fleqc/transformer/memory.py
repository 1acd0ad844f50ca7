"""How much memory one pass of a machine takes, estimated before running it.

The dense pass holds, for each attention layer, the scores of every head at once (H x n x n
float64: H n^2 8 bytes; softmax works in place), and for each feed-forward layer the hidden
activations (h x n) and their output; the residual stream X (d x n) is copied a few times per
layer. The estimate is the largest layer's need plus the weights and those copies. It is an
upper bound for the sparse fast path, which computes the same scores head by head or fewer.
"""

from __future__ import annotations

import numpy as np

from fleqc.transformer.executor import sparse_passes
from fleqc.transformer.layers import AttentionLayer, LoopedTransformer

_FLOAT = 8  # bytes
_X_COPIES = 6  # X, its layer outputs, the previous pass kept for the fixed-point test, the caller's


def estimate_run_bytes(model: LoopedTransformer, columns: int, batch: int = 1, engine: str = "dense") -> int:
    """Bytes needed to run ``model`` on ``batch`` cards of ``columns`` columns (an estimate).

    ``engine``: dense or sparse (the scores of a layer: n^2 per head), incremental (every layer's
    output and per head its caches and indices: linear in n), or auto (sparse passes only while
    they are cheap, so the larger of the two where it runs any).
    """
    if engine == "incremental":
        return batch * _incremental_bytes(model, columns) + model.stored_bytes()
    if engine == "auto":
        engine_bytes = estimate_run_bytes(model, columns, batch, "incremental")
        if not sparse_passes(model, columns):
            return engine_bytes
        return max(engine_bytes, estimate_run_bytes(model, columns, batch, "dense"))
    n, d = columns, model.width
    largest = 0
    for layer in model.layers:
        if isinstance(layer, AttentionLayer):
            H, dk, _ = layer.query.shape
            dv = layer.value.shape[1]
            need = H * n * n + 2 * H * dk * n + 2 * H * dv * n
        else:
            need = 2 * layer.hidden * n
        largest = max(largest, need)
    # the dense pass makes the dense weights; the sparse path keeps the nonzeros, twice (its own form)
    weights = _FLOAT * model.parameter_count() if engine == "dense" else 2 * model.stored_bytes()
    return _FLOAT * batch * (largest + _X_COPIES * d * n) + weights


def _incremental_bytes(model: LoopedTransformer, n: int) -> int:
    """The incremental engine: its state (X, and per layer the rows it writes), two copies of X
    during the first pass, every feed-forward layer's hidden units per column, and per kept head
    its query/key/value caches, two indices (sorted vectors twice, run ends, a dozen integer
    arrays) and its group results."""
    total = 3 * model.width * n
    for layer in model.layers:
        if not isinstance(layer, AttentionLayer):
            written = int(np.count_nonzero((np.diff(layer.w2_sparse.ptr) > 0) | (layer.b2 != 0)))
            total += (layer.hidden + written) * n  # its hidden units per column, kept from pass to pass
        else:
            total += int(np.count_nonzero(np.any(layer.output != 0, axis=(0, 2)))) * n
            H, dk, _ = layer.query.shape
            dv = layer.value.shape[1]
            total += H * n * (3 * dk + dv + 2 * (2 * dk + dk) + 3 * dv + 30)
    return _FLOAT * total
