"""``fleqc calc``: an expression computed on the FLEQ machine (the compiler is fleqc.calc)."""

from __future__ import annotations

import sys

import click

from fleqc import api
from fleqc.cli.common import EXIT_FAULT, EXIT_STEP_LIMIT, EXIT_USER_ERROR
from fleqc.errors import FleqError
from fleqc.transformer import MachineFault


class _ExpressionCommand(click.Command):
    """Every argument that is not one of the options is part of the expression, even when it starts
    with '-' (``fleqc calc -2^2``); ``--`` is accepted anywhere and options after it still count."""

    VALUED = ("--backend", "-b", "--max-steps")
    FLAGS = ("--emit", "--help", "-h")

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        options, words, i = [], [], 0
        while i < len(args):
            arg = args[i]
            if arg in self.VALUED and i + 1 < len(args):
                options += args[i:i + 2]
                i += 2
                continue
            if arg in self.FLAGS or arg.startswith(tuple(f"{o}=" for o in self.VALUED if o.startswith("--"))):
                options.append(arg)
            elif arg != "--":
                words.append(arg)
            i += 1
        return super().parse_args(ctx, [*options, "--", *words])


@click.command("calc", cls=_ExpressionCommand)
@click.argument("expression", nargs=-1)
@click.option("--emit", is_flag=True, help="Print the generated FLEQ assembly instead of running it.")
@click.option("--backend", "-b", type=click.Choice(["transformer", "reference"]), default="transformer",
              show_default=True, help="Run on the looped transformer or the reference interpreter.")
@click.option("--max-steps", type=click.IntRange(min=0), default=1_000_000, show_default=True,
              help="Stop after this many steps if the program has not halted.")
def calc_command(expression: tuple[str, ...], emit: bool, backend: str, max_steps: int) -> None:
    """Compute EXPRESSION on the FLEQ machine: numbers, + - * /, unary minus, parentheses,
    sqrt(x), exp(x), log(x), x^n (or x**n) for a whole number n, and Flow's other functions
    (e.g. "sqrt(2)^3 - 1/3"; "-2^2" needs no "--"). It is compiled as the Flow program
    `result = EXPRESSION` (docs/flow.md). Exit status as for `fleqc run`: 1 an error in the
    expression, 3 the step limit, 4 a machine fault."""
    from fleqc.calc import compile_expression  # the expression parser loads lark: only when calc runs

    try:
        compiled = compile_expression(" ".join(expression))
        if emit:
            click.echo(compiled.source, nl=False)
            return
        program = api.compile(compiled.source)
        result = api.run(program, backend=backend, max_steps=max_steps)
    except FleqError as error:
        click.echo(error.render(), err=True)
        sys.exit(EXIT_USER_ERROR)
    except MachineFault as fault:
        click.echo(f"error[machine-fault]: {fault}", err=True)
        sys.exit(EXIT_FAULT)
    if not result.halted:
        click.echo(f"stopped after {result.steps} steps without halting (--max-steps {max_steps})", err=True)
        sys.exit(EXIT_STEP_LIMIT)
    value = float(result.memory["result"])
    click.echo(repr(value))
    if compiled.expected is None:  # a function Python's floats do not have (min, sigmoid, ...)
        click.echo(f"({result.backend}, {result.steps} steps)", err=True)
        return
    error = abs(value - compiled.expected) / abs(compiled.expected) if compiled.expected else abs(value)
    click.echo(f"({result.backend}, {result.steps} step{'' if result.steps == 1 else 's'}; Python's float value {compiled.expected!r}, "
               f"relative difference {error:.1e})", err=True)
