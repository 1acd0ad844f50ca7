"""The paper's FLEQ machine (Giannou et al., section 6): float64 scalars, vectors and matrices up to
cell x cell, eleven layers, a function block per FLEQ function.

``mem[c] = f(mem[a], mem[b]); if mem[flag] <= 0 goto p``. Its parts: the configuration
(:class:`fleqc.machine.config.FleqConfig`), the row blocks and design constants
(:mod:`fleqc.machine.fleq_layout`), the card codec (:mod:`fleqc.machine.fleq_card`), the weight
recipe (:mod:`fleqc.construct.fleq_machine`), the functions with their blocks and domains
(:mod:`fleqc.isa.fleq_functions`), the reference interpreter (:mod:`fleqc.isa.fleq`), its runs
(:mod:`.runs`) and its dialect of the FLEQ language (:mod:`.language`).
"""

from __future__ import annotations

from typing import Any, Optional

import click
import numpy as np

from fleqc.isa import fleq as interpreter
from fleqc.machine.config import DEFAULT_CELL, FleqConfig
from fleqc.machine.fleq_card import (
    check_fleq_cells,
    choose_fleq_config,
    fleq_card_to_program,
    program_to_fleq_card,
    read_fleq_cell,
)
from fleqc.isa.fleq_functions import FLEQ_FUNCTIONS, FleqFunction
from fleqc.machine.fleq_layout import OPS, VIEWS, fleq_rows
from fleqc.machine.rows import RowSpace
from fleqc.machines.base import Machine, MachineOption, Options
from fleqc.machines.fleq.runs import FleqHealthCheck, run_fleq_reference
from fleqc.transformer.layers import LoopedTransformer

CELL = MachineOption("cell", click.option(
    "--cell", type=int, default=None, metavar="C",
    help="FLEQ: cells hold up to C x C reals (default 8, or the program's largest shape).",
))


def check_function_blocks(functions: dict[str, FleqFunction], blocks: tuple[str, ...] = OPS,
                          views: tuple[str, ...] = VIEWS) -> None:
    """Refuse a function table with a function the machine cannot run: its block is not one the
    machine builds, or it names an operand view the card has no row for. Run when the machine
    registers, so a record without its block fails at import, not in the middle of a run."""
    for function in functions.values():
        if function.block not in blocks:
            raise ValueError(
                f"FLEQ function {function.name!r} runs on the machine block {function.block!r}, which the FLEQ "
                f"machine does not build (its blocks: {', '.join(blocks)}); build it in "
                "fleqc/construct/fleq_machine.py and list it in fleqc.machine.fleq_layout.OPS"
            )
        unknown = sorted(function.view_set - set(views))
        if unknown:
            raise ValueError(f"FLEQ function {function.name!r} uses operand views {unknown} the FLEQ machine "
                             f"does not have (its views: {', '.join(views)})")


check_function_blocks(FLEQ_FUNCTIONS)


class FleqMachine(Machine):
    name = "fleq"
    title = "FLEQ"
    config_class = FleqConfig
    layer_kinds = "AAFFFFA" + "F" * 11 + "FAFF"  # cell 8; see kinds()
    default_columns = 128
    options = (CELL,)
    # every softmax weight of its heads is exactly 0, 1 or 1/2^k (ties), so hardmax gives the same bits
    modes = ("softmax", "hardmax")
    scratch_name = "ref+lanes"
    reference = interpreter

    def kinds(self, config: FleqConfig) -> str:
        from fleqc.construct.exact_product import own_layers

        return "AAFFFF" + "F" * own_layers(config.cell) + "FFFAFF"  # fleqc.construct.fleq_machine's plan

    @property
    def language(self) -> Any:  # type: ignore[override]
        from fleqc.machines.fleq.language import FLEQ_DIALECT  # the front end loads lark: only when needed

        return FLEQ_DIALECT

    def config_for(self, program: Any, columns: Optional[int], options: Options) -> FleqConfig:
        return choose_fleq_config(program, columns, options.get("cell"))

    def config_from_options(self, columns: Optional[int], options: Options) -> FleqConfig:
        cell = options.get("cell")
        return FleqConfig(columns=self.default_columns if columns is None else columns,
                          cell=DEFAULT_CELL if cell is None else cell)

    def rows(self, config: FleqConfig) -> RowSpace:
        return fleq_rows(config)

    def build(self, config: FleqConfig) -> LoopedTransformer:
        from fleqc.construct.fleq_machine import build_fleq_machine

        return build_fleq_machine(config)

    def ternary_rows(self, config: FleqConfig) -> list[int]:
        """Every row but the memory's real values."""
        rows = fleq_rows(config)
        real = set(rows["mem"])
        return [r for r in range(rows.d) if r not in real]

    def encode(self, program: Any, config: FleqConfig, start: int = 0) -> Any:
        return program_to_fleq_card(program, config, start)

    def decode(self, card: Any) -> Any:
        return fleq_card_to_program(card)

    def read_cell(self, card: Any, X: np.ndarray, address: int) -> np.ndarray:
        return read_fleq_cell(card, X, address)

    def check_cells(self, card: Any) -> None:
        check_fleq_cells(card)

    def pc_column(self, card: Any) -> int:
        """Lane 0 (every lane holds the pc; the health check keeps them equal)."""
        return card.regions.scratch[0] + 1

    def column_name(self, card: Any, column: int) -> str:
        return "the reference column" if column == card.regions.scratch[0] else f"lane {column - 1}"

    def describe_card(self, config: FleqConfig) -> str:
        return f"cells up to {config.cell}x{config.cell}"

    def run_reference(self, program: Any, max_steps: int, pc: int, options: Options) -> Any:
        return run_fleq_reference(program, max_steps, pc)

    def health_check(self, model: LoopedTransformer, card: Any) -> FleqHealthCheck:
        return FleqHealthCheck(model, card)


MACHINE = FleqMachine()
