"""Layout of the SUBLEQ punch card: named row blocks and column regions.

Columns (left to right)::

    | scratchpad (1) | memory (m cells) | instructions (k) | padding |

Each column i carries its positional code ``pos`` = bits of i. The row blocks are fixed by the
machine configuration alone (so the weights are too); the column regions depend on the program.
"""

from __future__ import annotations

from dataclasses import dataclass

from fleqc.errors import ErrorCode, FleqError
from fleqc.machine.config import SubleqConfig
from fleqc.machine.rows import RowSpace


def subleq_rows(config: SubleqConfig) -> RowSpace:
    """The residual stream of the SUBLEQ machine; w = log2(n) code bits, N value bits.

    d = 4 + 9 w + 5 N rows.
    """
    w, N = config.code_bits, config.bits
    return RowSpace(
        [
            # static: written by the card, never changed by the machine
            ("one", 1, "static", "1 in every column: the bias row of every layer"),
            ("scratch", 1, "static", "1 in the scratchpad column, 0 elsewhere"),
            ("pos", w, "static", "positional code of the column"),
            ("instr_a", w, "static", "instruction columns: code of operand a (subtrahend address)"),
            ("instr_b", w, "static", "instruction columns: code of operand b (minuend/result address)"),
            ("instr_c", w, "static", "instruction columns: code of the branch target"),
            # state: what the machine changes
            ("pc", w, "state", "scratchpad: code of the instruction column to execute"),
            ("mem", N, "state", "memory columns: the cell's N-bit two's complement value"),
            # temp: 0 between steps
            ("cur_a", w, "temp", "scratchpad: fetched operand a"),
            ("cur_b", w, "temp", "scratchpad: fetched operand b"),
            ("cur_c", w, "temp", "scratchpad: fetched branch target"),
            ("val_a", N, "temp", "scratchpad: mem[a]"),
            ("val_b", N, "temp", "scratchpad: mem[b]"),
            ("res", N, "temp", "scratchpad: mem[b] - mem[a] (N-bit wraparound)"),
            ("flag", 1, "temp", "scratchpad: 1 if the result <= 0 else 0"),
            ("next_pc", w, "temp", "scratchpad: code of pc + 1"),
            ("wval", N, "temp", "every column: the value being written (nonzero only in column b)"),
            ("wen", 1, "temp", "every column: write enable, 1 in column b only"),
        ]
    )


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
