"""The incremental engine: the same pass as :func:`executor.forward`, at a cost that follows what changes.

A looped transformer that runs a program changes few columns of X per pass (the scratchpad, the
written cell, a machine's lanes). The engine keeps, for every layer, its output from the previous
pass and recomputes only what can differ:

- **Feed-forward layers** act on each column alone: only the columns whose input changed are
  recomputed, through the nonzeros of W1 and W2 (:func:`kernels.feed_forward_columns`).
- **Attention layers** keep, per head, every column's query, key and value (like a key-value
  cache), an index of the keys and an index of the queries (:mod:`kernels`: a sorted implicit trie
  searched with exact upper bounds). Columns with identical queries form one *group* whose
  attention is computed once. A group's output is recomputed when its query changed or when a key
  or value that changed can carry weight for it (found by searching the query index with the old
  and the new key), never otherwise.

Exactness: which weights are skipped
------------------------------------
Softmax weights are exp(s - max) / Z. A key whose score is more than ``REACH`` = 750 below its
query's maximum gets exp(< -750) = 0.0 exactly in float64 (the smallest subnormal is e^-744.4),
so the dense pass multiplies its value by exactly 0.0; the engine leaves that term out, which is
exact for finite values (the only difference an exact zero can make is the sign of a zero sum).
In hardmax mode the weights off the tying keys are 0 by definition. Every weight that is not
exactly 0 is computed as the dense pass computes it: exp(s - max) over the same scores, divided by
the same normaliser. The index only decides *which* keys to score, and it is exact: a subtree is
skipped only if an upper bound of every score in it is below the threshold.

What may still differ from the dense pass is the summation order of a sum of three or more nonzero
terms (a query with three or more keys of nonzero weight, a feed-forward row with several nonzero
products, the scores themselves). Where every such sum is exact in float64, as in the SUBLEQ
machine (integers and halves, one key of weight 1 per query), the engine's X is bit-for-bit the
dense X after every pass; elsewhere it agrees to rounding (tests/test_engine.py measures both).

Non-finite values: 0 * inf is NaN, so the dense pass spreads an inf of X to other outputs. A
feed-forward column whose input or hidden vector is not finite is recomputed by the dense layer;
an attention layer that sees a non-finite input ends incremental evaluation: the pass is redone
by the dense definition and so is every later pass (``stats.fallbacks`` counts these).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from fleqc.transformer import kernels
from fleqc.transformer.executor import MODES, Mode, apply_layer, feed_forward, forward
from fleqc.transformer.layers import AttentionLayer, FeedForwardLayer, LoopedTransformer

REACH = 750.0  # softmax: a key this far below the best score has weight exp(-750) = 0.0 exactly
SLACK = 1e-9  # relative slack of the index's bounds (rounding of a bound computed in another order)


def _csr(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row pointers, column indices and values of the nonzeros of ``matrix``, row by row."""
    rows, cols = np.nonzero(matrix)
    ptr = np.zeros(matrix.shape[0] + 1, dtype=np.int64)
    np.add.at(ptr, rows + 1, 1)
    return np.cumsum(ptr), cols.astype(np.int64), matrix[rows, cols].astype(np.float64)


