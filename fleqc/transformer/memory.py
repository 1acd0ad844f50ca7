"""How much memory one pass of a machine takes, estimated before running it.

The dense pass holds, for each attention layer, the scores of every head at once (H x n x n
float64: H n^2 8 bytes; softmax works in place), and for each feed-forward layer the hidden
activations (h x n) and their output; the residual stream X (d x n) is copied a few times per
layer. The estimate is the largest layer's need plus the weights and those copies. It is an
upper bound for the sparse fast path, which computes the same scores head by head or fewer.
"""

from __future__ import annotations

from fleqc.transformer.executor import AUTO_BUDGET, sparse_pass_cost
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
        return batch * _incremental_bytes(model, columns) + _FLOAT * model.parameter_count()
    if engine == "auto":
        engine_bytes = estimate_run_bytes(model, columns, batch, "incremental")
        if sparse_pass_cost(model, columns) > AUTO_BUDGET:
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
    return _FLOAT * (batch * (largest + _X_COPIES * d * n) + model.parameter_count())


def _incremental_bytes(model: LoopedTransformer, n: int) -> int:
    """The incremental engine: L + 1 copies of X, and per kept head its query/key/value caches, two
    indices (sorted vectors twice, run ends, a dozen integer arrays) and its group results."""
    total = (len(model.layers) + 1) * model.width * n
    for layer in model.layers:
        if isinstance(layer, AttentionLayer):
            H, dk, _ = layer.query.shape
            dv = layer.value.shape[1]
            total += H * n * (3 * dk + dv + 2 * (2 * dk + dk) + 3 * dv + 30)
    return _FLOAT * total
