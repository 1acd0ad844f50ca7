"""Execution traces: one :class:`fleqc.steps.TraceEvent` per executed instruction, written as text
lines or JSON lines.

An event says which instruction ran (its index ``pc``, the file and line it came from, its text as
written there and as decoded), the values it read and wrote (by label, read from the state before
and after the step) and whether it branched. The same events come from every backend: the run
(:class:`fleqc.runner.Run`) asks the machine to describe each step from the state before and after
it (decoded from X on the transformers); a test checks the backends agree step by step.

What an instruction reads and writes:

- SUBLEQ ``subleq a, b, c``: reads ``a`` and ``b``, writes ``b``; it branches to ``c`` when the
  new ``mem[b] <= 0``.
- FLEQ ``fleq dst, f, a, b, flag, p``: reads ``a`` (and ``b`` for a binary ``f``), writes ``dst``;
  then reads ``flag`` (after the write) and branches to ``p`` when ``mem[flag] <= 0``.

A text line shows a vector or matrix by its shape and first entries, and leaves out the linker's
hidden cells (``__one``, ``__call_1``) unless asked (``--trace-hidden``); the JSON lines have every
operand with its full value.
"""

from __future__ import annotations

import json
from typing import Callable, Optional

from fleqc.runner import Run
from fleqc.steps import Access, Names, TraceEvent, format_value, jsonable, source_text  # noqa: F401 (the events' names)


class TraceWriter:
    """Writes events as text lines and/or JSON lines as they come."""

    def __init__(self, text: Optional[Callable[[str], None]] = None, json_file=None, hidden: bool = False) -> None:
        self.text, self.json_file, self.hidden = text, json_file, hidden

    def __call__(self, event: TraceEvent) -> None:
        if self.text is not None:
            self.text(event.text(hidden=self.hidden))
        if self.json_file is not None:
            self.json_file.write(json.dumps(event.to_json()) + "\n")


def trace_program(target, backend: str = "reference", max_steps: int = 100_000, **options) -> list[TraceEvent]:
    """Every event of a run (a card or linked program) on ``backend``; options as for fleqc.runner.Run."""
    events: list[TraceEvent] = []
    Run(target, backend, **options).advance(max_steps, on_event=events.append)
    return events
