"""Machine configurations: everything the weights depend on, and nothing else.

One configuration = one frozen transformer. Every program whose memory and instructions fit in the
configuration's columns runs on the same weights; the program itself lives only in the punch card X.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from fleqc.errors import ErrorCode, FleqError
from fleqc.schema import field, integer

MIN_COLUMNS = 4
MAX_COLUMNS = 1 << 16
MIN_BITS, MAX_BITS = 2, 32
DEFAULT_BITS = 16


@dataclass(frozen=True)
class SubleqConfig:
    """The SUBLEQ machine: n columns (a power of two), N-bit integers, one scratchpad column.

    ``code_bits`` = log2(n) is the width of a positional code, which doubles as program counter and
    data pointer.
    """

    columns: int
    bits: int = DEFAULT_BITS
    scratch: int = 1
    kind: str = "subleq"

    def __post_init__(self) -> None:
        _check_columns(self.columns)
        if not MIN_BITS <= self.bits <= MAX_BITS:
            raise FleqError(
                ErrorCode.BAD_CONFIG, f"--bits must be between {MIN_BITS} and {MAX_BITS}, got {self.bits}"
            )
        if self.scratch != 1:
            raise FleqError(ErrorCode.BAD_CONFIG, "the SUBLEQ machine has exactly one scratchpad column")

    @property
    def code_bits(self) -> int:
        return self.columns.bit_length() - 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "SubleqConfig":
        """The saved configuration; SchemaError naming a missing or mistyped field."""
        return cls(*(integer(field(data, name, "machine"), f"machine.{name}")
                     for name in ("columns", "bits", "scratch")))

    def describe(self) -> str:
        return f"subleq machine: n={self.columns} columns, N={self.bits}-bit integers"


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
        _check_columns(self.columns)
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


def _check_columns(n: int) -> None:
    if n < MIN_COLUMNS or n > MAX_COLUMNS or n & (n - 1):
        raise FleqError(
            ErrorCode.BAD_CONFIG,
            f"--columns must be a power of two between {MIN_COLUMNS} and {MAX_COLUMNS}, got {n}",
        )


def smallest_columns(needed: int) -> int:
    """The smallest power of two >= ``needed`` (and >= MIN_COLUMNS)."""
    n = MIN_COLUMNS
    while n < needed:
        n *= 2
    return n


def fitting_columns(needed: int) -> int:
    """:func:`smallest_columns`, or PROGRAM_TOO_LARGE when even the largest machine is too small."""
    if needed > MAX_COLUMNS:
        raise FleqError(ErrorCode.PROGRAM_TOO_LARGE,
                        f"the program needs {needed:,} columns, more than the largest machine's {MAX_COLUMNS:,}")
    return smallest_columns(needed)
