"""The row blocks of the SUBLEQ punch card.

Columns (left to right)::

    | scratchpad (1) | memory (m cells) | instructions (k) | padding |

Each column i carries its positional code ``pos`` = bits of i. The row blocks are fixed by the
machine configuration alone (so the weights are too); the column regions depend on the program.
"""

from __future__ import annotations

from fleqc.card.rows import RowSpace
from fleqc.machines.subleq.config import SubleqConfig


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
