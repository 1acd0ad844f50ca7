"""The paper's FLEQ machine (Giannou et al., section 6): float64 scalars, vectors and matrices up to
cell x cell, a function block per FLEQ function, every block exact (the reference's bits).

``mem[c] = f(mem[a], mem[b]); if mem[flag] <= 0 goto p``. Its parts, each a module here:
``config`` (FleqConfig), ``windows`` (the exact power-of-two ladders and value limits), ``rows``
(the row blocks), ``card`` (the card codec), ``functions`` (one record per FLEQ function: arity,
shapes, block, domain, reference semantics), ``tables`` (the exact tables of recip, sqrt, log,
exp, sigmoid), ``product`` (the exact product block), ``weights`` (the weight recipe),
``reference`` (the interpreter), ``runs`` (its reference run and health check), ``ulps`` (each
function's operand sampler and error in ulps) and ``language`` (its dialect of the FLEQ language).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from fleqc.errors import ErrorCode, FleqError

from fleqc.machines.fleq import reference as interpreter
from fleqc.machines.fleq.config import DEFAULT_CELL, FleqConfig
from fleqc.machines.fleq.card import (
    check_fleq_cells,
    choose_fleq_config,
    fleq_card_to_program,
    program_to_fleq_card,
    read_fleq_cell,
)
from fleqc.machines.fleq.functions import FLEQ_FUNCTIONS, FleqFunction
from fleqc.machines.fleq.rows import OPS, VIEWS, fleq_rows
from fleqc.card.rows import RowSpace
from fleqc.machines.about import CELL, FLEQ  # noqa: F401 (CELL: the option, imported from here)
from fleqc.machines.base import Machine, Options, reference_run
from fleqc.steps import Names, Reader, TraceEvent, access, language_event
from fleqc.machines.fleq.runs import FleqHealthCheck, FleqStepper, run_fleq_reference
from fleqc.transformer.layers import LoopedTransformer



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
                "fleqc/machines/fleq/weights.py and list it in fleqc.machines.fleq.rows.OPS"
            )
        unknown = sorted(function.view_set - set(views))
        if unknown:
            raise ValueError(f"FLEQ function {function.name!r} uses operand views {unknown} the FLEQ machine "
                             f"does not have (its views: {', '.join(views)})")


check_function_blocks(FLEQ_FUNCTIONS)


class FleqMachine(Machine):
    name = FLEQ.name  # name, title, default columns and options: fleqc.machines.about
    title = FLEQ.title
    config_class = FleqConfig
    layer_kinds = "AAFFFF" + "F" * 11 + "FFFAF"  # cell 8 (the product's own layers: 11); kinds() for any cell
    default_columns = FLEQ.default_columns
    options = FLEQ.options
    # every softmax weight of its heads is exactly 0, 1 or 1/2^k (ties), so hardmax gives the same bits
    modes = ("softmax", "hardmax")
    cache_weights = True  # about 0.1 s to build, a few ms to read back (fleqc.machines.weights_for)
    scratch_name = "ref+lanes"
    reference = interpreter

    def kinds(self, config: FleqConfig) -> str:
        from fleqc.machines.fleq.weights import product_layers

        return "AAFFFF" + "F" * product_layers(config.cell) + "FFFAF"  # fleqc.machines.fleq.weights's plan

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
        from fleqc.machines.fleq.weights import build_fleq_machine

        return build_fleq_machine(config)

    def ternary_rows(self, config: FleqConfig) -> list[int]:
        """Every row but the memory's real values."""
        rows = fleq_rows(config)
        real = set(rows["mem"])
        return [r for r in range(rows.d) if r not in real]

    def encode(self, program: Any, config: FleqConfig, start: int = 0) -> Any:
        return program_to_fleq_card(program, config, start, self)

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
        return reference_run(lambda: run_fleq_reference(program, max_steps, pc), program)

    def reference_stepper(self, program: Any, pc: int, options: Options) -> FleqStepper:
        return FleqStepper(program, pc)

    def health_check(self, model: LoopedTransformer, card: Any) -> FleqHealthCheck:
        return FleqHealthCheck(model, card)

    def instruction_text(self, instruction: Any, cell: Callable[[int], str], target: Callable[[int], str],
                         short: bool = False) -> str:
        i = instruction
        return f"fleq {cell(i.dst)}, {i.func}, {cell(i.src_a)}, {cell(i.src_b)}, {cell(i.flag)}, {target(i.target)}"

    def describe_step(self, program: Any, names: Names, step: int, pc: int, next_pc: int, before: Reader,
                      after: Reader) -> TraceEvent:
        """``fleq dst, f, a, b, flag, p`` reads a (and b for a binary f), writes dst; then reads flag
        (after the write) and branches to p when mem[flag] <= 0."""
        i = program.instructions[pc]
        reads = (access("a", i.src_a, names, before),)
        if FLEQ_FUNCTIONS[i.func].arity == 2:
            reads += (access("b", i.src_b, names, before),)
        flag = access("flag", i.flag, names, after)
        return language_event(program, names, step, pc, next_pc, self.instruction_text(i, names.cell, names.target),
                              reads + (flag,), (access("dst", i.dst, names, after),), bool(flag.value <= 0.0))


MACHINE = FleqMachine()
