"""The `fleqc` command line: build, run and inspect punch cards, and save machine weights. This
package is the only part of fleqc that imports click; every command is a thin layer over the API,
the run path (fleqc.runner) and its listeners (fleqc.observe).

Exit status: 0 success; 1 an error in the user's input (printed as file:line:col, no traceback);
2 a usage error; 3 the step limit was reached before the program halted; 4 a machine fault (the
transformer's state left its valid set; see "Errors and limits" in the README); 130 Ctrl-C;
141 stdout was a pipe whose reader went away.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import json
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import click
import numpy as np

from fleqc import api
from fleqc.cli.calc import calc_command
from fleqc.cli.common import EXIT_FAULT, EXIT_STEP_LIMIT, input_files, reports_errors
from fleqc.cli.export import export_command, load_weights_file, save_weights_file
from fleqc.cli.observe import debug, disasm, show, watch_run
from fleqc.cli.options import (
    check_machine_options,
    default_columns,
    machine_choice,
    machine_config,
    machine_options,
    option_owners,
)
from fleqc.card.card import Card
from fleqc.errors import FleqError
from fleqc.machines import REGISTRY, compile_text, load_card, machine_of, weights_for
from fleqc.machines import machine as named_machine
from fleqc.program import aliases, included_labels, source_files
from fleqc.runner import BACKENDS, Result, Run
from fleqc.safe_io import check_output, check_outputs
from fleqc.state import DEFAULT_MAX_STEPS
from fleqc.transformer.executor import ENGINES
from fleqc.transformer.layers import AttentionLayer

columns_option = click.option(
    "--columns", "-n", type=int, default=None, metavar="n",
    help="Columns of the machine (a power of two). Default: the smallest that fits the program. "
    "Fix it to run many programs on one machine.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fleqc")
def main() -> None:
    """fleqc: compile FLEQ/SUBLEQ assembly to punch cards for a looped transformer, and run them.

    \b
    fleqc build prog.fleq -o prog.npz   compile to a punch card
    fleqc run prog.fleq                 run on the looped transformer, print every data label
    fleqc run prog.npz --backend reference
    fleqc inspect prog.npz              show the card's layout, symbols and values
    fleqc weights -n 64 -N 16 -o m.npz  save the weights of one machine
    fleqc calc "sqrt(2)^3 - 1/3"        compute an expression on the FLEQ machine
    fleqc run prog.flow                 Flow, the language above the assembly (docs/flow.md);
                                        fleqc build prog.flow --emit prints its assembly
    fleqc run hello.sq --input in.txt   classic SUBLEQ (.sq, .asq, .dec): the output streams to stdout
    fleqc run prog.fleq --trace         one line per executed instruction (--report run.html)
    fleqc disasm prog.npz               the program read back out of the card
    fleqc show prog.fleq -o x.png       X (or --attention LAYER) as a picture; fleqc debug prog.fleq
    fleqc export --onnx m.onnx -n 32    the machine as ONNX (or --safetensors FILE)

    \b
    Exit status: 0 done; 1 an error in the input (file:line:col, no traceback);
    2 a usage error; 3 the step limit was reached; 4 a machine fault;
    130 Ctrl-C; 141 stdout closed by its reader.
    The language: docs/language.md. The machines: README.md, docs/fleq-machine.md.
    """


program_machine = click.option(
    "--machine", type=click.Choice(list(REGISTRY)), default=None,
    help="The machine the program is for (default: from the file's suffix: .sq, .asq and .dec are classic "
    "SUBLEQ; a .fleq file names its machine with .machine).")


@main.command()
@click.argument("program", type=click.Path(readable=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Card file to write (default: PROGRAM with the suffix .npz).")
@click.option("--emit", is_flag=True,
              help="A .flow program: print the FLEQ assembly it compiles to instead of building a card.")
@columns_option
@program_machine
@machine_options("build")
@reports_errors
def build(program: Path, output: Optional[Path], emit: bool, columns: Optional[int], machine: Optional[str],
          **options: Any) -> None:
    """Compile PROGRAM (.fleq; Flow: .flow; classic SUBLEQ: .sq, .asq, .dec; - reads the program
    from stdin, with -o) to a punch card (.npz); nothing is written on error.

    `fleqc disasm CARD | fleqc build - -o AGAIN.npz` gives the same card.
    The output is written atomically and only over a regular file that is not an input (not a
    link, device or pipe; never the program or a file it includes)."""
    if emit:
        if str(program) == "-":
            raise click.UsageError("--emit reads a Flow program from a file, not from stdin")
        click.echo(api.emit(program), nl=False)
        return
    if str(program) == "-":
        if output is None:
            raise click.UsageError("a program read from stdin (-) needs -o CARD.npz")
        output = check_output(output, input_files())
        suffixes = named_machine(machine).suffixes if machine else ()
        name = "<stdin>" + (suffixes[0] if suffixes else "")
        compiled = compile_text(sys.stdin.read(), name, machine=machine, **options)
        inputs = input_files(*source_files(compiled))
        card = api.build(compiled, columns=columns, **options)
        card.save(check_output(output, inputs), inputs=inputs)
        click.echo(f"wrote {output}: {card.summary()}")
        return
    inputs = input_files(program)
    output = check_output(output or program.with_suffix(".npz"), inputs)
    card = api.build(api.compile(program, machine=machine, **options), columns=columns, **options)
    card.save(output, inputs=inputs)
    click.echo(f"wrote {output}: {card.summary()}")


@main.command()
@click.argument("target", type=click.Path(readable=False, path_type=Path))
@click.option("--backend", "-b", type=click.Choice(list(BACKENDS)),
              default="transformer", show_default=True,
              help="Run on the looped transformer (numpy is the same), the same weights in PyTorch or ONNX "
              "Runtime (extras fleqc[torch], fleqc[onnx]), or the plain-Python reference interpreter.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default=None,
              help="--backend torch: where the machine runs (default cpu).")
@click.option("--mode", type=click.Choice(["softmax", "hardmax"]), default="softmax", show_default=True,
              help="Attention of the transformer: softmax (the definition) or hardmax (its exact limit; "
              "SUBLEQ only).")
@click.option("--max-steps", type=click.IntRange(min=0), default=DEFAULT_MAX_STEPS, show_default=True,
              help="Stop after this many steps if the program has not halted (exit status 3).")
@click.option("--weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Load the machine from a weights file (.npz from `fleqc weights`, or .safetensors) "
              "instead of building it.")
@click.option("--json", "as_json", is_flag=True, help='Print {"halted", "steps", "memory"} as JSON.')
@click.option("--all-labels", is_flag=True,
              help="Also print the data labels of included files (the stdlib's arguments and scratch cells).")
@click.option("--labels", "only_labels", default=None, metavar="A,B,...",
              help="Print only these data labels, in this order (any label, an included file's too).")
@click.option("--engine", type=click.Choice(list(ENGINES)), default="auto", show_default=True,
              help="How the transformer's passes are evaluated: incremental (recomputes only what can "
              "change), sparse (every column, through the nonzeros of the weights), dense (the plain "
              "forward pass, the definition), or auto (sparse while a run is short, then incremental). "
              "The same function: identical X for SUBLEQ, equal to rounding for FLEQ.")
@click.option("--dense", is_flag=True, help="Short for --engine dense.")
@click.option("--stats", is_flag=True,
              help="Print the engine's figures on stderr (passes, columns recomputed and seconds per "
              "layer, fallbacks); with --json, under \"engine\".")
@click.option("--trace", is_flag=True,
              help="Print one line per executed instruction: step, pc, file:line and source, values read "
              "and written by label, the branch (to stderr with --json). On the transformer it is read from X.")
@click.option("--trace-json", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help="Write the trace as JSON lines to FILE (every operand, full values).")
@click.option("--trace-hidden", is_flag=True,
              help="With --trace: also show the linker's hidden cells (__one, __call_1, ...), left out by default.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE.html",
              help="Write a self-contained HTML report of the run (source, memory and X per step, attention).")
@click.option("--lockstep", default=None, metavar="B1,B2,...",
              help="Run on several backends at once (numpy, torch, onnx, reference, or all; those not "
              "installed are left out), comparing the decoded state after every step and X between "
              "the transformer engines; the first difference is named by step, row block and column "
              "(exit status 4).")
@columns_option
@program_machine
@machine_options("run")
@reports_errors
def run(target: Path, backend: str, device: Optional[str], mode: str, max_steps: int, weights: Optional[Path],
        as_json: bool, all_labels: bool, only_labels: Optional[str], engine: str, dense: bool, stats: bool, trace: bool,
        trace_json: Optional[Path], trace_hidden: bool, report: Optional[Path], lockstep: Optional[str],
        columns: Optional[int],
        machine: Optional[str], **sizes: Any) -> None:
    """Run a program (.fleq) or punch card (.npz) until it halts; print every data label's value.

    A classic SUBLEQ program (.sq, .asq, .dec, or --machine classic) prints its own output instead,
    byte by byte as the transformer writes it, reading --input FILE (- for stdin); the run's
    figures go to stderr, or with the output into --json.

    Vectors and matrices print as aligned nested lists; --json prints them as nested JSON lists.
    Labels defined in included files (the stdlib's) are left out unless --all-labels.
    """
    if target.suffix == ".npz":
        given = {**sizes, "columns": columns, "machine": machine}
        shaping = ["columns", "machine", *(o.name for o in option_owners("build") if not o.runtime)]  # size a machine
        fixed = [name for name in shaping if given.get(name) is not None]
        if fixed:
            names = ", ".join(f"--{name}" for name in fixed)
            raise click.UsageError(f"{names} apply to program files; a card's machine is fixed")
        subject: Any = load_card(target)
    else:
        subject = api.compile(target, machine=machine, **sizes)
    inputs = input_files(target, weights, *source_files(subject))
    check_outputs([trace_json, report], inputs)  # before the run: nothing is computed for a refused output
    streams = machine_of(subject).streams_output  # the program prints: its bytes go to stdout as they come
    if streams:
        sizes["output"] = bytearray() if as_json else LastByte(sys.stdout.buffer)
    check_run_options(click.get_current_context(), subject, backend, weights, sizes)
    if device is not None and backend != "torch":
        raise click.UsageError("--device applies to --backend torch")
    model = load_weights_file(weights) if weights else None
    if model is not None and columns is None and not isinstance(subject, Card):
        columns, sizes = machine_size(model, subject, sizes)  # run on the weights' own machine
    if dense:
        engine = "dense"
    if lockstep is not None:
        result = run_in_lockstep(click.get_current_context(), subject, lockstep, max_steps, mode=mode,
                                 columns=columns, **sizes)
    else:
        the_run = Run(subject, backend, mode=mode, engine=engine, weights=model, columns=columns, device=device,
                      stats=stats, **sizes)
        result = watch_run(the_run, max_steps, trace=trace, trace_json=trace_json, report=report, as_json=as_json,
                           trace_hidden=trace_hidden, inputs=inputs)
    if only_labels is not None:
        result = dataclasses.replace(result, memory=chosen_labels(result.memory, only_labels))
    elif not all_labels:
        hidden = included_labels(subject.symbols, subject.source_name)
        result = dataclasses.replace(result, memory={k: v for k, v in result.memory.items() if k not in hidden})
    other_names = aliases(subject.symbols) if not as_json else {}
    if streams:
        printed = sizes["output"]
        result = dataclasses.replace(result, memory={} if not (as_json or only_labels) else result.memory)
        if as_json:
            exact = base64.b64encode(bytes(printed)).decode("ascii")  # the bytes themselves, every one
            click.echo(json.dumps({**result.to_json(), "output": bytes(printed).decode("utf-8", "replace"),
                                   "output_base64": exact}))
        else:
            if printed.last not in (None, 0x0A) and both_terminals():
                click.echo("", err=True)  # "halted after" on a line of its own, not after the program's last
            print_result(result, as_json, mode)
    else:
        print_result(result, as_json, mode, other_names, subject.symbols)
    if stats and not as_json and result.stats is not None:
        click.echo(f"engine: {json.dumps(result.stats)}", err=True)
    if not result.halted:
        click.echo(f"stopped after {result.steps} steps without halting (--max-steps {max_steps})", err=True)
        sys.exit(EXIT_STEP_LIMIT)


def run_in_lockstep(ctx: click.Context, subject: Any, backends: str, max_steps: int, **settings: Any) -> Result:
    """``--lockstep``: the run on several backends at once (fleqc.lockstep); a difference exits 4."""
    from fleqc.lockstep import LockstepMismatch, run_lockstep  # here: only --lockstep needs it (start-up)

    clashing = [f"--{name.replace('_', '-')}" for name in ("backend", "engine", "dense", "stats", "trace",
                                                           "trace_json", "report", "weights", "device")
                if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT]
    if clashing:
        raise click.UsageError(f"--lockstep chooses the backends itself; it does not combine with {', '.join(clashing)}")
    try:
        outcome = run_lockstep(subject, backends.split(","), max_steps, **settings)
    except LockstepMismatch as mismatch:
        click.echo(f"error[lockstep-mismatch]: {mismatch}", err=True)
        sys.exit(EXIT_FAULT)
    left = f" ({', '.join(outcome.left_out)} not installed: left out)" if outcome.left_out else ""
    click.echo(f"lockstep: {', '.join(outcome.backends)} agreed after every one of {outcome.result.steps} steps{left}",
               err=True)
    return outcome.result


class LastByte:
    """A binary stream that remembers the last byte written through it (whether a program's output
    ended its last line)."""

    def __init__(self, stream: Any) -> None:
        self.stream, self.last = stream, None

    def write(self, data: bytes) -> int:
        if data:
            self.last = data[-1]
        return self.stream.write(data)

    def flush(self) -> None:
        self.stream.flush()


def both_terminals() -> bool:
    """Whether stdout and stderr both go to a terminal (where their lines meet)."""
    return sys.stdout.isatty() and sys.stderr.isatty()


def check_run_options(ctx: click.Context, subject: Any, backend: str, weights: Optional[Path],
                      sizes: dict[str, Any]) -> None:
    """Options that would do nothing are usage errors, not silently ignored."""
    def given(name: str) -> bool:
        return ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT

    if backend == "reference" and (given("mode") or given("columns") or weights is not None):
        named = [name for name, on in (("--mode", given("mode")), ("--columns", given("columns")),
                                       ("--weights", weights is not None)) if on]
        raise click.UsageError(f"{' and '.join(named)} {'applies' if len(named) == 1 else 'apply'} to the "
                               "transformer backends (the machine's size and attention), not to --backend reference")
    if backend in ("reference", "torch", "onnx") and (given("engine") or given("dense") or given("stats")):
        raise click.UsageError("--engine, --dense and --stats choose how the numpy transformer evaluates a pass; "
                               f"they do nothing with --backend {backend}")
    check_machine_options(machine_of(subject), "run", sizes)


def machine_size(model: Any, program: Any, sizes: dict[str, Any]) -> tuple[Optional[int], dict[str, Any]]:
    """The columns (and the machine's sizes not given on the command line, such as the FLEQ cell)
    of the machine a weights file was built for."""
    built_for = model.metadata.get("machine")
    if not isinstance(built_for, dict) or built_for.get("kind") != program.machine:
        return None, sizes  # the run reports the mismatch
    return built_for.get("columns"), {name: built_for.get(name) if value is None else value
                                      for name, value in sizes.items()}


def chosen_labels(memory: dict, names: str) -> dict:
    """``--labels a,b``: those labels' values, in that order; an unknown one is a usage error."""
    chosen = [name.strip() for name in names.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in memory]
    if unknown:
        import difflib  # here: only this error's hint needs it (start-up)

        close = difflib.get_close_matches(unknown[0], list(memory), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise click.UsageError(f"--labels: no data label {unknown[0]!r}{hint}; the program's are "
                               f"{', '.join(memory) or 'none'}")
    return {name: memory[name] for name in chosen}


def print_result(result: Result, as_json: bool, mode: str, other_names: Optional[dict] = None,
                 symbols: Optional[dict] = None) -> None:
    if as_json:
        click.echo(json.dumps(result.to_json()))
        return
    for label, value in result.memory.items():
        if other_names and label in other_names:  # another name for a cell, not a cell of its own
            address = symbols[label].address if symbols and label in symbols else None
            where = f" (address {address})" if address is not None else ""
            click.echo(f"{label}: another name for {other_names[label]}{where}")
            continue
        click.echo(f"{label} = {format_value(value, len(label) + 3)}")
    how = result.backend + (f", {mode}" if result.backend != "reference" else "")
    if result.halted:
        click.echo(f"halted after {result.steps} steps ({how})", err=True)


def format_number(x: float) -> str:
    """A float with up to 15 significant digits, always recognisable as a float (1.0, not 1)."""
    text = f"{float(x):.15g}"
    return text + ".0" if text.lstrip("-").isdigit() else text


def format_value(value: Any, indent: int = 0) -> str:
    """Ints as ints; floats with 15 significant digits; vectors and matrices as aligned nested lists."""
    if isinstance(value, list):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if not isinstance(value, np.ndarray):
        return str(value)
    if value.ndim == 0:
        return format_number(value)
    if value.ndim == 1:
        return "[" + ", ".join(format_number(x) for x in value) + "]"
    cells = [[format_number(x) for x in row] for row in value]
    widths = [max(len(row[j]) for row in cells) for j in range(value.shape[1])] if cells else []
    rows = ["[" + ", ".join(c.rjust(w) for c, w in zip(row, widths)) + "]" for row in cells]
    return "[" + (",\n" + " " * (indent + 1)).join(rows) + "]"


@main.command()
@click.argument("card_path", metavar="CARD.npz", type=click.Path(readable=False, path_type=Path))
@reports_errors
def inspect(card_path: Path) -> None:
    """Show a card's machine configuration, layers, row blocks, column regions, symbols and values.

    Layers are the machine's sublayers in the order a pass applies them. Row blocks are the named
    fields of every column of X (codes, memory bits, scratch fields); column regions say which
    columns are the scratchpad, memory cells and instructions.
    """
    card = load_card(card_path)
    d, n = card.X.shape
    click.echo(f"card      {card_path} (from {card.source_name})")
    click.echo(f"machine   {card.config.describe()}, d={d} rows")
    _echo_layers(weights_for(card.config))
    click.echo("rows")
    for block in card.rows:
        span = f"{block.start}" if block.size == 1 else f"{block.start}-{block.start + block.size - 1}"
        click.echo(f"  {block.name:<16} {span:>9}  {block.role:<6}  {block.doc}")
    click.echo("columns")
    for name in ("scratch", "memory", "instructions"):
        lo, hi = getattr(card.regions, name)
        shown = card.machine.scratch_name if name == "scratch" else name
        click.echo(f"  {shown:<12} {lo}-{hi - 1}" if hi > lo else f"  {shown:<12} (none)")
    click.echo(f"  {'padding':<12} {card.regions.instructions[1]}-{n - 1}" if card.regions.instructions[1] < n else "")
    values = card.decode()
    click.echo(f"pc        instruction {card.read_pc()}")
    click.echo("symbols")
    for s in sorted(card.symbols.values(), key=lambda s: (s.kind, s.address)):
        if s.hidden:
            continue
        where = f"mem[{s.address}]" if s.kind == "data" else f"instr {s.address}"
        shown = f" = {format_value(values[s.name])}" if s.name in values else ""
        click.echo(f"  {s.kind:<5} {s.name:<16} {where}{shown}")


def _echo_layers(model) -> None:
    """The machine's layers in the order a pass applies them, and its depth as the paper counts it
    (an attention sublayer and the feed-forward sublayer after it are one layer)."""
    kinds = ["attention" if isinstance(layer, AttentionLayer) else "feed-forward" for layer in model.layers]
    pairs = sum(a == "attention" and b == "feed-forward" for a, b in zip(kinds, kinds[1:]))
    click.echo(f"layers    {len(kinds)} sublayers ({kinds.count('attention')} attention, "
               f"{kinds.count('feed-forward')} feed-forward); {len(kinds) - pairs} layers as the paper counts them")
    for i, (kind, layer) in enumerate(zip(kinds, model.layers)):
        if kind == "attention":
            heads = layer.head_names
            shown = ", ".join(heads) if len(heads) <= 4 else f"{', '.join(heads[:3])}, ... ({len(heads)} heads)"
            click.echo(f"  {i:>2}  attention     {layer.heads} head{'s' if layer.heads != 1 else ''}: {shown}")
        else:
            click.echo(f"  {i:>2}  feed-forward  {layer.name or '-'}: {layer.hidden:,} units, "
                       f"{layer.nonzeros:,} nonzero weights")


@main.command()
@machine_choice
@click.option("--columns", "-n", type=int, default=None, metavar="n",
              help=f"Columns of the machine (a power of two; default {default_columns()}).")
@machine_options("weights")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Weights file to write (.npz; .safetensors with the extra fleqc[safetensors]).")
@reports_errors
def weights(machine: str, columns: Optional[int], output: Path, **sizes: Any) -> None:
    """Build one machine and save its weights.

    SUBLEQ weights depend only on n (default 64) and N (default 16); FLEQ weights on n (default 128)
    and the cell size C (default 8). Every program that fits runs on them:
    `fleqc run PROG.fleq --weights FILE` (a program runs on the weights' own machine).
    """
    check_output(output)
    config = machine_config(machine, columns, sizes, "weights")
    model = weights_for(config)
    save_weights_file(model, output, inputs=())
    layers = len(model.layers)
    click.echo(f"wrote {output}: {config.describe()}, {layers} layers, d={model.width}, "
               f"{model.parameter_count():,} parameters")


for _command in (calc_command, export_command, disasm, show, debug):
    main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    main()

