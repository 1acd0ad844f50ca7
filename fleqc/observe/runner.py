"""``fleqc run`` with something watching: a trace, a progress bar, a report (see the CLI)."""

from __future__ import annotations

from typing import Any, Callable, Optional

from fleqc.backends import Result
from fleqc.observe.machine import Machine
from fleqc.observe.trace import TraceEvent
from fleqc.program import values_by_label


def result_of(machine: Machine) -> Result:
    memory = values_by_label(machine.symbols, machine.memory())
    return Result(machine.halted, machine.steps, memory, machine.pc, machine.backend)


def run_observed(
    subject: Any,
    *,
    backend: str,
    max_steps: int,
    mode: str = "softmax",
    weights=None,
    columns: Optional[int] = None,
    cell: Optional[int] = None,
    fast: bool = True,
    on_event: Optional[Callable[[TraceEvent], None]] = None,
    on_count: Optional[Callable[[int], None]] = None,
    machine: Optional[Machine] = None,
    on_X=None,
) -> Result:
    """Run ``subject`` (a card or linked program) to the end as ``fleqc.run`` would, showing every
    event to ``on_event`` and every step count to ``on_count``; returns the same Result."""
    if machine is None:
        machine = Machine(subject, backend, mode=mode, weights=weights, columns=columns, cell=cell, fast=fast)
    machine.advance(max_steps, on_event=on_event, on_count=on_count, on_X=on_X)
    return result_of(machine)
