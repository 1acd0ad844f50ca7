"""The incremental engine: the same pass as :func:`executor.forward`, at a cost that follows what changes.

A looped transformer that runs a program changes few columns of X per pass (the scratchpad, the
written cell, a machine's lanes). The engine keeps every layer's output from the previous pass (on
the rows the layer writes: the state is versioned by row, :mod:`fleqc.transformer.kernels`, so no
layer copies the rows it does not write) and recomputes only what can differ, following the rows
of each column that changed:

- **Feed-forward layers** act on each column alone: only the hidden units that read a changed row
  are recomputed, and only the rows whose units or input changed, through the nonzeros of W1 and W2.
  Consecutive feed-forward layers run as one, column by column within each layer: a changed row
  waits for the next layer that reads or writes it, so a layer visits only the changed rows it uses.
- **Attention layers** keep, per head, every column's query, key and value (like a key-value
  cache), an index of the keys and an index of the queries (:mod:`fleqc.transformer.kernels`: a
  sorted implicit trie searched with exact upper bounds). Columns with identical queries form one
  *group* whose attention is computed once. A group is recomputed when a key or value that changed
  can carry weight for it (found by searching the query index with the old and the new key); a
  column's output is recomputed when its input, its group or its group's result changed.

The per-pass work runs in compiled loops (numba); nothing here knows what the rows of X mean.

Exactness: which weights are skipped
------------------------------------
A softmax weight is exp(s - max) / Z. A key whose score is more than ``REACH`` = 750 below its
query's maximum gets exp(s - max) < e^-750, which is 0.0 in float64 (the smallest subnormal is
e^-744.4): the dense pass multiplies its value by exactly 0.0, and the engine leaves the term out,
which changes nothing for a finite value (at most the sign of a zero sum). In hardmax mode the
weights off the tying keys are 0 by definition. Every weight that is not exactly 0 is computed as
the dense pass computes it: exp(s - max) over the same scores, divided by the same normaliser. The
index only decides *which* keys are scored, and it is exact: a subtree is skipped only when an
upper bound of every score in it lies below the threshold.

What can still differ from the dense pass is the order of a sum of three or more nonzero terms (a
query with three or more keys of nonzero weight, a feed-forward row or a projection with several
nonzero products). Where every such sum is exact in float64, as in the SUBLEQ machine (integers
and halves; one key of weight 1 per query), the engine's X equals the dense X after every pass;
elsewhere the two agree to rounding (tests/test_engine.py checks both).

Non-finite values: 0 * inf is NaN, so the dense pass spreads an inf of X to other outputs. A pass
that meets a non-finite input or hidden unit is abandoned and redone by the dense definition from
its input, and so is every later pass (``stats.fallbacks`` counts this).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from fleqc.transformer import kernels as K
from fleqc.transformer.dense import MODES, Mode
from fleqc.transformer.passes import PassLoop
from fleqc.transformer.layers import AttentionLayer, LoopedTransformer
from fleqc.transformer.compiling import compiling

REACH = 750.0  # softmax: a key this far below the best score has weight exp(-750) = 0.0 exactly
FALLBACK = np.zeros(0, np.int64)  # a pending pass that the dense definition must redo
SLACK = 1e-9  # relative slack of the index's bounds (the rounding of a bound summed in another order)


def _c(a, dtype=None) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=dtype)


def _index(a) -> np.ndarray:
    """``a`` (positions, never negative) as unsigned 32-bit integers: the feed-forward kernels index
    with them, and numba tests a signed index for a negative value (from the end) at every access,
    about a third of the time of a hidden unit."""
    a = np.asarray(a)
    if a.size and (a.min() < 0 or a.max() > np.iinfo(np.uint32).max):
        raise ValueError("a feed-forward layer's positions must lie in 0 .. 2**32 - 1")
    return _c(a, np.uint32)


def _csr(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row pointers, column indices and values of the nonzeros of ``matrix``, row by row."""
    rows, cols = np.nonzero(matrix)
    ptr = np.zeros(matrix.shape[0] + 1, dtype=np.int64)
    np.add.at(ptr, rows + 1, 1)
    return _c(np.cumsum(ptr)), _c(cols, np.int64), _c(matrix[rows, cols], np.float64)


