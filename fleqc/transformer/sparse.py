"""A faster evaluation of a looped transformer's pass: the same function, sparse feed-forward products.

The machines fleqc builds have feed-forward matrices that are almost all zeros: each hidden unit
reads a handful of rows of X and each row of X receives a handful of units. ``compile_fast``
turns a :class:`LoopedTransformer` once into a :class:`FastModel`; ``fast_forward`` is then a
drop-in for :func:`fleqc.transformer.executor.forward` (``run(..., engine="sparse")`` uses it, and
``engine="auto"`` for the first passes of a run).

Representation
--------------
A sparse (m, d) matrix M is a :class:`SparseRows`: its nonzero rows grouped by their number k of
nonzeros; a group holds the row indices (g,), the column indices (g, k) and the coefficients
(g, k) in column order. ``M X`` for the rows of a group is one gather ``X[..., cols, :]``
(..., g, k, n), one product with the coefficients and one sum over the k axis: no reduceat, no
empty rows to special-case, and the same result every time.

- Feed-forward layer: W1's hidden units are reordered group by group (units with no nonzero come
  first, as the group k = 0); b1 and W2's columns follow the same order, so the hidden vector is
  the concatenation of the group results. A reordering of hidden units is not a change of
  function. W2 is stored by its nonzero rows; the rows it never writes get ``X + b2`` (or X).
- A feed-forward layer whose matrices are not sparse (more than ``SPARSE_BELOW`` of their entries
  nonzero, e.g. the SUBLEQ ALU) stays the dense layer, evaluated by the executor itself: there a
  BLAS product beats many small gathers.
- Attention layer: the dense math of :func:`executor.attention` (the same products, scores,
  softmax/hardmax and value mixing) on matrices reshaped once and restricted to what can be
  nonzero: a (head, value-row) pair is kept only if its value row and its output column are both
  nonzero, a head with no such pair is dropped (its Q, K and scores are not computed); Q, K and V
  are one stacked product over only the rows of X they read (a gather, then a small dense
  product), and only the rows of X that O writes are updated.

Why it is the same function
---------------------------
Every dropped term is an exact zero (a zero weight times a finite number) and adding an exact zero
changes nothing, so each output entry is a sum of the very same nonzero products as in the dense
pass, possibly in a different order. The only possible differences are therefore the rounding of
a different summation order (a few ulps in a row that sums three or more nonzero terms; none where
the sums are exact, as in the SUBLEQ machine's integer arithmetic) and the sign of a zero.

The one place where zeros are not neutral is a non-finite value: 0 * inf is NaN, so the dense
product spreads an inf or NaN of X (or of a hidden unit) to every output. To stay the same
function there too, a layer whose input (or hidden vector, or attention scores) is not finite is
evaluated by the dense executor instead.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Union

import numpy as np

from fleqc.transformer.dense import MODES, Mode, apply_layer, attention_weights
from fleqc.transformer.layers import AttentionLayer, FeedForwardLayer, Layer, LoopedTransformer, SparseMatrix


def _finite(A: np.ndarray) -> bool:
    """Whether every entry of A is finite (a sum that overflows only sends a layer the dense way)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(A.sum()))


def _distinct(counts: np.ndarray) -> np.ndarray:
    """The distinct values of ``counts`` (nonnegative integers), ascending: np.unique's answer
    without its first call importing numpy.ma (7 ms of every command's start-up)."""
    return np.flatnonzero(np.bincount(counts)) if len(counts) else np.zeros(0, dtype=np.intp)