class VectorIndex:
    """Every column's vector (a key or a query of one head), searchable by score, updated in place.

    The index is a snapshot of the vectors, sorted (see :mod:`kernels`); a column whose vector
    later differs from its snapshot is *stale*: it leaves its leaf (``live`` counts the members
    still indexed) and joins ``overflow``, which every search scans directly. When the overflow
    grows past ``rebuild_at`` the snapshot is rebuilt. With ``values`` (a key index), a leaf
    also knows whether its live members share one value (``uniform``, ``leaf_value``), so a leaf of
    many identical keys and values is weighed once.
    """

    def __init__(self, vectors: np.ndarray, values: Optional[np.ndarray] = None) -> None:
        self.n = vectors.shape[0]
        self.rebuild_at = max(64, self.n // 16)
        self.build(vectors, values)

    def build(self, vectors: np.ndarray, values: Optional[np.ndarray] = None) -> None:
        n, D = vectors.shape
        varying = np.any(vectors != vectors[:1], axis=0) if n else np.zeros(D, dtype=bool)
        self.comps = np.flatnonzero(varying).astype(np.int64)
        self.const_comps = np.flatnonzero(~varying).astype(np.int64)
        self.const_vals = vectors[0, self.const_comps].copy() if n else np.zeros(0)
        reduced = vectors[:, self.comps]
        perm = np.lexsort(reduced.T[::-1]) if self.comps.size else np.arange(n)
        self.perm = perm.astype(np.int64)
        self.pos_of = np.empty(n, dtype=np.int64)
        self.pos_of[self.perm] = np.arange(n)
        self.S = np.ascontiguousarray(reduced[self.perm])
        self.full = np.ascontiguousarray(vectors[self.perm])
        Dc = self.comps.size
        self.ends = np.empty((Dc, n), dtype=np.int64)
        differs = np.zeros(max(n - 1, 0), dtype=bool)
        for t in range(Dc):
            differs |= self.S[1:, t] != self.S[:-1, t]
            starts = np.concatenate(([0], np.flatnonzero(differs) + 1, [n]))
            self.ends[t] = starts[np.searchsorted(starts, np.arange(n), side="right")]
        leaf_starts = np.concatenate(([0], np.flatnonzero(differs) + 1)) if n else np.zeros(0, dtype=np.int64)
        self.leaf_start = leaf_starts.astype(np.int64)
        self.leaf_end = np.append(leaf_starts[1:], n).astype(np.int64)
        self.leaf_of = (np.searchsorted(leaf_starts, np.arange(n), side="right") - 1).astype(np.int64)
        self.live = (self.leaf_end - self.leaf_start).astype(np.int64)
        self.ones = np.ones_like(self.live)
        self.cmin = self.S.min(axis=0) if n else np.zeros(Dc)
        self.cmax = self.S.max(axis=0) if n else np.zeros(Dc)
        self.stale = np.zeros(n, dtype=np.bool_)
        self.overflow: list[int] = []
        if values is not None:
            sorted_values = values[self.perm]
            self.leaf_value = np.ascontiguousarray(sorted_values[self.leaf_start])
            same = np.all(sorted_values == self.leaf_value[self.leaf_of], axis=1)
            self.uniform = np.logical_and.reduceat(same, self.leaf_start) if n else np.zeros(0, dtype=np.bool_)
        else:
            self.leaf_value = np.zeros((len(self.leaf_start), 0))
            self.uniform = np.ones(len(self.leaf_start), dtype=np.bool_)

    @property
    def leaves(self) -> int:
        return len(self.leaf_start)

    def overflow_array(self) -> np.ndarray:
        return np.array(self.overflow, dtype=np.int64)

    def leaf(self, column: int) -> int:
        return int(self.leaf_of[self.pos_of[column]])

    def snapshot(self, column: int) -> np.ndarray:
        return self.full[self.pos_of[column]]

    def update(self, column: int, vector: np.ndarray, value: Optional[np.ndarray] = None) -> None:
        """Column ``column`` now holds ``vector`` (and ``value``): keep leaves and overflow right."""
        back = bool(np.array_equal(vector, self.snapshot(column)))
        leaf = self.leaf(column)
        if not self.stale[column]:
            if back:  # same vector: only the value can have changed
                if value is not None:
                    self._value_changed(leaf, value, joined=False)
                return
            self.stale[column] = True
            self.live[leaf] -= 1
            self.overflow.append(column)
        elif back:
            self.stale[column] = False
            self.overflow.remove(column)
            self.live[leaf] += 1
            if value is not None:
                self._value_changed(leaf, value, joined=True)

    def _value_changed(self, leaf: int, value: np.ndarray, joined: bool) -> None:
        if self.live[leaf] == 1:
            self.leaf_value[leaf] = value
            self.uniform[leaf] = True
        elif self.uniform[leaf] and not np.array_equal(value, self.leaf_value[leaf]):
            self.uniform[leaf] = False

    def update_many(self, columns: np.ndarray, vectors: np.ndarray, values: Optional[np.ndarray] = None) -> None:
        """:meth:`update` for many columns; the common case (same vector, a leaf of one) vectorised."""
        pos = self.pos_of[columns]
        leaf = self.leaf_of[pos]
        simple = np.all(vectors == self.full[pos], axis=1) & ~self.stale[columns] & (self.live[leaf] == 1)
        if values is not None and simple.any():
            self.leaf_value[leaf[simple]] = values[simple]
            self.uniform[leaf[simple]] = True
        for i in np.flatnonzero(~simple):
            self.update(int(columns[i]), vectors[i], None if values is None else values[i])

    def members(self, leaf: int) -> np.ndarray:
        cols = self.perm[self.leaf_start[leaf] : self.leaf_end[leaf]]
        return cols[~self.stale[cols]]

    def kernel_args(self, all_live: bool = False) -> tuple:
        """The index as the kernels take it; ``all_live`` counts every leaf as live (a search for the
        query groups a key change affects must find the groups that are empty now too)."""
        live = self.ones if all_live else self.live
        return (self.comps, self.const_comps, self.const_vals, self.S, self.full, self.ends, self.cmin,
                self.cmax, self.leaf_of, live)


@dataclass
class HeadState:
    """One head's projections (restricted to the rows they read), caches and indices."""

    wq: np.ndarray  # (dk, len(reads))
    wk: np.ndarray
    wv: np.ndarray  # (dv, len(reads))
    Q: np.ndarray = field(default=None)  # (n, dk) every column's query
    K: np.ndarray = field(default=None)
    V: np.ndarray = field(default=None)  # (n, dv)
    keys: VectorIndex = field(default=None)
    queries: VectorIndex = field(default=None)
    leaf_best: np.ndarray = field(default=None)  # per query leaf: its best score
    leaf_result: np.ndarray = field(default=None)  # per query leaf: (dv,) attention output
    leaf_valid: np.ndarray = field(default=None)
    col_best: np.ndarray = field(default=None)  # per column (used while its query is in the overflow)
    col_result: np.ndarray = field(default=None)
    least_best: float = np.inf  # a lower bound of every group's best score


class AttentionState:
    def __init__(self, layer: AttentionLayer) -> None:
        _, dk, d = layer.query.shape
        dv = layer.value.shape[1]
        live = np.any(layer.value != 0, axis=2) & np.any(layer.output != 0, axis=1)  # (H, dv)
        self.kept = np.flatnonzero(live.any(axis=1))
        self.layer, self.dk, self.dv = layer, dk, dv
        value = layer.value[self.kept] * live[self.kept][:, :, None]
        output = layer.output[self.kept].transpose(1, 0, 2).reshape(d, len(self.kept) * dv)
        output = output * live[self.kept].reshape(1, -1)
        self.rows = np.flatnonzero(np.any(output != 0, axis=1))
        self.output = np.ascontiguousarray(output[self.rows])  # (len(rows), H*dv)
        stacked = np.concatenate([layer.query[self.kept], layer.key[self.kept], value], axis=1)  # (H, 2dk+dv, d)
        self.reads = np.flatnonzero(np.any(stacked != 0, axis=(0, 1)))
        self.proj = np.ascontiguousarray(stacked[:, :, self.reads].reshape(-1, len(self.reads)))
        self.heads = [HeadState(None, None, None) for _ in self.kept]

    def project(self, X: np.ndarray, cols) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Queries, keys, values of columns ``cols``: (H, c, dk), (H, c, dk), (H, c, dv)."""
        sub = X[self.reads][:, cols]
        out = (self.proj @ sub).reshape(len(self.kept), 2 * self.dk + self.dv, -1).transpose(0, 2, 1)
        return out[:, :, : self.dk], out[:, :, self.dk : 2 * self.dk], out[:, :, 2 * self.dk :]


@dataclass
class EngineStats:
    """What the engine did: passes, columns recomputed per layer, fallbacks, time per layer (s)."""

    passes: int = 0
    fallbacks: int = 0
    columns: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    rebuilds: int = 0

    def to_json(self) -> dict:
        return {"passes": self.passes, "fallbacks": self.fallbacks, "index_rebuilds": self.rebuilds,
                "columns_recomputed_per_layer": list(self.columns),
                "seconds_per_layer": [round(s, 6) for s in self.seconds]}


class IncrementalEngine:
    """Runs passes of ``model`` over one card X (d, n), incrementally (see the module docstring).

    ``step()`` performs one pass and returns the columns it changed (empty at a fixed point); ``X``
    is the current state (the engine's own array: copy it to keep it).
    """

    def __init__(self, model: LoopedTransformer, X: np.ndarray, mode: Mode = "softmax") -> None:
        if mode not in MODES:
            raise ValueError(f"unknown attention mode {mode!r}; use one of {MODES}")
        if X.ndim != 2:
            raise ValueError("the incremental engine runs one card (d x n) at a time")
        self.model, self.mode = model, mode
        self.hardmax = mode == "hardmax"
        self.reach = 0.0 if self.hardmax else REACH
        L = len(model.layers)
        self.states: list = []
        for layer in model.layers:
            if isinstance(layer, AttentionLayer):
                self.states.append(AttentionState(layer))
            else:
                self.states.append((_csr(layer.w1), layer.b1.astype(np.float64), _csr(layer.w2),
                                    layer.b2.astype(np.float64)))
        X = np.array(X, dtype=np.float64)
        self.A = [None] * (L - 1) + [X]  # A[l]: output of layer l (A[-1]: also the next pass's input)
        self.n = X.shape[1]
        self.dense = False
        self.stats = EngineStats(columns=[0] * L, seconds=[0.0] * L)
        self._first = True

    @property
    def X(self) -> np.ndarray:
        return self.A[-1]

    def step(self) -> np.ndarray:
        """One pass; returns the (sorted) columns of X it changed."""
        self.stats.passes += 1
        if self.dense:
            return self._dense_step()
        X_in = self.A[-1]  # the pass's input; only the last layer writes it, after reading everything
        dirty = np.arange(self.n) if self._first else self._changed
        for index, (layer, state) in enumerate(zip(self.model.layers, self.states)):
            start = time.perf_counter()
            prev = self.A[index - 1] if index else X_in
            if isinstance(layer, AttentionLayer):
                if not np.all(np.isfinite(prev[:, dirty])):
                    self.stats.fallbacks += 1
                    self.dense = True
                    return self._dense_step()
                dirty = self._attention(state, index, prev, dirty)
            else:
                dirty = self._feed_forward(layer, state, index, prev, dirty)
            self.stats.columns[index] += len(dirty)
            self.stats.seconds[index] += time.perf_counter() - start
        self._first = False
        self._changed = dirty
        return dirty

    def _dense_step(self) -> np.ndarray:
        X = self.A[-1]
        Y = forward(self.model, X, self.mode)
        changed = np.flatnonzero(np.any(Y != X, axis=0))
        self.A = [None] * (len(self.A) - 1) + [Y]
        return changed

    # -- feed-forward ----------------------------------------------------------------------------

    def _feed_forward(self, layer: FeedForwardLayer, state, index: int, prev: np.ndarray, cols: np.ndarray):
        (p1, i1, v1), b1, (p2, i2, v2), b2 = state
        out = np.empty((prev.shape[0], len(cols)))
        if not kernels.feed_forward_columns(prev, cols, p1, i1, v1, b1, p2, i2, v2, b2, out):
            with np.errstate(over="ignore", invalid="ignore"):
                out = feed_forward(layer, prev[:, cols])
        return self._store(index, cols, out)

    def _store(self, index: int, cols: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Write the recomputed columns ``cols`` of layer ``index``; return those that changed."""
        if self.A[index] is None:  # the first pass: every column is new
            self.A[index] = np.empty_like(self.A[-1])
            self.A[index][:, cols] = out
            return cols
        changed = np.any(self.A[index][:, cols] != out, axis=0)
        if changed.any():
            self.A[index][:, cols[changed]] = out[:, changed]
        return cols[changed]

    # -- attention -------------------------------------------------------------------------------

    def _attention(self, state: AttentionState, index: int, prev: np.ndarray, dirty: np.ndarray) -> np.ndarray:
        if not state.kept.size or (not self._first and not dirty.size):
            return self._store(index, dirty, prev[:, dirty])
        if self._first:
            self._attention_init(state, prev)
            out_cols = np.arange(self.n)
        else:
            q, k, v = state.project(prev, dirty)
            touched = [dirty] + [self._head_update(head, dirty, q[h], k[h], v[h]) for h, head in enumerate(state.heads)]
            out_cols = np.unique(np.concatenate(touched))
        results = np.concatenate([self._results(head, out_cols) for head in state.heads], axis=1)  # (c, H*dv)
        out = prev[:, out_cols]
        out[state.rows] += state.output @ results.T
        return self._store(index, out_cols, out)

    def _results(self, head: HeadState, cols: np.ndarray) -> np.ndarray:
        idx = head.queries
        leaf = idx.leaf_of[idx.pos_of[cols]]
        stale = idx.stale[cols]
        return np.where(stale[:, None], head.col_result[cols], head.leaf_result[leaf])

    def _attend(self, head: HeadState, probes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keys = head.keys
        best = np.empty(len(probes))
        result = np.empty((len(probes), head.V.shape[1]))
        ov = keys.overflow_array()
        kernels.attend(np.ascontiguousarray(probes), *keys.kernel_args(), keys.uniform, keys.leaf_value,
                       keys.leaf_start, keys.leaf_end, keys.perm, keys.stale, ov, len(ov), head.K, head.V,
                       self.reach, self.hardmax, SLACK, best, result)
        if len(best):
            head.least_best = min(head.least_best, float(best.min()))
        return best, result

    def _attention_init(self, state: AttentionState, X: np.ndarray) -> None:
        q, k, v = state.project(X, slice(None))
        for h, head in enumerate(state.heads):
            head.Q, head.K, head.V = (np.ascontiguousarray(a) for a in (q[h], k[h], v[h]))
            head.keys = VectorIndex(head.K, head.V)
            self._index_queries(head)

    def _index_queries(self, head: HeadState) -> None:
        head.queries = VectorIndex(head.Q)
        probes = head.queries.full[head.queries.leaf_start]
        head.least_best = np.inf
        head.leaf_best, head.leaf_result = self._attend(head, probes)
        head.leaf_valid = np.ones(head.queries.leaves, dtype=bool)
        if head.col_best is None:
            head.col_best = np.zeros(self.n)
            head.col_result = np.zeros((self.n, head.V.shape[1]))

    def _head_update(self, head: HeadState, cols: np.ndarray, q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Bring one head up to date with the new q, k, v of ``cols``; return the columns whose
        attention output (or group) changed."""
        qidx, kidx = head.queries, head.keys
        touched = [np.zeros(0, dtype=np.int64)]
        kv = np.any(k != head.K[cols], axis=1) | np.any(v != head.V[cols], axis=1)
        if kv.any():
            kcols = cols[kv]
            old = head.K[kcols]
            moved_key = np.any(k[kv] != old, axis=1)
            probes = np.concatenate([old, k[kv][moved_key]])
            out = np.empty(qidx.leaves, dtype=np.int64)
            count = kernels.affected(probes, *qidx.kernel_args(all_live=True), head.leaf_best,
                                     head.least_best - self.reach, self.reach, SLACK, out)
            leaves = out[:count]
            head.K[kcols], head.V[kcols] = k[kv], v[kv]
            kidx.update_many(kcols, k[kv], v[kv])
        else:
            leaves = np.zeros(0, dtype=np.int64)
        qc = np.any(q != head.Q[cols], axis=1)
        if qc.any():
            qcols = cols[qc]
            head.Q[qcols] = q[qc]
            qidx.update_many(qcols, q[qc])
            touched.append(qcols)
            back = qcols[~qidx.stale[qcols]]
            if back.size:
                back_leaves = qidx.leaf_of[qidx.pos_of[back]]
                leaves = np.union1d(leaves, back_leaves[~head.leaf_valid[back_leaves]])
        if len(kidx.overflow) > kidx.rebuild_at:
            kidx.build(head.K, head.V)
            self.stats.rebuilds += 1
        if len(qidx.overflow) > qidx.rebuild_at:
            self._index_queries(head)
            self.stats.rebuilds += 1
            return np.arange(self.n)
        if leaves.size:
            leaves = np.unique(leaves)
            alive = qidx.live[leaves] > 0
            head.leaf_valid[leaves[~alive]] = False
            leaves = leaves[alive]
            if leaves.size:
                best, result = self._attend(head, qidx.full[qidx.leaf_start[leaves]])
                head.leaf_valid[leaves] = True
                head.leaf_best[leaves] = best
                moved = np.any(result != head.leaf_result[leaves], axis=1)
                head.leaf_result[leaves] = result
                for leaf in leaves[moved]:
                    touched.append(qidx.members(int(leaf)))
        if qidx.overflow:
            ov = qidx.overflow_array()
            best, result = self._attend(head, head.Q[ov])
            moved = np.any(result != head.col_result[ov], axis=1)
            head.col_best[ov] = best
            head.col_result[ov] = result
            touched.append(ov[moved])
        return np.concatenate(touched)
