"""Read a linked program back out of a punch card (so the reference backend can run any card).

Instruction operands are decoded from the codes stored in the instruction columns, memory from the
memory columns; only the source spans are lost (instruction lines are kept in the card).
"""

from __future__ import annotations

from fleqc.machine.card import Card
from fleqc.program import Cell, LinkedProgram, SubleqInstruction


def card_to_program(card: Card) -> LinkedProgram:
    if card.config.kind == "fleq":
        from fleqc.machine.fleq_card import fleq_card_to_program

        return fleq_card_to_program(card)
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
