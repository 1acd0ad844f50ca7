"""The columns of a punch card: the regions (scratchpad, memory, instructions) and the sizes a machine
may have (a power of two between MIN_COLUMNS and MAX_COLUMNS), shared by every machine."""

from __future__ import annotations

from dataclasses import dataclass

from fleqc.errors import ErrorCode, FleqError

MIN_COLUMNS = 4
MAX_COLUMNS = 1 << 16


def check_columns(n: int) -> None:
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


@dataclass(frozen=True)
class ColumnRegions:
    """Half-open column ranges of the scratchpad, memory and instruction regions."""

    scratch: tuple[int, int]
    memory: tuple[int, int]
    instructions: tuple[int, int]
    columns: int

    @classmethod
    def plan(cls, memory_cells: int, instructions: int, columns: int, scratch: int = 1) -> "ColumnRegions":
        mem_end = scratch + memory_cells
        return cls((0, scratch), (scratch, mem_end), (mem_end, mem_end + instructions), columns)

    def memory_column(self, address: int) -> int:
        return self.memory[0] + address

    def instruction_column(self, index: int) -> int:
        return self.instructions[0] + index

    def to_dict(self) -> dict:
        return {
            "scratch": list(self.scratch),
            "memory": list(self.memory),
            "instructions": list(self.instructions),
            "columns": self.columns,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "ColumnRegions":
        return cls(
            tuple(data["scratch"]), tuple(data["memory"]), tuple(data["instructions"]), int(data["columns"])
        )


def check_fits(
    memory_cells: int, instructions: int, columns: int, scratch: int = 1, scratch_name: str = "scratchpad"
) -> None:
    """``scratch_name`` says what the ``scratch`` leading columns are (FLEQ: the reference and lanes).

    Raise PROGRAM_TOO_LARGE when the program needs more columns than the machine has."""
    needed = scratch + memory_cells + instructions
    if needed > columns:
        raise FleqError(
            ErrorCode.PROGRAM_TOO_LARGE,
            f"the program needs {needed} columns ({scratch} {scratch_name} + {memory_cells} memory + "
            f"{instructions} instructions) but the machine has {columns}; use --columns "
            f"{1 << (needed - 1).bit_length()} or more",
        )
