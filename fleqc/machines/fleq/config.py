"""The FLEQ machine's configuration: everything its weights depend on, and nothing else."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from fleqc.card.columns import check_columns
from fleqc.errors import ErrorCode, FleqError
from fleqc.schema import field, integer

DEFAULT_CELL = 8
MIN_CELL, MAX_CELL = 1, 16


@dataclass(frozen=True)
class FleqConfig:
    """The FLEQ machine: n columns (a power of two) whose memory cells hold up to cell x cell reals.

    Columns: one reference column, ``lanes`` = cell^2 lane columns (lane r works on entry
    (r // cell, r % cell) of the result), then memory and instruction columns.
    """

    columns: int
    cell: int = DEFAULT_CELL
    kind: str = "fleq"

    def __post_init__(self) -> None:
        check_columns(self.columns)
        if not MIN_CELL <= self.cell <= MAX_CELL:
            raise FleqError(ErrorCode.BAD_CONFIG, f"--cell must be between {MIN_CELL} and {MAX_CELL}, got {self.cell}")

    @property
    def code_bits(self) -> int:
        return self.columns.bit_length() - 1

    @property
    def lanes(self) -> int:
        return self.cell * self.cell

    @property
    def scratch(self) -> int:
        """Columns before memory: the reference column and the lanes."""
        return 1 + self.lanes

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "FleqConfig":
        """The saved configuration; SchemaError naming a missing or mistyped field."""
        return cls(*(integer(field(data, name, "machine"), f"machine.{name}") for name in ("columns", "cell")))

    def describe(self) -> str:
        return f"fleq machine: n={self.columns} columns, cells up to {self.cell}x{self.cell} float64"
