"""Backends: run a program or punch card and report the final state by label.

- ``reference``: the plain-Python interpreter of the instruction set (the oracle).
- ``transformer``: the punch card looped through the machine's frozen transformer, with the
  machine's health check after every pass; the final X is decoded back to memory by label.

Both ask the program's or card's machine (fleqc.machines) for what differs between machines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional

import numpy as np

from fleqc.errors import ErrorCode, FleqError
from fleqc.isa.state import DEFAULT_MAX_STEPS, memory_by_label
from fleqc.machine.card import Card
from fleqc.machine.card_check import validate_card
from fleqc.machines import machine_of, weights_for
from fleqc.machines.base import Machine, Options
from fleqc.npzfile import memory_limit
from fleqc.program import LinkedProgram
from fleqc.threads import chosen_blas_threads
from fleqc.transformer import run as loop
from fleqc.transformer.executor import Mode
from fleqc.transformer.layers import LoopedTransformer
from fleqc.transformer.memory import estimate_run_bytes

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
    stats: Optional[dict] = field(default=None, compare=False)  # the engine's figures, when asked for

    def to_json(self) -> dict:
        out = {
            "halted": self.halted,
            "steps": self.steps,
            "memory": {k: _jsonable(v) for k, v in self.memory.items()},
        }
        if self.stats is not None:
            out["engine"] = self.stats
        return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value


def run_reference(program: LinkedProgram, max_steps: int = DEFAULT_MAX_STEPS, pc: int = 0,
                  options: Optional[Options] = None) -> Result:
    """``options``: the run's machine options (the command line's, e.g. an input stream)."""
    outcome = machine_of(program).run_reference(program, max_steps, pc, options or {})
    memory = memory_by_label(program, outcome.state.memory)
    return Result(outcome.halted, outcome.steps, memory, outcome.state.pc, "reference")


def run_card_reference(card: Card, max_steps: int = DEFAULT_MAX_STEPS, options: Optional[Options] = None) -> Result:
    """Run the program a card holds from the card's own pc (the card is validated first, as the
    transformer backend does: both refuse a bad card with the same message)."""
    program, pc = validate_card(card)
    return run_reference(program, max_steps, pc, options)


def check_mode(machine: Machine, mode: str) -> None:
    """Refuse an attention mode the machine's weights are not exact in."""
    if mode not in machine.modes:
        raise FleqError(
            ErrorCode.BAD_CONFIG,
            f"the {machine.title} machine runs in {' or '.join(machine.modes)} mode only: "
            f"its weights are exact in no other",
        )


def check_memory(model: LoopedTransformer, config, engine: str = "dense") -> None:
    """Refuse, before the first pass, a run that would need more memory than fleqc may use."""
    need, limit = estimate_run_bytes(model, config.columns, engine=engine), memory_limit()
    if need > limit:
        why = "its caches grow with n" if engine == "incremental" else "its attention scores grow as n^2"
        raise FleqError(
            ErrorCode.OUT_OF_MEMORY,
            f"running the {config.describe()} on the {engine} engine needs about {need / 2**30:.1f} GiB of "
            f"memory ({why}), more than the {limit / 2**30:.1f} GiB available (FLEQC_MEMORY_LIMIT, or the "
            "memory free now); use fewer --columns" + ("" if engine == "incremental" else " or --engine incremental"),
        )


def run_transformer(
    card: Card,
    max_steps: int = DEFAULT_MAX_STEPS,
    mode: Mode = "softmax",
    weights: Optional[LoopedTransformer] = None,
    health_check: bool = True,
    engine: str = "auto",
    stats: bool = False,
    validate: bool = True,
    options: Optional[Options] = None,
) -> Result:
    """Loop the card through the machine. ``validate=False`` skips the check of the card before
    the first pass (fleqc.machine.card_check): only for tests of the health checks themselves.
    ``options`` (the run's machine options) reach the machine's ``prepare`` and ``observer``."""
    machine, options = card.machine, options or {}
    check_mode(machine, mode)
    if validate:
        validate_card(card)
    card = machine.prepare(card, options)
    model = weights if weights is not None else weights_for(card.config)
    machine.check_weights_fit(model, card.config, card.source_name)
    check_memory(model, card.config, engine)
    check = machine.health_check(model, card) if health_check else None
    with chosen_blas_threads():
        outcome = loop(model, card.X, max_steps=max_steps, mode=mode, check=check, engine=engine, timed=stats,
                       on_step=machine.observer(card, options))
    figures = outcome.stats.to_json() if (stats and outcome.stats is not None) else None
    return Result(outcome.halted, outcome.steps, card.decode(outcome.X), card.read_pc(outcome.X), "transformer",
                  figures)
