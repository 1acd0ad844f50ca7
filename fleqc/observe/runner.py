"""The Result of a run watched through a Machine (what ``fleqc run`` prints, as ``fleqc.run`` gives it)."""

from __future__ import annotations

from fleqc.backends import Result
from fleqc.observe.machine import Machine
from fleqc.program import values_by_label


def result_of(machine: Machine) -> Result:
    memory = values_by_label(machine.symbols, machine.memory())
    return Result(machine.halted, machine.steps, memory, machine.pc, machine.backend)
