"""Cheap health checks run after every loop: the machine never returns a silently wrong answer.

A check sees only X and row labels. The builder of a machine says which rows must hold values in
{-1, 0, +1} between passes (codes, bits, indicators and cleared scratch fields); a value outside
that set by more than ``tolerance``, or any NaN or infinity, raises :class:`MachineFault`.

A check that runs inside the engine's compiled loop (many passes per call) gives the loop a
:class:`LoopCheck` as its ``loop_check`` attribute: plain data (rows, entries, ranges) that the loop
tests after every pass. It is a filter, never the judge: every X on which the check would raise
must fail the LoopCheck; a pass that fails it leaves the compiled loop and goes to the check itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

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

    @property
    def loop_check(self) -> "LoopCheck":
        """The filter of the engine's compiled loop: ternary rows exactly -1, 0 or +1, values finite."""
        return LoopCheck(ternary=tuple(int(r) for r in self.rows))

    def __call__(self, X: np.ndarray, step: int, columns: np.ndarray | None = None) -> None:
        """Check X, or only its ``columns`` (those the last pass changed: the others were checked),
        or only the entries that changed where ``columns`` carries them (``changed_rows``: ptr, rows)."""
        if X.ndim != 2:
            raise ValueError("TernaryCheck takes one card (d x n) at a time")
        entries = getattr(columns, "changed_rows", None)
        if entries is not None and self._entries_pass(X, np.asarray(columns), *entries):
            return
        cols = np.arange(X.shape[1]) if columns is None else np.asarray(columns)
        # the common case first: every ternary entry exactly -1, 0 or +1 and every other one finite,
        # tested on the columns as rows of X.T (contiguous where X is an engine's state by column)
        by_column = X.T[cols]  # (k, d)
        magnitude = np.abs(by_column)
        inexact = (magnitude != 1.0) & (magnitude != 0.0)  # NaN and +-inf are inexact too
        if not inexact.any():
            return
        if len(self.rows) < X.shape[0]:
            inexact &= self._mask(X.shape[0])  # the other rows need only be finite
            if not inexact.any() and np.isfinite(magnitude).all():
                return
        block = by_column.T
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

    def _entries_pass(self, X: np.ndarray, cols: np.ndarray, ptr: np.ndarray, rows: np.ndarray) -> bool:
        """Whether the entries the pass changed (``rows[ptr[k]:ptr[k + 1]]`` of column ``cols[k]``, as
        an engine that follows changes reports them; every other entry was checked before) are
        all exactly -1, 0 or +1 on the ternary rows and finite elsewhere. False: check the columns."""
        if len(ptr) != len(cols) + 1:
            return False
        values = X[rows, np.repeat(cols, np.diff(ptr))]
        magnitude = np.abs(values)
        inexact = (magnitude != 1.0) & (magnitude != 0.0)
        if len(self.rows) < X.shape[0]:
            inexact &= self._mask(X.shape[0])[rows]
        return not inexact.any() and bool(np.isfinite(magnitude).all())

    def _mask(self, d: int) -> np.ndarray:
        """The ternary rows as a mask over the d rows (kept)."""
        mask = getattr(self, "_rows_mask", None)
        if mask is None or mask.size != d:
            mask = np.zeros(d, dtype=bool)
            mask[np.asarray(self.rows, dtype=np.int64)] = True
            object.__setattr__(self, "_rows_mask", mask)
        return mask


@dataclass(frozen=True)
class LoopCheck:
    """What the engine's compiled loop tests after every pass, in place of calling a check.

    A pass fails the filter if a column it changed holds a NaN or an infinity, or an entry of a
    ``ternary`` row that is not exactly -1, 0 or +1; if a register (``registers``: (column, rows,
    low, high): the unsigned number whose bit i is [X[rows[i], column] > 0]) lies outside
    [low, high); or if an entry (``limits``: (row, column, most)) exceeds ``most``. Nothing here is
    specific to a machine: the machine that owns the check says which rows and entries.
    """

    ternary: Sequence[int] = ()
    registers: Sequence[tuple] = field(default_factory=tuple)
    limits: Sequence[tuple] = field(default_factory=tuple)

    def arrays(self, d: int) -> tuple:
        """The tuple of arrays the compiled loop takes (kernels.run_passes, ``check``)."""
        ternary = np.zeros(d, dtype=np.bool_)
        ternary[np.asarray(self.ternary, dtype=np.int64)] = True
        ptr, rows = [0], []
        for _, reg_rows, _, _ in self.registers:
            rows.extend(int(r) for r in reg_rows)
            ptr.append(len(rows))
        ints = lambda values: np.asarray(list(values), dtype=np.int64)  # noqa: E731
        return (ternary, ints(r[0] for r in self.registers), ints(ptr), ints(rows),
                ints(r[2] for r in self.registers), ints(r[3] for r in self.registers),
                ints(lim[0] for lim in self.limits), ints(lim[1] for lim in self.limits),
                np.asarray([float(lim[2]) for lim in self.limits], dtype=np.float64))


def loop_check_of(check: object) -> Optional[LoopCheck]:
    """The LoopCheck a check offers (its ``loop_check`` attribute), or None: a check without one
    (or with None) is called after every pass and keeps the loop in Python."""
    return getattr(check, "loop_check", None)

