"""The observing commands of ``fleqc``: ``run --trace/--trace-json/--report`` (with the progress
bar), ``disasm``, ``show`` and ``debug``. ``fleqc.cli`` registers them; nothing here imports it."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import click

from fleqc.backends import Result
from fleqc.observe import progress


def observed_run(subject: Any, options: dict, *, trace: bool, trace_json: Optional[Path], report: Optional[Path],
                 as_json: bool) -> Optional[Result]:
    """Run with the trace, report and progress bar asked for; None when nothing watches (plain run).

    The text trace goes to stdout (to stderr with ``--json``, which keeps stdout one JSON document).
    The progress bar is left out when the trace is printed to the same terminal.
    """
    from fleqc.machines import machine_of

    trace_to_terminal = trace and (as_json or sys.stdout.isatty())
    # a program that prints shows its own progress, and a bar would cut into its lines
    bar_wanted = progress.wanted(as_json=as_json) and not trace_to_terminal and not machine_of(subject).streams_output
    if not (trace or trace_json or report or bar_wanted):
        return None
    from fleqc.observe.machine import Machine
    from fleqc.observe.runner import result_of
    from fleqc.observe.trace import TraceWriter

    max_steps = options["max_steps"]
    machine = Machine(subject, options["backend"], mode=options["mode"], weights=options["weights"],
                      columns=options["columns"], engine=options["engine"], **options["sizes"])
    with contextlib.ExitStack() as stack:
        json_file = stack.enter_context(open(trace_json, "w", encoding="utf-8")) if trace_json else None
        text = (lambda line: click.echo(line, err=as_json)) if trace else None
        handlers: list[Callable] = []
        if trace or trace_json:
            handlers.append(TraceWriter(text, json_file))
        recorder = None
        if report:
            from fleqc.observe.report import Recorder

            recorder = Recorder(machine)
            handlers.append(recorder.event)
        bar = stack.enter_context(progress.RunProgress(max_steps=max_steps)) if bar_wanted else None

        def on_event(event) -> None:
            for handler in handlers:
                handler(event)

        machine.advance(max_steps, on_event=on_event if handlers else None,
                        on_count=bar.tick if bar is not None else None,
                        on_X=recorder.state if recorder is not None else None)
    result = result_of(machine)
    if recorder is not None:
        recorder.finish()
        recorder.write(report)
        click.echo(f"wrote {report}", err=True)
    return result


def register_commands(group: click.Group, reports_errors: Callable) -> None:
    """Add ``disasm``, ``show`` and ``debug`` to the ``fleqc`` group (errors reported as the CLI does)."""
    from fleqc.observe import cli_commands

    for command in cli_commands.make_commands(reports_errors):
        group.add_command(command)
