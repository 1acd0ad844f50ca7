"""Punch cards: the input matrix X of a looped transformer plus what is needed to read it back.

On disk a card is an ``.npz`` with two entries, always read with ``allow_pickle=False``:

- ``X``: float64 (d x n), the matrix the transformer runs on;
- ``meta``: a JSON string: format name and version, machine configuration, row-block map, column
  regions, symbol table (name, kind, address, shape, length of every label), source file name.

Files are written atomically (temporary file in the same folder, then rename), so a failed write
never leaves a half-written card or clobbers an existing one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fleqc.errors import ErrorCode, FleqError, Span
from fleqc.card.codes import decode_unsigned
from fleqc.card.columns import ColumnRegions
from fleqc.card.rows import RowSpace
from fleqc.npzfile import json_entry, write_npz_atomically
from fleqc.program import Symbol, values_by_label

CARD_FORMAT = "fleqc-card"
CARD_VERSION = 1


@dataclass(frozen=True)
class Card:
    """A punch card: X and its reading guide."""

    X: np.ndarray
    config: Any  # the machine's configuration
    rows: RowSpace
    regions: ColumnRegions
    symbols: dict[str, Symbol]
    source_name: str = "<source>"
    instruction_lines: tuple[int, ...] = field(default=())
    cell_shapes: tuple[tuple[int, ...], ...] = field(default=())  # FLEQ: the shape of every cell
    instruction_files: tuple[str, ...] = field(default=())  # the file of each instruction ("" = source)
    # the machine (fleqc.machines.base.Machine) that encoded the card and reads it back
    machine: Any = field(default=None, compare=False, repr=False)

    def pointer(self, field: str, column: int, region: str) -> int:
        """The index, within ``region`` ("memory" or "instructions"), of the column that the code in
        row block ``field`` of instruction column ``column`` names; BAD_CARD if it names another region."""
        lo, hi = getattr(self.regions, region)
        target = decode_unsigned(self.X[self.rows[field].slice, column])
        if not lo <= target < hi:
            raise self.bad_entry(field, column, f"names column {target} ({self.column_kind(target)}), "
                                 f"outside the {region} region (columns {lo}-{hi - 1})")
        return target - lo

    def bad_entry(self, block: str, column: int, why: str) -> FleqError:
        """The BAD_CARD error for row block ``block`` of column ``column``."""
        return FleqError(ErrorCode.BAD_CARD, f"row block {block}, column {column} ({self.column_kind(column)}): {why}")

    def column_kind(self, column: int) -> str:
        """What column ``column`` is: 'the scratchpad', 'memory cell 3', 'instruction 0', 'padding'."""
        regions = self.regions
        if regions.scratch[0] <= column < regions.scratch[1]:
            return self.machine.column_name(self, column)
        if regions.memory[0] <= column < regions.memory[1]:
            return f"memory cell {column - regions.memory[0]}"
        if regions.instructions[0] <= column < regions.instructions[1]:
            return f"instruction {column - regions.instructions[0]}"
        return "padding" if 0 <= column < self.config.columns else "beyond the card"

    def instruction_span(self, index: int) -> Span | None:
        """Where instruction ``index`` came from (file and line; the column is not kept)."""
        line = self.instruction_lines[index] if index < len(self.instruction_lines) else 0
        if not line:
            return None
        file = self.instruction_files[index] if index < len(self.instruction_files) else ""
        return Span(file or self.source_name, line, 1)

    @property
    def memory_size(self) -> int:
        return self.regions.memory[1] - self.regions.memory[0]

    @property
    def instruction_count(self) -> int:
        return self.regions.instructions[1] - self.regions.instructions[0]

    @property
    def pc_column(self) -> int:
        """The column whose pc rows are read back (the machine's choice)."""
        return self.machine.pc_column(self)

    def summary(self) -> str:
        d, n = self.X.shape
        return (
            f"{self.config.kind} card: n={n} columns, d={d} rows, {self.machine.describe_card(self.config)}, "
            + (f"{self.instruction_count} instructions, {self.memory_size} memory cells" if self.instruction_count
               else f"code and data in {self.memory_size} memory cells")
        )

    # -- reading the state back -------------------------------------------------------------

    def read_memory(self, X: np.ndarray | None = None) -> list:
        """Every memory cell's value, in address order (ints for SUBLEQ, float64 arrays for FLEQ)."""
        return self.machine.read_memory(self, self.X if X is None else X)

    def read_pc(self, X: np.ndarray | None = None) -> int:
        """The program counter as an instruction index (may lie outside the program if X is bad)."""
        X = self.X if X is None else X
        column = decode_unsigned(X[self.rows["pc"].slice, self.pc_column])
        return column - self.regions.instructions[0]

    def decode(self, X: np.ndarray | None = None) -> dict[str, Any]:
        """User-visible data labels and their values (an int, or a list for multi-cell labels)."""
        return values_by_label(self.symbols, self.read_memory(X))

    # -- files --------------------------------------------------------------------------------

    def meta(self) -> dict:
        return {
            "format": CARD_FORMAT,
            "version": CARD_VERSION,
            "machine": self.config.to_dict(),
            "rows": self.rows.to_list(),
            "regions": self.regions.to_dict(),
            "symbols": [symbol_to_json(s) for s in self.symbols.values()],
            "source": self.source_name,
            "instruction_lines": list(self.instruction_lines),
            "instruction_files": list(self.instruction_files),
            "cell_shapes": [list(shape) for shape in self.cell_shapes],
        }

    def save(self, path: str | os.PathLike, inputs: tuple[str | os.PathLike, ...] = ()) -> None:
        """Write the card atomically; never over the card's own source files or ``inputs``, nor over
        anything but a regular file (fleqc.safe_io)."""
        write_npz_atomically(path, {"X": self.X, "meta": json_entry(self.meta())}, (*self.sources(), *inputs))

    def sources(self) -> list[str]:
        """The files the card was built from: the program and the files it included."""
        files = {self.source_name, *self.instruction_files}
        files.update(s.span.file for s in self.symbols.values() if s.span is not None)
        return sorted(f for f in files if f and not f.startswith("<"))


def instruction_origins(program) -> dict:
    """The ``instruction_lines`` and ``instruction_files`` card fields of a linked program."""
    spans = [i.span for i in program.instructions]
    return {
        "instruction_lines": tuple(s.line if s else 0 for s in spans),
        "instruction_files": tuple("" if s is None or s.file == program.source_name else s.file for s in spans),
    }


def symbol_to_json(s: Symbol) -> dict:
    return {"name": s.name, "kind": s.kind, "address": s.address, "shape": list(s.shape), "length": s.length,
            "file": s.span.file if s.span else None}
