"""Read a linked program back out of a punch card (so the reference backend can run any card).

Instruction operands are decoded from the codes stored in the instruction columns, memory from the
memory columns; only the source spans are lost (instruction lines are kept in the card).
"""

from __future__ import annotations

from fleqc.errors import ErrorCode, FleqError
from fleqc.machine.card import Card
from fleqc.machine.codes import decode_unsigned
from fleqc.program import Cell, LinkedProgram, SubleqInstruction


def card_to_program(card: Card) -> LinkedProgram:
    if card.config.kind == "fleq":
        from fleqc.machine.fleq_card import fleq_card_to_program

        return fleq_card_to_program(card)
    X, rows, regions = card.X, card.rows, card.regions
    mem0, mem1 = regions.memory
    ins0, ins1 = regions.instructions

    def address(field: str, column: int, lo: int, hi: int, what: str) -> int:
        target = decode_unsigned(X[rows[field].slice, column])
        if not lo <= target < hi:
            raise FleqError(
                ErrorCode.BAD_CARD,
                f"{card.source_name}: instruction {column - ins0} has {what} pointing at column {target}, "
                f"outside the {what.split()[-1]} region",
            )
        return target - lo

    cells = tuple(Cell(i, value) for i, value in enumerate(card.read_memory()))
    instructions = []
    for j, column in enumerate(range(ins0, ins1)):
        instructions.append(
            SubleqInstruction(
                j,
                address("instr_a", column, mem0, mem1, "operand a memory"),
                address("instr_b", column, mem0, mem1, "operand b memory"),
                address("instr_c", column, ins0, ins1, "target instruction"),
                card.instruction_span(j),
            )
        )
    return LinkedProgram("subleq", card.config.bits, cells, tuple(instructions), dict(card.symbols), card.source_name)
