"""Lay a linked SUBLEQ program out as a punch card (FLEQ programs: ``fleq_card``).

Column i carries its positional code; the scratchpad column holds the program counter (the code of
the first instruction column); memory column s+i holds cell i as N bits; instruction column
s+m+j holds instruction j's operands as codes of the columns they name. All temp rows are 0.
"""

from __future__ import annotations

import numpy as np

from fleqc.machine.card import Card, instruction_origins
from fleqc.machine.codes import encode_signed, position_codes
from fleqc.machine.config import SubleqConfig, fitting_columns
from fleqc.machine.layout import ColumnRegions, check_fits, subleq_rows
from fleqc.program import LinkedProgram, SubleqInstruction


def choose_config(program: LinkedProgram, columns: int | None = None) -> SubleqConfig:
    """The machine for a program: ``columns`` if given, else the smallest power of two that fits."""
    needed = 1 + program.memory_size + len(program.instructions)
    if columns is None:
        columns = fitting_columns(needed)
    config = SubleqConfig(columns=columns, bits=program.bits)
    check_fits(program.memory_size, len(program.instructions), config.columns, config.scratch)
    return config


def program_to_card(program: LinkedProgram, columns: int | None = None, cell: int | None = None,
                    start: int = 0) -> Card:
    """The punch card of a SUBLEQ or FLEQ program (``cell``: FLEQ cell size, default 8 or larger;
    ``start``: the instruction the program counter names, 0 for a program)."""
    if program.machine == "fleq":
        from fleqc.machine.fleq_card import program_to_fleq_card

        return program_to_fleq_card(program, columns, cell, start)
    config = choose_config(program, columns)
    rows = subleq_rows(config)
    regions = ColumnRegions.plan(program.memory_size, len(program.instructions), config.columns, config.scratch)
    codes = position_codes(config.columns)

    X = np.zeros((rows.d, config.columns))
    X[rows["one"].slice] = 1.0
    X[rows["scratch"][0], regions.scratch[0]] = 1.0
    X[rows["pos"].slice] = codes
    X[rows["pc"].slice, regions.scratch[0]] = codes[:, regions.instruction_column(start)]
    for cell in program.cells:
        X[rows["mem"].slice, regions.memory_column(cell.address)] = encode_signed(int(cell.value), config.bits)
    for instr in program.instructions:
        assert isinstance(instr, SubleqInstruction)
        column = regions.instruction_column(instr.index)
        X[rows["instr_a"].slice, column] = codes[:, regions.memory_column(instr.a)]
        X[rows["instr_b"].slice, column] = codes[:, regions.memory_column(instr.b)]
        X[rows["instr_c"].slice, column] = codes[:, regions.instruction_column(instr.target)]
    return Card(X, config, rows, regions, dict(program.symbols), program.source_name, **instruction_origins(program))