@dataclass(frozen=True)
class SparseRows:
    """The nonzero rows of an (m, d) matrix, grouped by their count k of nonzeros.

    ``groups``: (rows (g,), cols (g, k), coef (g, k, 1)) per k, ascending k; k = 0 only where
    asked for (all rows kept). ``rows`` is the concatenation of the groups' rows: the order in
    which :meth:`apply` returns them.
    """

    groups: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]
    rows: np.ndarray

    @staticmethod
    def of(matrix: np.ndarray, keep_empty: bool) -> "SparseRows":
        counts = np.count_nonzero(matrix, axis=1)
        groups = []
        for k in _distinct(counts):
            if k == 0 and not keep_empty:
                continue
            rows = np.flatnonzero(counts == k)
            cols = np.array([np.flatnonzero(matrix[r]) for r in rows], dtype=np.intp).reshape(len(rows), k)
            coef = np.take_along_axis(matrix[rows], cols, axis=1)[:, :, None]
            groups.append((rows, cols, coef))
        rows = np.concatenate([g[0] for g in groups]) if groups else np.zeros(0, dtype=np.intp)
        return SparseRows(tuple(groups), rows)

    @staticmethod
    def of_sparse(matrix: SparseMatrix, keep_empty: bool) -> "SparseRows":
        """:meth:`of` from the nonzeros (each row's columns ascending, as np.flatnonzero gives them)."""
        counts = np.diff(matrix.ptr)
        groups = []
        for k in _distinct(counts):
            if k == 0 and not keep_empty:
                continue
            rows = np.flatnonzero(counts == k)
            at = (matrix.ptr[rows][:, None] + np.arange(k)[None, :]).reshape(len(rows), k)
            cols = matrix.idx[at].astype(np.intp).reshape(len(rows), k)
            coef = matrix.val[at].reshape(len(rows), k)[:, :, None]
            groups.append((rows, cols, coef))
        rows = np.concatenate([g[0] for g in groups]) if groups else np.zeros(0, dtype=np.intp)
        return SparseRows(tuple(groups), rows)

    def apply_groups(self, X: np.ndarray):
        """Yield (rows, (M X)[..., rows, :]) per group; X (..., d, n)."""
        batch, n = X.shape[:-2], X.shape[-1]
        for rows, cols, coef in self.groups:
            k = cols.shape[1]
            if k == 0:
                yield rows, np.zeros(batch + (len(rows), n))
                continue
            terms = X[..., cols, :]  # (..., g, k, n)
            terms *= coef
            yield rows, (terms[..., 0, :] if k == 1 else terms.sum(axis=-2))

    def apply(self, X: np.ndarray) -> np.ndarray:
        """(M X)[..., self.rows, :] as one (..., len(rows), n) array."""
        parts = [part for _, part in self.apply_groups(X)]
        if not parts:
            return np.zeros(X.shape[:-2] + (0, X.shape[-1]))
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-2)


@dataclass(frozen=True)
class FastFeedForward:
    """W1 by hidden unit (all units, reordered group by group), b1 in that order, W2 by nonzero row."""

    layer: FeedForwardLayer
    w1: SparseRows
    b1: np.ndarray  # (h,) in w1.rows order
    w2: SparseRows  # over the reordered hidden units
    b2_rows: np.ndarray  # rows that W2 never writes but b2 does
    b2: np.ndarray  # (d, 1)


@dataclass(frozen=True)
class FastAttention:
    """The kept heads' Q, K, V matrices stacked over the rows of X they read; O over the rows it writes."""

    layer: AttentionLayer
    reads: np.ndarray  # the rows of X that Q, K or V read
    qkv: np.ndarray  # (Hk*(2dk+dv), len(reads)): Q, K, V stacked; value rows that cannot contribute zeroed
    output: np.ndarray  # (len(rows), Hk*dv)
    rows: np.ndarray  # the rows of X the layer writes
    heads: int
    dk: int
    dv: int


FastLayer = Union[FastFeedForward, FastAttention, FeedForwardLayer]  # the last: kept dense

SPARSE_BELOW = 0.05  # a feed-forward layer is evaluated sparsely if at most this fraction is nonzero


@dataclass(frozen=True)
class FastModel:
    """A :class:`LoopedTransformer` precompiled for :func:`fast_forward`."""

    model: LoopedTransformer
    layers: tuple[FastLayer, ...]


def _compile_feed_forward(layer: FeedForwardLayer) -> Union[FastFeedForward, FeedForwardLayer]:
    if layer.nonzeros > SPARSE_BELOW * 2 * layer.hidden * layer.width:
        return layer
    w1 = SparseRows.of_sparse(layer.w1_sparse, keep_empty=True)
    order = w1.rows  # hidden unit i of the fast layer is unit order[i] of the dense one
    position = np.empty(layer.hidden, dtype=np.int64)
    position[order] = np.arange(layer.hidden)
    s2 = layer.w2_sparse
    w2 = SparseRows.of_sparse(SparseMatrix.from_entries(s2.shape, s2.row_of_entries(), position[s2.idx], s2.val),
                              keep_empty=False)
    written = np.zeros(layer.width, dtype=bool)
    written[w2.rows] = True
    b2_rows = np.flatnonzero((layer.b2 != 0) & ~written)
    return FastFeedForward(layer, w1, layer.b1[order][:, None], w2, b2_rows, layer.b2[:, None])


