"""Named row blocks of the residual stream (the rows of the punch card X).

Like tracr's named residual subspaces: every row of X belongs to exactly one named block, and every
weight is written in terms of block names (``rows["mem"][3]``), never bare row numbers. The flat
index is computed once, here. Blocks have a role:

- ``static``: written by the card (positional codes, instruction fields, indicator rows); never
  changed by the machine.
- ``state``: the machine state (program counter, memory values); changed by the machine.
- ``temp``: scratch fields that are 0 between steps: written and cleared within one pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, Literal

from fleqc.errors import ErrorCode, FleqError

Role = Literal["static", "state", "temp"]


@dataclass(frozen=True)
class RowBlock:
    """A contiguous run of ``size`` rows starting at ``start``."""

    name: str
    start: int
    size: int
    role: Role
    doc: str = ""

    def __getitem__(self, k: int) -> int:
        if not 0 <= k < self.size:
            raise IndexError(f"row block {self.name!r} has {self.size} rows, asked for {k}")
        return self.start + k

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start, self.start + self.size))

    def __len__(self) -> int:
        return self.size

    @property
    def slice(self) -> slice:
        return slice(self.start, self.start + self.size)

    def label(self, k: int) -> str:
        return self.name if self.size == 1 else f"{self.name}[{k}]"


class RowSpace:
    """An ordered set of row blocks; names are unique and blocks tile rows 0..d-1 without overlap."""

    def __init__(self, blocks: Iterable[tuple[str, int, Role, str]]) -> None:
        self._blocks: dict[str, RowBlock] = {}
        start = 0
        for name, size, role, doc in blocks:
            if name in self._blocks:
                raise ValueError(f"duplicate row block {name!r}")
            if size < 1:
                raise ValueError(f"row block {name!r} must have at least one row")
            self._blocks[name] = RowBlock(name, start, size, role, doc)
            start += size
        self.d = start

    def __getitem__(self, name: str) -> RowBlock:
        try:
            return self._blocks[name]
        except KeyError:
            raise KeyError(f"no row block named {name!r}; have {sorted(self._blocks)}") from None

    def __contains__(self, name: str) -> bool:
        return name in self._blocks

    def __iter__(self) -> Iterator[RowBlock]:
        return iter(self._blocks.values())

    def with_role(self, role: Role) -> list[RowBlock]:
        return [b for b in self if b.role == role]

    def labels(self) -> list[str]:
        """One label per row, e.g. ``pc[2]``: kept next to the weights so any row can be named."""
        return [block.label(k) for block in self for k in range(block.size)]

    def to_list(self) -> list[list]:
        return [[b.name, b.size, b.role, b.doc] for b in self]

    @classmethod
    def from_list(cls, data: list) -> "RowSpace":
        try:
            return cls((str(n), int(s), r, str(doc)) for n, s, r, doc in data)
        except (TypeError, ValueError) as exc:
            raise FleqError(ErrorCode.BAD_CARD, f"malformed row-block map: {exc}") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RowSpace) and self.to_list() == other.to_list()
