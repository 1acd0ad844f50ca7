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

    def __init__(self, step: int, field: str, column: int, value: float, deviation: float,
                 why: str | None = None) -> None:
        self.step, self.field, self.column, self.value, self.deviation = step, field, column, value, deviation
        if why is None:
            shown = "not a number" if value != value else repr(value)
            what = "" if deviation != deviation else f" (deviation {deviation:.3g} from a valid value)"
            why = f"{field} in column {column} is {shown}{what}"
        super().__init__(f"machine fault at step {step}: {why}")


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
        if len(self.rows) == X.shape[0]:  # the common case first: every entry exactly -1, 0 or +1
            magnitude = np.abs(block)
            if ((magnitude == 1.0) | (magnitude == 0.0)).all():
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
