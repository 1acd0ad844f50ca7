"""Cheap health checks run after every loop: the machine never returns a silently wrong answer.

A check sees only X and row labels. The builder of a machine says which rows must hold values in
{-1, 0, +1} between passes (codes, bits, indicators and cleared scratch fields); a value outside
that set by more than ``tolerance``, or any NaN or infinity, raises :class:`MachineFault`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


class MachineFault(RuntimeError):
    """The machine's state left its valid set: names the step, the field (row), column and deviation."""

    def __init__(self, step: int, field: str, column: int, value: float, deviation: float) -> None:
        self.step, self.field, self.column, self.value, self.deviation = step, field, column, value, deviation
        super().__init__(
            f"machine fault at step {step}: {field} in column {column} is {value!r} "
            f"(deviation {deviation:.3g} from a valid value)"
        )


@dataclass(frozen=True)
class TernaryCheck:
    """Every entry of the listed rows lies within ``tolerance`` of -1, 0 or +1; X is finite."""

    rows: Sequence[int]
    labels: Sequence[str]
    tolerance: float = 1e-6

    def __call__(self, X: np.ndarray, step: int, columns: np.ndarray | None = None) -> None:
        """Check X, or only its ``columns`` (those the last pass changed: the others were checked)."""
        if X.ndim != 2:
            raise ValueError("TernaryCheck takes one card (d x n) at a time")
        cols = np.arange(X.shape[1]) if columns is None else np.asarray(columns)
        block = X[:, cols]
        # the common case first: every ternary entry exactly -1, 0 or +1 and every other one finite
        magnitude = np.abs(block)
        exact = (magnitude == 1.0) | (magnitude == 0.0)
        if len(self.rows) == X.shape[0]:
            if exact.all():
                return
        else:
            ternary, others = self._split(X.shape[0])
            if exact[ternary].all() and np.isfinite(magnitude[others]).all():
                return
        finite = np.isfinite(block)
        if not finite.all():
            row, k = np.argwhere(~finite)[0]
            raise MachineFault(step, self.labels[row], int(cols[k]), float(block[row, k]), float("inf"))
        rows = np.asarray(self.rows)
        sub = block[rows]
        if not sub.size:
            return
        deviation = np.abs(sub - np.clip(np.rint(sub), -1.0, 1.0))
        worst = np.unravel_index(int(np.argmax(deviation)), deviation.shape)
        if deviation[worst] > self.tolerance:
            row, col = int(rows[worst[0]]), int(cols[worst[1]])
            raise MachineFault(step, self.labels[row], col, float(X[row, col]), float(deviation[worst]))

    def _split(self, d: int) -> tuple[np.ndarray, np.ndarray]:
        """The ternary rows and the others (which need only be finite), as index arrays (kept)."""
        split = getattr(self, "_rows_split", None)
        if split is None or split[0].size + split[1].size != d:
            mask = np.zeros(d, dtype=bool)
            mask[np.asarray(self.rows, dtype=np.int64)] = True
            split = (np.flatnonzero(mask), np.flatnonzero(~mask))
            object.__setattr__(self, "_rows_split", split)
        return split
