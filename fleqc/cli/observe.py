"""The observing side of the command line: the listeners of ``fleqc run`` (``--trace``,
``--trace-json``, ``--report``, the progress bar) and the commands ``disasm``, ``show`` and ``debug``."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import click

from fleqc import api
from fleqc.cli.common import input_files, reports_errors
from fleqc.cli.options import machine_options
from fleqc.machines import load_card, machine_of
from fleqc.observe import progress
from fleqc.program import source_files
from fleqc.runner import Result, Run
from fleqc.safe_io import atomic_output, check_output


def watch_run(run: Run, max_steps: int, *, trace: bool, trace_json: Optional[Path], report: Optional[Path],
              as_json: bool, trace_hidden: bool = False, inputs: tuple | list = ()) -> Result:
    """Run ``run`` to its end with the listeners asked for: the text trace (to stdout, or to stderr
    with ``--json``, which keeps stdout one JSON document, and for a program that prints its own
    output there), the JSON trace, the HTML report and the
    progress bar (on a terminal's stderr, left out when the trace is printed to the same terminal).
    Nothing but what is printed depends on whether stdout or stderr is a terminal. The files are
    written under fleqc's output policy (fleqc.safe_io), never over one of ``inputs``."""
    trace_to_terminal = trace and (as_json or sys.stdout.isatty())
    # a program that prints shows its own progress, and a bar would cut into its lines
    bar_wanted = progress.wanted(as_json=as_json) and not trace_to_terminal and not run.machine.streams_output
    # in a pipe, a status line every few seconds (not on the reference: its loop runs uncounted)
    status_wanted = not progress.wanted() and run.backend != "reference"
    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(progress.RunProgress(max_steps=max_steps)) if bar_wanted else None
        on_count = bar.tick if bar is not None else None
        if bar is None and status_wanted:
            on_count = progress.PipeStatus(max_steps=max_steps, name=Path(run.source_name).name).tick
        if not (trace or trace_json or report):
            return run.finish(max_steps, on_count=on_count)
        from fleqc.observe.trace import TraceWriter  # here: only a traced run needs it (start-up)

        json_file = stack.enter_context(atomic_output(trace_json, inputs, text=True)) if trace_json else None
        to_stderr = as_json or run.machine.streams_output  # stdout is the JSON document, or the program's output
        text = (lambda line: click.echo(line, err=to_stderr)) if trace else None
        handlers: list[Callable] = []
        if trace or trace_json:
            handlers.append(TraceWriter(text, json_file, hidden=trace_hidden))
        recorder = None
        if report:
            from fleqc.observe.report import Recorder  # here: the report's pictures load slowly (start-up)

            recorder = Recorder(run)
            handlers.append(recorder.event)

        def on_event(event: Any) -> None:
            for handler in handlers:
                handler(event)

        run.advance(max_steps, on_event=on_event, on_count=on_count,
                    on_X=recorder.state if recorder is not None else None)
    if recorder is not None:
        recorder.finish()
        recorder.write(report, inputs)
        click.echo(f"wrote {report}", err=True)
    return run.result()


@click.command("disasm")
@click.argument("card_path", metavar="CARD.npz", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the assembly to this file instead of printing it.")
@reports_errors
def disasm(card_path: Path, output: Optional[Path]) -> None:
    """Print the program a punch card holds, decoded back from X, as assembly.

    Data by label with their initial values, instructions with their labels and, as comments,
    their index and source line. The text builds again to the same card (`.linked`: the linker's
    hidden cells under their own names, nothing added, the card's size):
    fleqc disasm CARD | fleqc build - -o AGAIN.npz
    """
    from fleqc.observe.disasm import disassemble  # here: only disasm needs it (start-up)

    inputs = input_files(card_path)
    if output is not None:
        check_output(output, inputs)
    text = disassemble(load_card(card_path))
    if output is None:
        click.echo(text, nl=False)
    else:
        with atomic_output(output, inputs, text=True) as f:
            f.write(text)
        click.echo(f"wrote {output}", err=True)


def load_target(target: Path, sizes: dict[str, Optional[int]]):
    """A card (.npz) or a linked program (.fleq) from a path (``sizes``: the machine options given)."""
    if target.suffix == ".npz":
        return load_card(target)
    return api.compile(target, **sizes)


@click.command("show")
@click.argument("target", metavar="CARD|PROG", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The picture to write (.png, or any format matplotlib writes).")
@click.option("--step", type=click.IntRange(min=0), default=0, show_default=True,
              help="Show X after this many passes of the transformer (fewer if it halts first).")
@click.option("--attention", "layer", type=click.IntRange(min=0), default=None, metavar="LAYER",
              help="Show the attention maps of this layer (numbered from 0, as in the safetensors keys, "
              "ONNX, torch and TransformerLens), one panel per head, "
              "during the pass that starts from X after --step passes.")
@click.option("--max-heads", type=click.IntRange(min=1), default=16, show_default=True,
              help="With --attention: show at most this many heads.")
@click.option("--rows", default=None, metavar="BLOCK,...",
              help="Only these row blocks (names as `fleqc inspect` lists them), e.g. pc,mem.")
@click.option("--mode", type=click.Choice(["softmax", "hardmax"]), default="softmax", show_default=True)
@click.option("--columns", "-n", type=int, default=None, help="Columns of the machine (a .fleq program).")
@machine_options("show")
@reports_errors
def show(target: Path, output: Path, step: int, layer: Optional[int], max_heads: int, rows: Optional[str],
         mode: str, columns: Optional[int], **sizes: Optional[int]) -> None:
    """Draw X as a heatmap (row blocks and column regions named), or a layer's attention maps.

    Needs matplotlib: pip install 'fleqc[plot]'.
    """
    # here, not at the top: only show needs them (matplotlib is loaded later still; start-up)
    from fleqc.observe import show as pictures
    from fleqc.observe.attention import attention_layers, attention_maps

    try:
        pictures._pyplot()
    except pictures.PlotUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    subject = load_target(target, sizes)
    inputs = input_files(target, *source_files(subject))
    check_output(output, inputs)  # before the run
    machine, X = pictures.state_after(subject, step, mode=mode, columns=columns, **sizes)
    card, name = machine.card, Path(machine.card.source_name).name
    when = f"after {machine.steps} steps" + (" (halted)" if machine.halted else "")
    if layer is None:
        chosen = [r.strip() for r in rows.split(",")] if rows is not None else None
        if chosen is not None and not all(chosen):
            raise click.UsageError(f"--rows {rows!r}: name each row block, separated by commas (e.g. pc,mem)")
        try:
            pictures.plot_X(card, X, output, f"X of {name} {when}, pc = {machine.pc}", rows=chosen, inputs=inputs)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
    else:
        if layer not in attention_layers(machine.model):
            raise click.UsageError(f"layer {layer} is not an attention layer; the attention layers are "
                                   f"{', '.join(map(str, attention_layers(machine.model)))}")
        maps = attention_maps(machine.model, X, layer, mode)
        try:
            pictures.plot_attention(card, maps, output, f"{name}: layer {layer}, pass from X {when}",
                                    max_heads=max_heads, inputs=inputs)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
    click.echo(f"wrote {output}", err=True)



@click.command("debug")
@click.argument("target", metavar="PROG|CARD", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--backend", "-b", type=click.Choice(["transformer", "reference"]), default="transformer",
              show_default=True)
@click.option("--mode", type=click.Choice(["softmax", "hardmax"]), default="softmax", show_default=True)
@click.option("--break", "breaks", multiple=True, metavar="LINE|LABEL", help="Start with a breakpoint here.")
@click.option("--watch", "watches", multiple=True, metavar="LABEL", help="Also watch this data label.")
@click.option("--columns", "-n", type=int, default=None, help="Columns of the machine (a .fleq program).")
@machine_options("debug")
@reports_errors
def debug(target: Path, backend: str, mode: str, breaks: tuple[str, ...], watches: tuple[str, ...],
          columns: Optional[int], **sizes: Optional[int]) -> None:
    """Step through a program in the terminal: source with the current line, breakpoints, watched
    labels, and X's rows for one column (transformer).

    \b
    keys: s step, p step back, n next, c continue, r run to halt, b breakpoint at the cursor (up/down),
          [ ] move the X column, : a command (break, clear, watch, unwatch, step K, back K, column K), q quit
    watch LABEL makes a watchpoint: continue and next stop after a step that changes it.
    Needs textual: pip install 'fleqc[debug]'.
    """
    import importlib.util  # here: only debug looks for textual (start-up)

    if importlib.util.find_spec("textual") is None:
        raise click.ClickException("the debugger needs textual: pip install 'fleqc[debug]'")
    if not (sys.stdin.isatty() and sys.stdout.isatty()):  # the screen would wait for keys forever
        raise click.UsageError("the debugger is interactive and needs a terminal; in a pipe, "
                               "`fleqc run --trace` prints every step")
    from fleqc.observe.debug import Debugger, make_app  # here: only debug needs it (start-up)

    subject = load_target(target, sizes)
    streams = machine_of(subject).streams_output

    def fresh_run() -> Run:  # also how a step back replays the run to the step before
        own = dict(sizes, output=bytearray()) if streams else sizes  # what the program prints, beside the labels
        return Run(subject, backend, mode=mode, columns=columns, **own)

    debugger = Debugger(fresh_run(), remake=fresh_run)
    for where in breaks:
        debugger.command(f"break {where}")
    for label in watches:
        debugger.command(f"watch {label}")
    make_app(debugger).run()

