"""The command-line options the registered machines add (``--machine``, ``--bits``, ``--cell``, ...):
each machine states its options as data (:class:`fleqc.machines.base.MachineOption`); here they
become click options, shared by ``build``, ``run``, ``weights``, ``export``, ``show`` and ``debug``.
They are read from the registry's plain data (:func:`fleqc.machines.about`), which imports no
machine package: the command line starts without loading every machine (start-up)."""

from __future__ import annotations

from typing import Any, Callable, Optional

import click

from fleqc.cli.common import READ_FILES
from fleqc.machines import DEFAULT, REGISTRY, about, machine
from fleqc.machines.base import Machine, MachineOption

machine_choice = click.option(
    "--machine", type=click.Choice(list(REGISTRY)), default=DEFAULT, show_default=True, help="Which machine to build."
)


def _file_reader(option: MachineOption) -> Callable[[click.Context, click.Parameter, Any], Optional[bytes]]:
    """The bytes of the file (or standard input), read up to one byte past the most the machine
    takes (``max_bytes``), so ``yes | fleqc run cat.dec --input -`` stops reading there and the
    machine refuses the input as too long, instead of reading without end."""
    def read(ctx: click.Context, param: click.Parameter, value: Any) -> Optional[bytes]:
        if value is None:
            return None
        name = getattr(value, "name", None)
        if isinstance(name, str) and name not in ("-", "<stdin>"):
            ctx.find_root().meta.setdefault(READ_FILES, []).append(name)
        return value.read() if option.max_bytes is None else value.read(option.max_bytes + 1)

    return read


def click_option(option: MachineOption) -> Callable[[Callable], Callable]:
    """The click option of a machine's option: an integer, or the bytes of a file (``-``: stdin)."""
    names = [f"--{option.name}"] + ([option.short] if option.short else [])
    if option.reads_file:
        return click.option(*names, type=click.File("rb"), default=None, callback=_file_reader(option), metavar=option.metavar,
                            help=option.help)
    return click.option(*names, type=int, default=None, metavar=option.metavar, help=option.help)


def default_columns() -> str:
    """The machines' default columns, in words for --help ("64 for SUBLEQ, 128 for FLEQ")."""
    return ", ".join(f"{m.default_columns} for {m.title}" for m in map(about, REGISTRY))


def machine_options(command: str) -> Callable[[Callable], Callable]:
    """The options the registered machines add to ``command`` (``--bits``, ``--cell``, ...); the
    command receives them as keyword arguments."""
    def decorate(function: Callable) -> Callable:
        for option in reversed(list(option_owners(command))):
            function = click_option(option)(function)
        return function

    return decorate


def option_owners(command: str) -> dict:
    """Each machine option of ``command`` -> the machines that take it (their plain data:
    fleqc.machines.about)."""
    owners: dict = {}
    for candidate in map(about, REGISTRY):
        for option in candidate.options:
            if command in option.commands:
                owners.setdefault(option, []).append(candidate)
    return owners


def check_machine_options(chosen: Machine, command: str, given: dict[str, Any]) -> None:
    """An option of another machine is a usage error, not silently ignored."""
    own = [o.name for o in chosen.options]
    for option, owners in option_owners(command).items():
        if given.get(option.name) is not None and chosen.name not in [m.name for m in owners]:
            takes = f", which takes {', '.join('--' + name for name in own)}" if own else ", which takes no options"
            raise click.UsageError(f"--{option.name} applies to {' and '.join(m.title for m in owners)} programs; "
                                   f"this is a {chosen.title} program{takes}")


def machine_config(name: str, columns: Optional[int], sizes: dict[str, Any], command: str) -> Any:
    """The configuration of machine ``name`` that ``--columns`` and the machine's options ask for
    (``fleqc weights``, ``fleqc export``); another machine's option is a usage error."""
    chosen = machine(name)
    check_machine_options(chosen, command, sizes)
    return chosen.config_from_options(columns, sizes)