def _compile_attention(layer: AttentionLayer) -> FastAttention:
    _, dk, d = layer.query.shape
    dv = layer.value.shape[1]
    # (head, value row) pairs that can contribute: a nonzero value row and a nonzero output column
    live = np.any(layer.value != 0, axis=2) & np.any(layer.output != 0, axis=1)  # (H, dv)
    kept = np.flatnonzero(live.any(axis=1))
    value = layer.value[kept] * live[kept][:, :, None]  # dead value rows -> exact zeros
    output = layer.output[kept].transpose(1, 0, 2).reshape(d, len(kept) * dv)
    output = output * live[kept].reshape(1, -1)
    rows = np.flatnonzero(np.any(output != 0, axis=1))
    qkv = np.concatenate(
        [layer.query[kept].reshape(-1, d), layer.key[kept].reshape(-1, d), value.reshape(-1, d)], axis=0
    )
    reads = np.flatnonzero(np.any(qkv != 0, axis=0))
    return FastAttention(
        layer,
        reads,
        np.ascontiguousarray(qkv[:, reads]),
        np.ascontiguousarray(output[rows]),
        rows,
        len(kept),
        dk,
        dv,
    )


def _compile_layer(layer: Layer) -> FastLayer:
    if isinstance(layer, AttentionLayer):
        return _compile_attention(layer)
    return _compile_feed_forward(layer)


_CACHE: dict[int, tuple[weakref.ref, FastModel]] = {}
_CACHE_SIZE = 8  # the most recently compiled models (a FastModel keeps its model alive)


def compile_fast(model: LoopedTransformer) -> FastModel:
    """The fast form of ``model``, built once per model object (the last few are cached)."""
    entry = _CACHE.get(id(model))
    if entry is not None and entry[0]() is model:
        return entry[1]
    fast = FastModel(model, tuple(_compile_layer(layer) for layer in model.layers))
    while len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[id(model)] = (weakref.ref(model), fast)
    return fast


def fast_feed_forward(f: FastFeedForward, X: np.ndarray) -> np.ndarray:
    """X + W2 ReLU(W1 X + b1) + b2, by the nonzeros of W1 and W2."""
    if not _finite(X):
        return apply_layer(f.layer, X, "softmax")
    with np.errstate(over="ignore"):
        hidden = f.w1.apply(X)  # (..., h, n), units in f.w1.rows order
    hidden += f.b1
    np.maximum(hidden, 0.0, out=hidden)
    if not _finite(hidden):  # an overflow to +inf: 0 * inf must spread as in the dense product
        return apply_layer(f.layer, X, "softmax")
    Y = X.copy()
    for rows, part in f.w2.apply_groups(hidden):
        part += f.b2[rows]
        Y[..., rows, :] += part
    if f.b2_rows.size:
        Y[..., f.b2_rows, :] += f.b2[f.b2_rows]
    return Y


def fast_attention(a: FastAttention, X: np.ndarray, mode: Mode) -> np.ndarray:
    """:func:`executor.attention` over the heads and value rows that can contribute."""
    if a.heads == 0:
        return X.copy()
    if not _finite(X):
        return apply_layer(a.layer, X, mode)
    n = X.shape[-1]
    batch = X.shape[:-2]
    qkv = np.matmul(a.qkv, X[..., a.reads, :])  # (..., Hk*(2dk+dv), n)
    split = a.heads * a.dk
    Q = qkv[..., :split, :].reshape(batch + (a.heads, a.dk, n))
    K = qkv[..., split : 2 * split, :].reshape(batch + (a.heads, a.dk, n))
    V = qkv[..., 2 * split :, :].reshape(batch + (a.heads, a.dv, n))
    scores = np.matmul(np.swapaxes(K, -1, -2), Q)
    if not _finite(scores):
        return apply_layer(a.layer, X, mode)
    A = attention_weights(scores, mode)
    heads = np.matmul(V, A).reshape(batch + (a.heads * a.dv, n))
    Y = X.copy()
    Y[..., a.rows, :] += np.matmul(a.output, heads)
    return Y


def fast_forward(fast: FastModel, X: np.ndarray, mode: Mode = "softmax") -> np.ndarray:
    """One pass through every layer: the same function as ``executor.forward(fast.model, X, mode)``."""
    if mode not in MODES:
        raise ValueError(f"unknown attention mode {mode!r}; use one of {MODES}")
    for layer in fast.layers:
        if isinstance(layer, FastAttention):
            X = fast_attention(layer, X, mode)
        elif isinstance(layer, FastFeedForward):
            X = fast_feed_forward(layer, X)
        else:
            X = apply_layer(layer, X, mode)
    return X
