"""The paper's SUBLEQ machine (Giannou et al., section 4): N-bit integers, five layers, four heads.

``mem[b] -= mem[a]; if mem[b] <= 0 goto c``. Its parts: the configuration
(:class:`fleqc.machines.subleq.config.SubleqConfig`), the row blocks and column regions
(:mod:`fleqc.machines.subleq.rows`, :mod:`fleqc.card.columns`), the card codec (:mod:`fleqc.machines.subleq.card`), the weight
recipe (:mod:`fleqc.machines.subleq.weights`), the reference interpreter (:mod:`fleqc.machines.subleq.reference`)
and its dialect of the FLEQ language (:mod:`fleqc.machines.subleq.language`).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from fleqc.errors import ErrorCode, FleqError

from fleqc.machines.subleq import reference as interpreter
from fleqc.machines.subleq.config import DEFAULT_BITS, SubleqConfig
from fleqc.machines.subleq.rows import subleq_rows
from fleqc.card.rows import RowSpace
from fleqc.machines.subleq.card import (
    choose_subleq_config,
    program_to_subleq_card,
    read_subleq_cell,
    subleq_card_to_program,
)
from fleqc.machines.about import BITS, SUBLEQ  # noqa: F401 (BITS: the option, imported from here)
from fleqc.machines.base import Machine, Options, reference_run
from fleqc.steps import Names, Reader, TraceEvent, access, language_event
from fleqc.transformer.layers import LoopedTransformer



class SubleqMachine(Machine):
    name = SUBLEQ.name  # name, title, default columns and options: fleqc.machines.about
    title = SUBLEQ.title
    config_class = SubleqConfig
    layer_kinds = "AAFAF"
    default_columns = SUBLEQ.default_columns
    options = SUBLEQ.options
    reference = interpreter

    @property
    def language(self) -> Any:  # type: ignore[override]
        from fleqc.machines.subleq.language import SUBLEQ_DIALECT  # the front end loads lark: only when needed

        return SUBLEQ_DIALECT

    def config_for(self, program: Any, columns: Optional[int], options: Options) -> SubleqConfig:
        return choose_subleq_config(program, columns)

    def config_from_options(self, columns: Optional[int], options: Options) -> SubleqConfig:
        bits = options.get("bits")
        return SubleqConfig(columns=self.default_columns if columns is None else columns,
                            bits=DEFAULT_BITS if bits is None else bits)

    def rows(self, config: SubleqConfig) -> RowSpace:
        return subleq_rows(config)

    def build(self, config: SubleqConfig) -> LoopedTransformer:
        from fleqc.machines.subleq.weights import build_subleq_machine

        return build_subleq_machine(config)

    def encode(self, program: Any, config: SubleqConfig, start: int = 0) -> Any:
        return program_to_subleq_card(program, config, start, self)

    def decode(self, card: Any) -> Any:
        return subleq_card_to_program(card)

    def read_cell(self, card: Any, X: np.ndarray, address: int) -> int:
        return read_subleq_cell(card, X, address)

    def significand_bits(self, config: SubleqConfig) -> int:
        """The largest constant of a pass is the scratchpad gate 8 * 2^max(N, log2 n), and the gated
        sums need 2 more bits: max(N, log2 n) + 5 (float32's 24 hold N <= 19; measured: from N = 20
        float32 passes differ, tests/test_interop_torch.py)."""
        return max(config.bits, (config.columns - 1).bit_length()) + 5

    def describe_card(self, config: SubleqConfig) -> str:
        return f"N={config.bits} bits"

    def run_reference(self, program: Any, max_steps: int, pc: int, options: Options) -> Any:
        return reference_run(lambda: interpreter.run(program, max_steps=max_steps, pc=pc), program)

    def instruction_text(self, instruction: Any, cell: Callable[[int], str], target: Callable[[int], str],
                         short: bool = False) -> str:
        """``subleq a, b, c``; short: ``subleq a, b`` when c is the next instruction (the default)."""
        if short and instruction.target == instruction.index + 1:
            return f"subleq {cell(instruction.a)}, {cell(instruction.b)}"
        return f"subleq {cell(instruction.a)}, {cell(instruction.b)}, {target(instruction.target)}"

    def describe_step(self, program: Any, names: Names, step: int, pc: int, next_pc: int, before: Reader,
                      after: Reader) -> TraceEvent:
        """``subleq a, b, c`` reads a and b, writes b; it branches to c when the new mem[b] <= 0."""
        i = program.instructions[pc]
        written = access("b", i.b, names, after)
        return language_event(program, names, step, pc, next_pc, self.instruction_text(i, names.cell, names.target),
                              (access("a", i.a, names, before), access("b", i.b, names, before)), (written,),
                              written.value <= 0)


MACHINE = SubleqMachine()
