"""Backends: run a program or punch card and report the final state by label.

- ``reference``: the plain-Python interpreter of the instruction set (the oracle).
- ``transformer``: the punch card looped through the machine's frozen transformer, with a health
  check after every pass; the final X is decoded back to memory by label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Optional

import numpy as np

from fleqc.construct.machines import check_weights_fit, machine_for
from fleqc.isa import fleq as fleq_reference
from fleqc.isa import subleq as subleq_reference
from fleqc.isa.state import DEFAULT_MAX_STEPS, memory_by_label
from fleqc.machine.card import Card
from fleqc.machine.card_to_program import card_to_program
from fleqc.program import LinkedProgram
from fleqc.transformer import MachineFault, TernaryCheck
from fleqc.transformer import run as loop
from fleqc.transformer.executor import Mode
from fleqc.transformer.layers import LoopedTransformer

Backend = Literal["reference", "transformer"]
BACKENDS: tuple[Backend, ...] = ("transformer", "reference")


@dataclass(frozen=True)
class Result:
    """How a run ended and the final value of every data label."""

    halted: bool
    steps: int
    memory: dict[str, Any]
    pc: int
    backend: str

    def to_json(self) -> dict:
        return {
            "halted": self.halted,
            "steps": self.steps,
            "memory": {k: _jsonable(v) for k, v in self.memory.items()},
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value


def run_reference(program: LinkedProgram, max_steps: int = DEFAULT_MAX_STEPS) -> Result:
    interpreter = subleq_reference if program.machine == "subleq" else fleq_reference
    outcome = interpreter.run(program, max_steps=max_steps)
    memory = memory_by_label(program, outcome.state.memory)
    return Result(outcome.halted, outcome.steps, memory, outcome.state.pc, "reference")


def run_card_reference(card: Card, max_steps: int = DEFAULT_MAX_STEPS) -> Result:
    return run_reference(card_to_program(card), max_steps)


class HealthCheck:
    """Ternary rows (from the weights) plus: the program counter names an instruction column."""

    def __init__(self, model: LoopedTransformer, card: Card) -> None:
        self.ternary = TernaryCheck(model.ternary_rows, model.row_labels)
        self.card = card

    def __call__(self, X: np.ndarray, step: int) -> None:
        self.ternary(X, step)
        pc = self.card.read_pc(X)
        if not 0 <= pc < self.card.instruction_count:
            raise MachineFault(step, "pc", self.card.regions.scratch[0], float(pc), float("nan"))


def run_transformer(
    card: Card,
    max_steps: int = DEFAULT_MAX_STEPS,
    mode: Mode = "softmax",
    weights: Optional[LoopedTransformer] = None,
    health_check: bool = True,
) -> Result:
    model = weights if weights is not None else machine_for(card.config)
    check_weights_fit(model, card.config, card.source_name)
    check = HealthCheck(model, card) if health_check else None
    outcome = loop(model, card.X, max_steps=max_steps, mode=mode, check=check)
    return Result(outcome.halted, outcome.steps, card.decode(outcome.X), card.read_pc(outcome.X), "transformer")
