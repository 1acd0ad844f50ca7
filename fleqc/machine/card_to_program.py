"""Punch card -> linked program, so the reference backend can run any card.

Instruction operands are decoded from the codes stored in the instruction columns, memory from the
memory columns, by the card's machine (fleqc.machines); only the source spans are lost (instruction
lines are kept in the card).
"""

from __future__ import annotations

from typing import Any

from fleqc.machine.card import Card
from fleqc.machines import machine_of


def card_to_program(card: Card) -> Any:
    return machine_of(card.config).decode(card)