def _csr_entries(n_rows: int, r: np.ndarray, c: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_csr` of the (n_rows, .) matrix holding value v[i] at (r[i], c[i]) (each position at
    most once) and zeros elsewhere: the entries that are nonzero (NaN included), row by row."""
    keep = v != 0
    r, c, v = r[keep], c[keep], v[keep]
    order = np.lexsort((c, r))
    ptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(r, minlength=n_rows), out=ptr[1:])
    return _c(ptr), _c(c[order], np.int64), _c(v[order], np.float64)


def attention_arrays(layer: AttentionLayer):
    """What the engine keeps of an attention layer, from the nonzeros of its weights (no dense
    temporaries: on the FLEQ machine those took about 35 MB of fleqc calc's peak memory): (reads,
    proj, output, rows, kept, dk, dv, d). ``kept``: the heads with a live value row (a nonzero value
    row whose output column is nonzero; a dead one is taken as zeros); ``reads``: the rows of X that
    the kept heads' query, key and live value rows read; ``proj``: those rows stacked per kept head
    (2 dk + dv rows each: query, key, value) over the columns ``reads``, by nonzeros (:func:`_csr`);
    ``rows``: the rows of X the output writes; ``output``: (rows, kept heads x dv), by nonzeros.
    The same arrays as taking the dense weights apart (tests/test_engine.py)."""
    H, dk, d = layer.query.shape
    dv = layer.value.shape[1]
    value_ix = np.nonzero(layer.value)  # (head, value row, row of X)
    output_ix = np.nonzero(layer.output)  # (head, row of X, value row)
    live = layer.live_value_rows()
    kept = np.flatnonzero(live.any(axis=1))
    position = np.full(H, -1, np.int64)
    position[kept] = np.arange(len(kept))
    # the output (d, kept x dv) times the live mask, then its rows that are nonzero
    h, r, j = output_ix
    on = position[h] >= 0
    h, r, j = h[on], r[on], j[on]
    with np.errstate(invalid="ignore"):  # inf x 0 (a dead value row): NaN, as the dense product gives
        ov = layer.output[h, r, j] * live[h, j]
    nz = ov != 0
    rows = np.unique(r[nz])
    row_at = np.full(d, -1, np.int64)
    row_at[rows] = np.arange(len(rows))
    output = _csr_entries(len(rows), row_at[r[nz]], position[h[nz]] * dv + j[nz], ov[nz])
    # query, key and value (times the live mask) of the kept heads, stacked per head
    width = 2 * dk + dv
    parts_r, parts_c, parts_v = [], [], []
    for base, (hh, a, x), weights in ((0, np.nonzero(layer.query), layer.query), (dk, np.nonzero(layer.key), layer.key),
                                      (2 * dk, value_ix, layer.value)):
        on = position[hh] >= 0
        hh, a, x = hh[on], a[on], x[on]
        v = weights[hh, a, x]
        if base == 2 * dk:
            with np.errstate(invalid="ignore"):
                v = v * live[hh, a]
        parts_r.append(position[hh] * width + base + a)
        parts_c.append(x)
        parts_v.append(v)
    pr, pc, pv = (np.concatenate(p) for p in (parts_r, parts_c, parts_v))
    nz = pv != 0
    reads = np.unique(pc[nz])
    read_at = np.full(d, -1, np.int64)
    read_at[reads] = np.arange(len(reads))
    proj = _csr_entries(len(kept) * width, pr[nz], read_at[pc[nz]], pv[nz])
    return reads.astype(np.int64), proj, output, rows.astype(np.int64), kept, dk, dv, d


_trim = []  # glibc's malloc_trim, once looked up (empty list: not yet; [None]: none here)


def return_freed_memory() -> None:
    """Give the heap's freed memory back to the system (glibc's malloc_trim; elsewhere nothing).
    The first pass allocates and frees a few (n, d) arrays per layer; glibc keeps such memory (its
    mmap threshold rises after the first large free), so without this it stays in the process's
    resident memory while the columns' hidden units fill theirs: fleqc calc's peak 315-319 -> 299 MB."""
    if not _trim:
        try:
            import ctypes

            _trim.append(ctypes.CDLL("libc.so.6").malloc_trim)
        except (OSError, AttributeError):
            _trim.append(None)
    if _trim[0] is not None:
        _trim[0](0)
def _transposed(ptr: np.ndarray, idx: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Row pointers and indices of the transpose of a matrix given by its nonzeros row by row (ptr,
    idx; ``width`` columns): for each column, the rows where it is nonzero, in increasing order."""
    rows = np.repeat(np.arange(len(ptr) - 1, dtype=np.int64), np.diff(ptr))
    order = np.argsort(idx, kind="stable")
    counts = np.bincount(idx, minlength=width)
    tptr = np.zeros(width + 1, dtype=np.int64)
    np.cumsum(counts, out=tptr[1:])
    return _c(tptr), _c(rows[order], np.int64)


def _longest_run(kinds: np.ndarray) -> int:
    """The most consecutive feed-forward layers (kind 0) in ``kinds``."""
    longest = run = 0
    for kind in kinds:
        run = run + 1 if kind == 0 else 0
        longest = max(longest, run)
    return longest


def _slots(written: list[np.ndarray], d: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The slots of the versioned state (``kernels``, versioned rows) of layers writing the rows
    ``written[l]`` (a mask each): src (L + 1, d), the slot holding row r at layer l's input (src[L]:
    at the pass's output); dst (L, d), the slot layer l writes row r into (-1: it does not); the
    number of slots (d input slots, then one per layer and row it writes)."""
    L = len(written)
    src = np.zeros((L + 1, d), np.int64)
    dst = np.full((L, d), -1, np.int64)
    src[0] = np.arange(d)
    top = d
    for l, mask in enumerate(written):
        rows = np.flatnonzero(mask)
        dst[l, rows] = top + np.arange(len(rows))
        top += len(rows)
        src[l + 1] = np.where(mask, dst[l], src[l])
    return src, dst, top


def build_index(vectors: np.ndarray, values: np.ndarray, meta: np.ndarray | None = None) -> tuple:
    """The index tuple (fields ``kernels.IX_*``) of one vector per column; ``values`` (n, dv), dv may be 0.

    ``meta`` (1,): where the index counts its overflow (a view into the engine's table of counts)."""
    n, D = vectors.shape
    varying = np.any(vectors != vectors[:1], axis=0) if n else np.zeros(D, dtype=bool)
    comps = np.flatnonzero(varying)
    const_comps = np.flatnonzero(~varying)
    reduced = vectors[:, comps]
    perm = np.lexsort(reduced.T[::-1]) if comps.size else np.arange(n)
    pos_of = np.empty(n, dtype=np.int64)
    pos_of[perm] = np.arange(n)
    S = reduced[perm]
    ends = np.empty((n, comps.size), dtype=np.int64)  # by position, like S (kernels: the vector index)
    differs = np.zeros(max(n - 1, 0), dtype=bool)
    for t in range(comps.size):
        differs |= S[1:, t] != S[:-1, t]
        starts = np.concatenate(([0], np.flatnonzero(differs) + 1, [n]))
        ends[:, t] = starts[np.searchsorted(starts, np.arange(n), side="right")]
    leaf_start = np.concatenate(([0], np.flatnonzero(differs) + 1)) if n else np.zeros(0, dtype=np.int64)
    leaf_end = np.append(leaf_start[1:], n)
    leaf_of = np.searchsorted(leaf_start, np.arange(n), side="right") - 1
    sorted_values = values[perm]
    leaf_value = sorted_values[leaf_start]
    same = np.all(sorted_values == leaf_value[leaf_of], axis=1)
    uniform = np.logical_and.reduceat(same, leaf_start) if n else np.zeros(0, dtype=bool)
    live = leaf_end - leaf_start
    return (
        _c(comps, np.int64), _c(const_comps, np.int64), _c(vectors[0, const_comps] if n else np.zeros(0), np.float64),
        _c(S, np.float64), _c(vectors[perm], np.float64), ends,
        _c(S.min(axis=0) if n else np.zeros(comps.size), np.float64),
        _c(S.max(axis=0) if n else np.zeros(comps.size), np.float64),
        _c(leaf_of, np.int64), _c(live, np.int64), np.ones(len(live), dtype=np.int64), _c(perm, np.int64), pos_of,
        _c(leaf_start, np.int64), _c(leaf_end, np.int64), np.zeros(n, dtype=np.bool_),
        np.zeros(n, dtype=np.int64), _fresh(meta), np.zeros(n, dtype=np.int64),
        _c(leaf_value, np.float64), _c(uniform, np.bool_),
    )


def scratch(n: int, width: int) -> tuple:
    """The kernels' working arrays (fields ``kernels.SC_*``) for indices over n columns and vectors
    of at most ``width`` components."""
    return (
        np.zeros(n + width + 1, np.int64), np.zeros(n + width + 1, np.int64), np.zeros(n + width + 1, np.int64),
        np.zeros(n + width + 1), np.zeros(n + 1, np.int64), np.zeros(n + 1, np.int64), np.zeros(n + 1),
        np.zeros(n + 1, np.int64), np.zeros(n + 1), np.zeros(n + 1), np.zeros(width + 1), np.zeros(width + 2),
        np.zeros(n + 1, np.int64), np.zeros(n + 1, np.int64), np.zeros(n + 1, np.bool_), np.zeros(width + 1),
        np.zeros(width + 1), np.zeros(width + 1), np.zeros(width + 1),
    )


def _typed(items: list):
    """A numba typed list of ``items`` (built in compiled code, so nothing is compiled per process)."""
    typed = K.new_list(items[0])
    for item in items[1:]:
        K.list_append(typed, item)
    return typed


def gather_view(head: tuple) -> tuple:
    """The arrays of a head tuple that say each column's result (``kernels._gather_column`` reads them): the
    query index's stale flags, leaf of each position and position of each column, the results of
    the queries outside the index and of the groups. The same arrays, not copies."""
    queries = head[K.HD_QUERIES]
    return (queries[K.IX_STALE], queries[K.IX_LEAF_OF], queries[K.IX_POS_OF], head[K.HD_COL_RESULT],
            head[K.HD_LEAF_RESULT])


def _fresh(meta: np.ndarray | None) -> np.ndarray:
    if meta is None:
        return np.zeros(1, dtype=np.int64)
    meta[:] = 0
    return meta


class ChangedColumns(np.ndarray):
    """The columns a pass changed (an int64 array), carrying the rows of each that changed
    (``changed_rows``: ptr, rows) for a health check that looks at those entries alone."""

    changed_rows: tuple = None

    @staticmethod
    def of(cols: np.ndarray, ptr: np.ndarray, rows: np.ndarray) -> "ChangedColumns":
        out = np.asarray(cols, dtype=np.int64).view(ChangedColumns)
        out.changed_rows = (ptr, rows)
        return out


@dataclass
class EngineStats:
    """What the engine did: passes, columns recomputed per layer, fallbacks, index rebuilds, time.

    A run of consecutive feed-forward layers is evaluated as one (``kernels.feed_forward_run``):
    each of its layers counts the columns the run changed, and with ``timed=True`` its first layer
    holds the run's time (the others about none)."""

    passes: int = 0
    fallbacks: int = 0
    rebuilds: int = 0
    columns: list = field(default_factory=list)
    seconds: list = field(default_factory=list)  # per layer; measured only with timed=True
    total_seconds: float = 0.0

    def to_json(self) -> dict:
        out = {"engine": "incremental", "passes": self.passes, "fallbacks": self.fallbacks,
               "index_rebuilds": self.rebuilds,
               "seconds": round(self.total_seconds, 6),
               "columns_recomputed_per_layer": [int(c) for c in self.columns]}
        if any(self.seconds):
            out["seconds_per_layer"] = [round(s, 6) for s in self.seconds]
        return out


class IncrementalEngine:
    """Runs passes of ``model`` over one card X (d, n), incrementally (see the module docstring).

    ``step()`` performs one pass and returns the columns of X it changed (none at a fixed point);
    ``X`` is the current state, a read-only view of the engine's own array (copy it to keep it).
    ``timed`` measures time per layer (one compiled call per layer instead of one per pass).
    """

    # called before the compiled loop first runs (the executor loads its kernels under one notice)
    before_loop = None

    def __init__(self, model: LoopedTransformer, X: np.ndarray, mode: Mode = "softmax", timed: bool = False) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown attention mode {mode!r}; use one of {MODES}")
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] != model.width:
            raise ValueError(f"the incremental engine runs one card ({model.width} x n) at a time, not {X.shape}")
        self.model, self.mode, self.timed = model, mode, timed
        self.hardmax = mode == "hardmax"
        self.reach = 0.0 if self.hardmax else REACH
        d, n = X.shape
        self.n = n
        L = len(model.layers)
        self._X0 = _c(X.T)  # the card, until the first pass has made the state S (by column: slots)
        self._counts = np.zeros(L, np.int64)  # columns recomputed per layer (the compiled pass adds to it)
        self.stats = EngineStats(columns=self._counts, seconds=[0.0] * L)
        self.rebuild_at = max(64, n // 16)
        self._dense = None  # the dense loop that takes over after a fallback
        self._first = True
        self._finite = True
        self._pending = None  # a pass run_passes computed and left for step() to commit (or FALLBACK)
        self._union = np.zeros(n, np.int64)  # run_passes: the columns its passes changed
        self._union_mark = np.zeros(n, np.bool_)
        self._cold = 3  # calls that may still meet a kernel not yet loaded in this process (a notice)
        with compiling():
            self._compile(model)

    # -- set-up ----------------------------------------------------------------------------------

    def _compile(self, model: LoopedTransformer) -> None:
        kinds, where, ffns, atts = [], [], [], []
        # every head of every attention layer, as Python sees them (head_tuples) and typed for the
        # kernels (heads); entry 0 is a placeholder (a typed list is never empty)
        z1, z11 = np.zeros(1), np.zeros((1, 1))
        placeholder = (build_index(z11, z11), build_index(z11, np.zeros((1, 0))), z11.copy(), z11.copy(), z11.copy(),
                       z1.copy(), z11.copy(), np.ones(1, np.bool_), z1.copy(), z11.copy(), np.array([np.inf]),
                       np.zeros(1, np.bool_))
        self.head_tuples: list[tuple] = [placeholder]
        self.heads = K.new_list(placeholder)
        self.gathers = K.new_list(gather_view(placeholder))  # per head the arrays the gather reads
        n_heads = 1
        max_hidden = 1
        for layer in model.layers:
            if isinstance(layer, AttentionLayer):
                reads, proj, output, rows, kept, dk, dv, d = attention_arrays(layer)
                dims = np.array([len(kept), dk, dv, n_heads], dtype=np.int64)
                n_heads += len(kept)
                kinds.append(1)
                where.append(len(atts))
                reads_mask, written_mask = np.zeros(d, np.bool_), np.zeros(d, np.bool_)
                reads_mask[reads], written_mask[rows] = True, True
                atts.append((_c(reads, np.int64), proj, output, _c(rows, np.int64), dims, reads_mask,
                             written_mask))
            else:
                kinds.append(0)
                where.append(len(ffns))
                d = layer.width
                s1, s2 = layer.w1_sparse, layer.w2_sparse
                written_mask = (np.diff(s2.ptr) > 0) | (layer.b2 != 0)
                written = np.flatnonzero(written_mask)
                w1 = (_index(s1.ptr), _index(s1.idx), _c(s1.val, np.float64))
                w2 = (_index(s2.ptr), _index(s2.idx), _c(s2.val, np.float64))
                readers = tuple(map(_index, _transposed(s1.ptr, s1.idx, d)))  # per row: the units that read it
                writes = tuple(map(_index, _transposed(s2.ptr, s2.idx, layer.hidden)))  # per unit: the rows it writes
                ffns.append((*w1, _c(layer.b1, np.float64), *w2, _c(layer.b2, np.float64),
                             _c(written, np.int64), np.empty((self.n, layer.hidden)), *readers, *writes,
                             _c(written_mask, np.bool_)))
                max_hidden = max(max_hidden, layer.hidden)
        # typed lists must not be empty: a placeholder no layer refers to
        if not ffns:
            z = np.zeros(1, dtype=np.uint32)
            ffns.append((z, z, np.zeros(0), np.zeros(0), z, z, np.zeros(0), np.zeros(0), np.zeros(0, np.int64),
                         np.zeros((1, 0)), z, z, z, z, np.zeros(0, np.bool_), z, np.zeros(1, np.bool_),
                         np.zeros(1, np.int64)))
        if not atts:
            empty = _csr(np.zeros((0, 0)))
            atts.append((np.zeros(0, np.int64), empty, empty, np.zeros(0, np.int64), np.zeros(4, np.int64),
                         np.zeros(0, np.bool_), np.zeros(0, np.bool_)))
        self.overflow_counts = np.zeros((n_heads, 2), dtype=np.int64)  # per head: keys', queries' overflow
        self.att_tuples = atts
        self.kinds, self.where = np.array(kinds, np.int64), np.array(where, np.int64)
        self.scratch = scratch(self.n, max([len(a[1][0]) - 1 for a in atts] + [1]))
        # everything the compiled pass needs, in one argument (the typed lists inside are shared)
        d = model.width
        # the units' and rows' marks and lists, attention's column positions, and feed_forward_run's
        # bucket heads (a bucket per layer of the longest run of feed-forward layers and one more, per
        # column) and its first pool of nodes
        self.row_scratch = (np.zeros(max_hidden, np.bool_), np.zeros(max_hidden, np.uint32), np.zeros(d, np.bool_),
                            np.zeros(d, np.uint32), np.full(self.n, -1, np.int64),
                            np.full((_longest_run(self.kinds) + 1, self.n), -1, np.int64),
                            np.empty(8 * d + 4096, np.int64))
        written = [(atts if kind == 1 else ffns)[w][6 if kind == 1 else 14] for kind, w in zip(self.kinds, self.where)]
        self.src, self.dst, slots = _slots(written, d)
        # f[15]: the slot each nonzero of W1 reads (versioned rows); f[16]: the columns whose hidden
        # units H keeps (none after the first pass: H's memory is taken only as columns change; H is
        # np.empty, not np.zeros: a column's row is written whole before it is read, and calloc
        # would clear memory the heap reuses, about 40 MB at fleqc calc's peak)
        for l in np.flatnonzero(self.kinds == 0):
            f = ffns[self.where[l]]
            ffns[self.where[l]] = f + (_index(self.src[l][f[1]]), np.zeros(self.n, np.bool_))
        # f[17]: per row, the next layer of the same run of feed-forward layers that reads or writes
        # it (the end of the run + 1 for none): kernels.feed_forward_run keeps each changed row
        # waiting for that layer
        following = None
        for l in reversed(range(len(self.kinds))):
            if self.kinds[l] != 0:
                following = None
                continue
            if following is None:  # the last layer of a run
                following = np.full(d, l + 1, np.int64)
            f = ffns[self.where[l]]
            ffns[self.where[l]] = f + (following.copy(),)
            following[(np.diff(f[10]) > 0) | f[14]] = l
        self.bundle = K.new_list((self.kinds, self.where, _typed(ffns), _typed(atts), self.heads, self.gathers,
                                  self.scratch, self.row_scratch))
        self.S = np.zeros((self.n, slots))  # the state by column: slots 0 .. d-1 are X (kernels, versioned rows)
        self.S[:, :d] = self._X0

    def _init_attention(self, l: int, X: np.ndarray) -> None:
        """The first pass of attention layer ``l``: every head's caches, indices and group results."""
        reads, proj, _, _, dims = self.att_tuples[self.where[l]][:5]
        H, dk, dv, h0 = (int(v) for v in dims)
        P = K.project(X, np.arange(self.n, dtype=np.int64), reads, *proj)  # (H (2dk+dv), n)
        width = 2 * dk + dv
        for h in range(H):
            base = h * width
            Q, Kc, V = (_c(P[base + a : base + b].T) for a, b in ((0, dk), (dk, 2 * dk), (2 * dk, width)))
            h_index = len(self.head_tuples)
            head = self._with_queries((build_index(Kc, V, self.overflow_counts[h_index, 0:1]), None, Q, Kc, V),
                                      meta=self.overflow_counts[h_index, 1:2])
            self.head_tuples.append(head)
            K.list_append(self.heads, head)
            K.list_append(self.gathers, gather_view(head))

    def _with_queries(self, head: tuple, old: tuple | None = None, meta: np.ndarray | None = None) -> tuple:
        """A head tuple with a query index built from its current queries and every group computed."""
        keys, _, Q, Kc, V = head[:5]
        queries = build_index(Q, np.zeros((self.n, 0)), meta)
        leaves = len(queries[K.IX_LEAF_START])
        best, result = np.zeros(leaves), np.zeros((leaves, V.shape[1]))
        partial = (keys, queries, Q, Kc, V, best, result, np.ones(leaves, np.bool_),
                   np.zeros(self.n) if old is None else old[K.HD_COL_BEST],
                   np.zeros((self.n, V.shape[1])) if old is None else old[K.HD_COL_RESULT],
                   np.array([np.inf]), np.zeros(leaves, np.bool_))
        K.attend_all(queries[K.IX_FULL][queries[K.IX_LEAF_START]], partial, self.reach, self.hardmax, SLACK,
                     self.scratch, best, result)
        partial[K.HD_FMETA][0] = best.min() if leaves else np.inf
        return partial

    # -- passes ----------------------------------------------------------------------------------

    @property
    def X(self) -> np.ndarray:
        if self._dense is not None:
            return self._dense.X
        view = self.S[:, :self.model.width].T
        view.flags.writeable = False
        return view

    def step(self) -> np.ndarray:
        """One pass; returns the (sorted) columns of X it changed."""
        if self._cold:  # the first pass, the pass after it, the first compiled loop: new kernels
            self._cold -= 1
            with compiling():
                return self._step()
        return self._step()

    def _step(self) -> np.ndarray:
        start = time.perf_counter()
        self.stats.passes += 1
        try:
            if self._pending is not None:
                return self._commit_pending()
            if self._dense is not None:
                return self._dense.step()
            if self._first:
                changed = self._first_step()
                return_freed_memory()  # the first pass's (n, d) temporaries, before the hidden units fill
                return changed
            if not self._finite:
                return self._fallback()
            if self.timed:
                status, *changed = self._timed_layers(*self._changed)
            else:
                status, *changed = K.engine_pass_versions(self.S, *self._changed, self.bundle, self.src, self.dst,
                                                          self.reach, self.hardmax, SLACK, self._counts)
            if status != K.OK:
                return self._fallback()
            self._changed = changed
            self._maintain()
            return ChangedColumns.of(*changed)
        finally:
            self.stats.total_seconds += time.perf_counter() - start

    def run_passes(self, max_passes: int, check: tuple, watch: np.ndarray) -> Optional[tuple]:
        """Up to ``max_passes`` passes in one compiled call (:func:`kernels.run_passes`); returns
        (reason, passes committed, columns those passes changed), or None where this engine steps
        one pass at a time (before its first pass, after a fallback, while timing per layer).

        ``check``: the arrays of a :class:`fleqc.transformer.health.LoopCheck` (every pass's output
        is tested against them); ``watch`` (k, 2): entries (row, column) after whose change the call
        returns. A pass the loop computed but did not commit (a fixed point, a pass the check
        flags, one that met a non-finite value) is the one the next :meth:`step` returns.
        """
        if self._dense is not None or self._first or self._pending is not None or self.timed or max_passes <= 0:
            return None
        if self.before_loop is not None:  # the compiled loop's kernels, under one notice, the first time
            self.before_loop()  # (fleqc.transformer.executor hands in warm.ensure_ready: warm imports this module)
        if self._cold:
            self._cold = 0
            with compiling():
                return self._run_passes(max_passes, check, watch)
        return self._run_passes(max_passes, check, watch)

    def _run_passes(self, max_passes: int, check: tuple, watch: np.ndarray) -> tuple:
        start = time.perf_counter()
        cols, ptr, rows = self._changed
        reason, done, cols, ptr, rows, n_union = K.run_passes(
            self.S, cols, ptr, rows, self.bundle, self.src, self.dst, self.reach, self.hardmax, SLACK, self._counts,
            max_passes, self.overflow_counts, self.rebuild_at, check, watch, self._union, self._union_mark, 0)
        union = self._union[:n_union].copy()
        self._union_mark[union] = False
        self.stats.passes += done
        if reason == K.RUN_NOT_FINITE:
            self._pending = FALLBACK
        elif reason in (K.RUN_FIXED, K.RUN_FLAGGED):
            self._pending = (cols, ptr, rows)  # computed into the layers' slots, not yet into the input slots
        else:
            self._changed = (cols, ptr, rows)
            self._maintain()
        self.stats.total_seconds += time.perf_counter() - start
        return reason, done, np.sort(union)

    def _commit_pending(self) -> np.ndarray:
        """The pass run_passes computed and left: its changed rows into the input slots, as
        :func:`kernels.engine_pass_versions` ends a pass (or the dense pass, after a non-finite value)."""
        pending, self._pending = self._pending, None
        if pending is FALLBACK:
            return self._fallback()
        if K.finish_versions(self.S, *pending, self.src[-1]) != K.OK:  # tested in the loop: OK
            return self._fallback()
        self._changed = pending
        self._maintain()
        return ChangedColumns.of(*pending)

    def _timed_layers(self, cols: np.ndarray, ptr: np.ndarray, rows: np.ndarray):
        for l in range(len(self.kinds)):
            t = time.perf_counter()
            status, cols, ptr, rows = K.layer_versions(l, self.S, cols, ptr, rows, self.bundle, self.src, self.dst,
                                                       self.reach, self.hardmax, SLACK)
            self.stats.seconds[l] += time.perf_counter() - t
            if status != K.OK:
                return status, cols, ptr, rows
            self.stats.columns[l] += len(cols)
        return K.finish_versions(self.S, cols, ptr, rows, self.src[-1]), cols, ptr, rows

    def _first_step(self) -> np.ndarray:
        if not np.all(np.isfinite(self._X0)):
            return self._fallback()
        every = np.arange(self.n, dtype=np.int64)
        # each layer's input and output; the card's own buffer is the first input and then scratch (S's
        # slots 0 .. d-1 hold the card until the pass ends, and X reads them: no copy of the card)
        prev, cur = self._X0, np.zeros((self.n, self.model.width))
        self._X0 = None
        for l in range(len(self.kinds)):
            t = time.perf_counter()
            if self.kinds[l] == 1:
                self._init_attention(l, prev)
                cur[:] = 0.0
            status = K.layer_first_pair(l, prev, cur, every, self.bundle, self.reach, self.hardmax, SLACK)
            if status != K.OK:
                return self._fallback()
            rows = np.flatnonzero(self.dst[l] >= 0)
            self.S[:, self.dst[l, rows]] = cur[:, rows]
            prev, cur = cur, prev
            self.stats.seconds[l] += time.perf_counter() - t
            self.stats.columns[l] += self.n
        final = prev
        d = self.model.width
        differs = final != self.S[:, :d]
        changed = np.flatnonzero(np.any(differs, axis=1)).astype(np.int64)
        self.S[:, :d] = final
        self._finite = bool(np.all(np.isfinite(self.S[changed, :d])))  # else the next pass is the dense one
        cols, rows = np.nonzero(differs[changed])
        ptr = np.zeros(len(changed) + 1, np.int64)
        np.add.at(ptr, cols + 1, 1)
        self._first = False
        self._changed = (changed, np.cumsum(ptr), rows.astype(np.int64))
        return changed

    def _maintain(self) -> None:
        """Rebuild the indices whose overflow grew past ``rebuild_at`` (between passes: an index is only
        a way to find keys, so when it is rebuilt changes no result)."""
        if self.overflow_counts.max() <= self.rebuild_at:
            return
        for h in np.flatnonzero(self.overflow_counts.max(axis=1) > self.rebuild_at):
            head = self.head_tuples[h]
            if self.overflow_counts[h, 0] > self.rebuild_at:
                keys = build_index(head[K.HD_K], head[K.HD_V], self.overflow_counts[h, 0:1])
                head = (keys,) + tuple(head[1:])
            if self.overflow_counts[h, 1] > self.rebuild_at:
                head = self._with_queries(head, old=head, meta=self.overflow_counts[h, 1:2])
            self.head_tuples[h] = head
            K.list_set(self.heads, h, head)
            K.list_set(self.gathers, h, gather_view(head))
            self.stats.rebuilds += 1

    def _fallback(self) -> np.ndarray:
        """Abandon incremental evaluation: this pass and every later one by the dense definition."""
        self.stats.fallbacks += 1
        X = self._X0 if self._X0 is not None else self.S[:, :self.model.width]
        self._dense = PassLoop(self.model, X.T, self.mode, "dense")
        return self._dense.step()
