"""Builders that write weight matrices by row-block name and flatten them into layers.

- :class:`HeadBuilder` writes one attention head: query/key maps into a small score space, a value
  map into a small value space, and the output map from value slots back to residual rows.
- :class:`FeedForwardBuilder` collects hidden ReLU units, each described by the rows it reads (with
  coefficients), its bias, and the rows it writes (with coefficients).

Blocks (``blocks.py``) call these with names such as ``rows["mem"]``; only ``build()`` produces the
arrays the executor runs (a feed-forward layer's W1 and W2 by their nonzeros).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping

import numpy as np

from fleqc.card.rows import RowBlock, RowSpace
from fleqc.transformer.layers import AttentionLayer, FeedForwardLayer, SparseMatrix


class HeadBuilder:
    """One attention head with score width ``dk`` and value width ``dv``."""

    def __init__(self, name: str, rows: RowSpace, dk: int, dv: int) -> None:
        self.name, self.rows, self.dk, self.dv = name, rows, dk, dv
        self.query = np.zeros((dk, rows.d))
        self.key = np.zeros((dk, rows.d))
        self.value = np.zeros((dv, rows.d))
        self.output = np.zeros((rows.d, dv))

    @staticmethod
    def _copy(target: np.ndarray, slot: int, block: RowBlock, scale: float) -> None:
        for k, row in enumerate(block):
            target[slot + k, row] += scale

    @staticmethod
    def _constant(target: np.ndarray, slot: int, size: int, one_row: int, value: float) -> None:
        target[slot : slot + size, one_row] += value

    def query_copies(self, slot: int, block: RowBlock, scale: float = 1.0) -> "HeadBuilder":
        """query[slot + k] += scale * X[block[k]]."""
        self._copy(self.query, slot, block, scale)
        return self

    def query_reads(self, slot: int, size: int, row: int, scale: float) -> "HeadBuilder":
        """query[slot .. slot+size] += scale * X[row] (a single row broadcast over the slots)."""
        self._constant(self.query, slot, size, row, scale)
        return self

    def key_copies(self, slot: int, block: RowBlock, scale: float = 1.0) -> "HeadBuilder":
        self._copy(self.key, slot, block, scale)
        return self

    def key_reads(self, slot: int, size: int, row: int, scale: float) -> "HeadBuilder":
        self._constant(self.key, slot, size, row, scale)
        return self

    def query_terms(self, slot: int, terms: Mapping[int, float]) -> "HeadBuilder":
        """query[slot] += sum_r terms[r] X[r]."""
        for row, coef in terms.items():
            self.query[slot, row] += coef
        return self

    def key_terms(self, slot: int, terms: Mapping[int, float]) -> "HeadBuilder":
        """key[slot] += sum_r terms[r] X[r]."""
        for row, coef in terms.items():
            self.key[slot, row] += coef
        return self

    def carries(self, slot: int, terms: Mapping[int, float], outputs: Mapping[int, float]) -> "HeadBuilder":
        """value[slot] = sum_r terms[r] X[r] of the attended columns; X[o] += outputs[o] * that, weighted."""
        for row, coef in terms.items():
            self.value[slot, row] += coef
        for row, coef in outputs.items():
            self.output[row, slot] += coef
        return self

    def moves(self, source: RowBlock, dest: RowBlock, slot: int = 0) -> "HeadBuilder":
        """The head carries ``source`` rows of the attended column into ``dest`` rows of the query column."""
        if source.size != dest.size:
            raise ValueError(f"head {self.name}: cannot move {source.name} ({source.size}) into {dest.name} ({dest.size})")
        self._copy(self.value, slot, source, 1.0)
        for k, row in enumerate(dest):
            self.output[row, slot + k] += 1.0
        return self


def attention_layer(heads: Iterable[HeadBuilder]) -> AttentionLayer:
    """Stack heads into one layer (score and value widths padded with zeros to the widest head)."""
    heads = list(heads)
    dk = max(h.dk for h in heads)
    dv = max(h.dv for h in heads)
    d = heads[0].rows.d
    Q, K = np.zeros((len(heads), dk, d)), np.zeros((len(heads), dk, d))
    V, O = np.zeros((len(heads), dv, d)), np.zeros((len(heads), d, dv))
    for i, h in enumerate(heads):
        Q[i, : h.dk], K[i, : h.dk] = h.query, h.key
        V[i, : h.dv], O[i, :, : h.dv] = h.value, h.output
    return AttentionLayer(Q, K, V, O, tuple(h.name for h in heads))


@dataclass
class Unit:
    """One hidden ReLU: out += sum_r w_out[r] * ReLU(sum_r w_in[r] X[r] + bias)."""

    inputs: Mapping[int, float]
    bias: float
    outputs: Mapping[int, float]
    block: str


@dataclass
class FeedForwardBuilder:
    """Hidden units contributed by named blocks, flattened by :meth:`build`."""

    rows: RowSpace
    units: list[Unit] = field(default_factory=list)
    block: str = ""
    biases: dict[int, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def part(self, block: str) -> Iterator["FeedForwardBuilder"]:
        """Tag the units added inside the ``with`` as belonging to ``block`` (see ``unit_blocks``)."""
        outer, self.block = self.block, block
        try:
            yield self
        finally:
            self.block = outer

    def unit_blocks(self) -> dict[str, int]:
        """How many hidden units each block contributed, in order of first appearance."""
        counts: dict[str, int] = {}
        for u in self.units:
            counts[u.block] = counts.get(u.block, 0) + 1
        return counts

    def unit(self, inputs: Mapping[int, float], bias: float, outputs: Mapping[int, float]) -> None:
        self.units.append(Unit(dict(inputs), float(bias), dict(outputs), self.block))

    def bias(self, row: int, value: float) -> None:
        """X[row] += value in every column (the layer's output bias b2)."""
        self.biases[row] = self.biases.get(row, 0.0) + float(value)

    def identity(self, source: int, outputs: Mapping[int, float]) -> None:
        """outputs += coef * X[source] exactly, as ReLU(x) - ReLU(-x)."""
        self.passes({source: 1.0}, outputs)

    def passes(self, terms: Mapping[int, float], outputs: Mapping[int, float]) -> None:
        """outputs += coef * z for z = sum terms[r] X[r] (one IEEE rounding when two terms are
        nonzero), as ReLU(z) - ReLU(-z)."""
        self.unit(terms, 0.0, outputs)
        self.unit({r: -c for r, c in terms.items()}, 0.0, {r: -c for r, c in outputs.items()})

    def build(self, name: str) -> FeedForwardLayer:
        """The layer, W1 and W2 stored by their nonzeros (the dense arrays only if someone asks)."""
        h, d = len(self.units), self.rows.d
        b1 = np.array([u.bias for u in self.units], dtype=np.float64).reshape(h)
        w1 = _entries((h, d), ((j, r, c) for j, u in enumerate(self.units) for r, c in u.inputs.items()))
        w2 = _entries((d, h), ((r, j, c) for j, u in enumerate(self.units) for r, c in u.outputs.items()))
        b2 = np.zeros(d)
        for r, c in self.biases.items():
            b2[r] += c
        return FeedForwardLayer(w1, b1, w2, b2, name)


def _entries(shape: tuple[int, int], entries: Iterable[tuple[int, int, float]]) -> SparseMatrix:
    """A sparse matrix from (row, column, value) entries, each position once (a unit's inputs and
    outputs are dicts)."""
    table = np.array(list(entries), dtype=np.float64).reshape(-1, 3)
    return SparseMatrix.from_entries(shape, table[:, 0].astype(np.int64), table[:, 1].astype(np.int64), table[:, 2])
