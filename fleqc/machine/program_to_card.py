"""Linked program -> punch card: the machine the program names lays it out (fleqc.machines)."""

from __future__ import annotations

from typing import Any

from fleqc.machine.card import Card
from fleqc.machines import machine_of


def program_to_card(program: Any, columns: int | None = None, start: int = 0, **options: Any) -> Card:
    """The punch card of ``program`` on the smallest machine that fits it (or ``columns``, and the
    machine's own ``options`` such as ``cell``); the pc names instruction ``start``."""
    machine = machine_of(program)
    return machine.encode(program, machine.config_for(program, columns, options), start)
