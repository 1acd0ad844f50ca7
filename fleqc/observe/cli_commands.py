"""Click definitions of ``fleqc disasm``, ``show`` and ``debug`` (registered by fleqc.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import click


def make_commands(reports_errors: Callable) -> list[click.Command]:
    return [_disasm(reports_errors)]


def _disasm(reports_errors: Callable) -> click.Command:
    @click.command("disasm")
    @click.argument("card_path", metavar="CARD.npz", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
                  help="Write the assembly to this file instead of printing it.")
    @reports_errors
    def disasm(card_path: Path, output: Optional[Path]) -> None:
        """Print the program a punch card holds, decoded back from X, as assembly.

        Data by label with their initial values, instructions with their labels and, as comments,
        their index and source line. The text assembles again to the same cells and instructions
        (the linker's hidden cells appear as _h_NAME).
        """
        from fleqc.machine.card import Card
        from fleqc.observe.disasm import disassemble

        text = disassemble(Card.load(card_path))
        if output is None:
            click.echo(text, nl=False)
        else:
            output.write_text(text, encoding="utf-8")
            click.echo(f"wrote {output}", err=True)

    return disasm
