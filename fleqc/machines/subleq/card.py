"""Lay a linked SUBLEQ program out as a punch card, and read one back (FLEQ: :mod:`fleqc.machines.fleq.card`).

Column i carries its positional code; the scratchpad column holds the program counter (the code of
the first instruction column); memory column s+i holds cell i as N bits; instruction column
s+m+j holds instruction j's operands as codes of the columns they name. All temp rows are 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fleqc.card.card import Card, instruction_origins
from fleqc.card.codes import decode_signed, encode_signed, position_codes
from fleqc.card.columns import fitting_columns
from fleqc.machines.subleq.config import SubleqConfig
from fleqc.card.columns import ColumnRegions, check_fits
from fleqc.machines.subleq.rows import subleq_rows
from fleqc.program import Cell, LinkedProgram, SubleqInstruction


def choose_subleq_config(program: LinkedProgram, columns: int | None = None) -> SubleqConfig:
    """The machine for a program: ``columns`` if given, else the smallest power of two that fits."""
    needed = 1 + program.memory_size + len(program.instructions)
    if columns is None:
        columns = fitting_columns(needed)
    config = SubleqConfig(columns=columns, bits=program.bits)
    check_fits(program.memory_size, len(program.instructions), config.columns, config.scratch)
    return config


def program_to_subleq_card(program: LinkedProgram, config: SubleqConfig, start: int = 0, machine: Any = None) -> Card:
    """The punch card of a SUBLEQ program; the pc names instruction ``start``."""
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
    return Card(X, config, rows, regions, dict(program.symbols), program.source_name, **instruction_origins(program),
                machine=machine)


def subleq_card_to_program(card: Card) -> LinkedProgram:
    """The linked SUBLEQ program a card holds (spans reduced to the instruction lines)."""
    ins0, ins1 = card.regions.instructions
    cells = tuple(Cell(i, value) for i, value in enumerate(card.read_memory()))
    instructions = []
    for j, column in enumerate(range(ins0, ins1)):
        instructions.append(
            SubleqInstruction(
                j,
                card.pointer("instr_a", column, "memory"),
                card.pointer("instr_b", column, "memory"),
                card.pointer("instr_c", column, "instructions"),
                card.instruction_span(j),
            )
        )
    return LinkedProgram("subleq", card.config.bits, cells, tuple(instructions), dict(card.symbols), card.source_name)


def read_subleq_cell(card: Card, X: np.ndarray, address: int) -> int:
    """Memory cell ``address`` as a signed N-bit int."""
    return decode_signed(X[card.rows["mem"].slice, card.regions.memory_column(address)])
