"""The SUBLEQ machine's configuration: everything its weights depend on, and nothing else.

One configuration = one frozen transformer. Every program whose memory and instructions fit in the
configuration's columns runs on the same weights; the program itself lives only in the punch card X.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from fleqc.card.columns import check_columns
from fleqc.errors import ErrorCode, FleqError
from fleqc.program import DEFAULT_BITS, MAX_BITS, MIN_BITS
from fleqc.schema import field, integer


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
        check_columns(self.columns)
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
