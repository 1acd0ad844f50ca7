"""Parameters of a looped transformer: plain dataclasses of numpy arrays (they map onto an .npz).

Shapes (d = residual width = rows of X, n = columns of X):

- AttentionLayer with H heads, key/query width dk, value width dv:
  ``query``, ``key``: (H, dk, d); ``value``: (H, dv, d); ``output``: (H, d, dv).
  Head h computes  scores = (K_h X)^T (Q_h X)           (n_keys x n_queries)
                   A      = softmax over keys, per query column
                   X     += O_h (V_h X) A
  The temperature is folded into ``query``.
- FeedForwardLayer with hidden width h: ``w1`` (h, d), ``b1`` (h,), ``w2`` (d, h), ``b2`` (d,);
  X += W2 ReLU(W1 X + b1 1^T) + b2 1^T. The biases are shared by all columns. W1 and W2 may be
  stored by their nonzeros (:class:`SparseMatrix`); the dense arrays are then made on first use.
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

    def live_value_rows(self) -> np.ndarray:
        """(H, dv) bool: whether value row j of head h can contribute, a nonzero value row (NaN
        counts) whose output column is nonzero too; from the nonzeros (no (H, dv, d) temporary)."""
        H, dv = self.value.shape[:2]
        live, out = np.zeros((H, dv), np.bool_), np.zeros((H, dv), np.bool_)
        h, j, _ = np.nonzero(self.value)
        live[h, j] = True
        h, _, j = np.nonzero(self.output)
        out[h, j] = True
        return live & out


@dataclass(frozen=True)
class SparseMatrix:
    """An (m, k) matrix by its nonzeros, row by row: ``ptr`` (m + 1,), and per row its column
    indices ``idx`` (ascending) and values ``val``; no stored value is zero."""

    shape: tuple[int, int]
    ptr: np.ndarray
    idx: np.ndarray
    val: np.ndarray

    @staticmethod
    def of(matrix: np.ndarray) -> "SparseMatrix":
        rows, cols = np.nonzero(matrix)
        ptr = np.zeros(matrix.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=matrix.shape[0]), out=ptr[1:])
        return SparseMatrix(tuple(matrix.shape), ptr, cols.astype(np.int64), matrix[rows, cols].astype(np.float64))

    @staticmethod
    def from_entries(shape: tuple[int, int], rows: np.ndarray, cols: np.ndarray, vals: np.ndarray) -> "SparseMatrix":
        """From (row, column, value) entries, each position at most once; zero values are dropped."""
        rows, cols, vals = (np.asarray(a) for a in (rows, cols, vals))
        keep = vals != 0
        rows, cols, vals = rows[keep].astype(np.int64), cols[keep].astype(np.int64), vals[keep].astype(np.float64)
        order = np.lexsort((cols, rows))
        rows, cols, vals = rows[order], cols[order], vals[order]
        ptr = np.zeros(shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=shape[0]), out=ptr[1:])
        return SparseMatrix(tuple(shape), ptr, cols, vals)

    @property
    def nnz(self) -> int:
        return int(self.val.size)

    def row_of_entries(self) -> np.ndarray:
        """The row of every stored entry."""
        return np.repeat(np.arange(self.shape[0], dtype=np.int64), np.diff(self.ptr))

    def dense(self) -> np.ndarray:
        out = np.zeros(self.shape)
        out[self.row_of_entries(), self.idx] = self.val
        return out

    def transposed(self) -> "SparseMatrix":
        return SparseMatrix.from_entries((self.shape[1], self.shape[0]), self.idx, self.row_of_entries(), self.val)


@dataclass(frozen=True, init=False, repr=False, eq=False)
class FeedForwardLayer:
    """A ReLU feed-forward layer: ``w1`` (h, d), ``b1`` (h,), ``w2`` (d, h), ``b2`` (d,).

    W1 and W2 may be given dense or as :class:`SparseMatrix` (a machine's builder gives them sparse:
    the FLEQ machine's would take about 1 GB dense). ``w1``/``w2`` are always the dense arrays, made
    on first use; ``w1_sparse``/``w2_sparse`` their nonzeros, without the dense form where the layer
    was built sparse. Both describe the same matrices: every engine computes the same function.
    (A dataclass, so that ``dataclasses.replace`` works; its fields are the constructor's arguments.)
    """

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    name: str

    def __init__(self, w1, b1: np.ndarray, w2, b2: np.ndarray, name: str = "") -> None:
        set_ = object.__setattr__
        set_(self, "_w1", w1)
        set_(self, "_w2", w2)
        set_(self, "b1", np.asarray(b1))
        set_(self, "b2", np.asarray(b2))
        set_(self, "name", name)
        h, d = w1.shape
        if self.b1.shape != (h,) or tuple(w2.shape) != (d, h) or self.b2.shape != (d,):
            raise ValueError("feed-forward shapes do not match")
        set_(self, "_shape", (h, d))
        set_(self, "_w1_sparse", None)
        set_(self, "_w2_sparse", None)

    def _matrix(self, which: str) -> np.ndarray:
        given = getattr(self, "_" + which)
        if isinstance(given, SparseMatrix):  # dense on first use, the nonzeros kept
            object.__setattr__(self, f"_{which}_sparse", given)
            object.__setattr__(self, "_" + which, given.dense())
        return getattr(self, "_" + which)

    def _nonzeros(self, which: str) -> SparseMatrix:
        given = getattr(self, "_" + which)
        if isinstance(given, SparseMatrix):
            return given
        if getattr(self, f"_{which}_sparse") is None:
            object.__setattr__(self, f"_{which}_sparse", SparseMatrix.of(given))
        return getattr(self, f"_{which}_sparse")

    w1 = property(lambda self: self._matrix("w1"), doc="W1 (h, d), dense (made on first use)")  # type: ignore[assignment]
    w2 = property(lambda self: self._matrix("w2"), doc="W2 (d, h), dense (made on first use)")  # type: ignore[assignment]
    w1_sparse = property(lambda self: self._nonzeros("w1"), doc="the nonzeros of W1")
    w2_sparse = property(lambda self: self._nonzeros("w2"), doc="the nonzeros of W2")

    @property
    def is_dense(self) -> bool:
        """Whether the dense W1 and W2 exist (given so, or made on demand)."""
        return not isinstance(self._w1, SparseMatrix) and not isinstance(self._w2, SparseMatrix)

    @property
    def nonzeros(self) -> int:
        return self.w1_sparse.nnz + self.w2_sparse.nnz

    @property
    def hidden(self) -> int:
        return self._shape[0]

    @property
    def width(self) -> int:
        return self._shape[1]

    def stored_bytes(self) -> int:
        """Bytes of W1, W2 and the biases as stored now (dense, or the nonzeros)."""
        total = (self.b1.size + self.b2.size) * 8
        for m in (self._w1, self._w2):
            total += m.nnz * 16 + m.ptr.size * 8 if isinstance(m, SparseMatrix) else m.size * 8
        return total

    def __repr__(self) -> str:
        return f"FeedForwardLayer({self.name!r}, hidden={self.hidden}, width={self.width})"


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
                total += 2 * layer.hidden * layer.width + layer.hidden + layer.width
        return total

    def stored_bytes(self) -> int:
        """Bytes the weights take as stored (feed-forward layers built sparse count their nonzeros)."""
        total = 0
        for layer in self.layers:
            if isinstance(layer, AttentionLayer):
                total += 8 * sum(a.size for a in (layer.query, layer.key, layer.value, layer.output))
            else:
                total += layer.stored_bytes()
        return total
