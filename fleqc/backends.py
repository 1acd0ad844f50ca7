"""Backends: run a program or punch card and report the final state by label.

- ``reference``: the plain-Python interpreter of the instruction set (the oracle).
- ``transformer``: the punch card looped through the machine's frozen transformer, with a health
  check after every pass; the final X is decoded back to memory by label.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional

import numpy as np

from fleqc.construct.machines import check_weights_fit, machine_for
from fleqc.isa import fleq as fleq_reference
from fleqc.isa import subleq as subleq_reference
from fleqc.errors import ErrorCode, FleqError, Span
from fleqc.isa.fleq_functions import VALUE_LIMIT
from fleqc.isa.state import DEFAULT_MAX_STEPS, memory_by_label, run_to_fixed_point
from fleqc.machine.card import Card
from fleqc.machine.card_check import validate_card
from fleqc.machine.card_to_program import card_to_program
from fleqc.machine.config import FleqConfig
from fleqc.machine.fleq_domains import explain_fault
from fleqc.npzfile import memory_limit
from fleqc.program import LinkedProgram
from fleqc.threads import chosen_blas_threads
from fleqc.transformer import MachineFault, TernaryCheck
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


def run_reference(program: LinkedProgram, max_steps: int = DEFAULT_MAX_STEPS, pc: int = 0) -> Result:
    if program.machine == "subleq":
        outcome = subleq_reference.run(program, max_steps=max_steps, pc=pc)
    else:
        outcome = _run_fleq_reference(program, max_steps, pc)
    memory = memory_by_label(program, outcome.state.memory)
    return Result(outcome.halted, outcome.steps, memory, outcome.state.pc, "reference")


def _run_fleq_reference(program: LinkedProgram, max_steps: int, pc: int):
    """The FLEQ reference run; a domain error inside an included routine is located at the
    program's own line that was executed last (the call), like the transformer backend's."""
    last_own: list[int] = []

    def step(program: LinkedProgram, state):
        span = program.instructions[state.pc].span if 0 <= state.pc < len(program.instructions) else None
        if span is None or span.file == program.source_name:
            last_own[:] = [state.pc]
        return fleq_reference.step(program, state)

    try:
        return run_to_fixed_point(step, program, fleq_reference.initial_state(program, pc), max_steps, (FleqError,))
    except FleqError as error:
        caller = program.instructions[last_own[0]].span if last_own else None
        raise at_call_site(error, caller) from None


def at_call_site(error: FleqError, caller: Optional[Span]) -> FleqError:
    """``error`` (raised inside an included file) moved to ``caller``, the program's own line."""
    span = error.span
    if error.code is not ErrorCode.DOMAIN_ERROR or span is None or caller is None or span.file == caller.file:
        return error
    return FleqError(error.code, f"{error.message}; in {span.file}:{span.line}, reached from this line", caller)


def run_card_reference(card: Card, max_steps: int = DEFAULT_MAX_STEPS) -> Result:
    """Run the program a card holds from the card's own pc (the card is validated first, as the
    transformer backend does: both refuse a bad card with the same message)."""
    program, pc = validate_card(card)
    return run_reference(program, max_steps, pc)


class HealthCheck:
    """After every pass: no NaN or infinity; ternary rows (from the weights) within 1e-6 of -1, 0 or
    +1; the program counter names an instruction column. FLEQ machines also: every lane holds the
    same pc, every memory value has |x| <= 2^1000, and the fault row is 0 (a function block's operand
    left its domain: reported as a DOMAIN_ERROR naming the instruction)."""

    def __init__(self, model: LoopedTransformer, card: Card) -> None:
        self.ternary = TernaryCheck(model.ternary_rows, model.row_labels)
        self.card = card
        self.fleq = isinstance(card.config, FleqConfig)
        self.fault_rows = list(model.metadata.get("fault_rows", []))
        self.pc = card.read_pc()  # the instruction the next pass executes
        self.mem_before = card.X[card.rows["mem"].slice].copy()  # the operands the next pass reads
        self.user_pc: Optional[int] = None  # the last instruction executed from the program's own file

    def __call__(self, X: np.ndarray, step: int, columns: np.ndarray | None = None) -> None:
        """After pass ``step``; ``columns``: the columns it changed (the others were checked before)."""
        cols = slice(None) if columns is None else np.asarray(columns)
        if self.fleq:
            self._check_fleq(X, step, cols)
        self.ternary(X, step, columns)
        pc = self.card.read_pc(X)
        if not 0 <= pc < self.card.instruction_count:
            raise MachineFault(step, "pc", self.card.pc_column, float(pc), float("nan"))
        if self.fleq:
            files = self.card.instruction_files
            if not files or not files[self.pc]:
                self.user_pc = self.pc
            self.mem_before[:, cols] = X[self.card.rows["mem"].slice][:, cols]  # the unchanged columns are kept
        self.pc = pc

    def _check_fleq(self, X: np.ndarray, step: int, cols) -> None:
        """The FLEQ checks on the columns ``cols`` (those the pass changed; the rest were checked)."""
        card = self.card
        mem = X[card.rows["mem"].slice][:, cols]
        with np.errstate(invalid="ignore"):
            beyond = ~(np.abs(mem) <= VALUE_LIMIT)
        if beyond.any():
            row, k = np.argwhere(beyond)[0]
            column = int(np.arange(X.shape[1])[cols][k])
            if column - card.regions.memory[0] == self._instruction().dst:  # the step's own result
                raise self._domain_error(step, "its result is beyond the machine's range |x| <= 2^1000")
            raise MachineFault(step, f"mem[{row}]", column, float(mem[row, k]), float("inf"))
        if self.fault_rows and np.any(X[self.fault_rows][:, cols] != 0.0):
            raise self._domain_error(step)
        lanes = X[card.rows["pc"].slice, card.regions.scratch[0] + 1 : card.regions.scratch[1]]
        if not np.all(lanes == lanes[:, :1]):
            column = int(np.argmax(np.any(lanes != lanes[:, :1], axis=0))) + 1
            raise MachineFault(step, "pc (lanes disagree)", column, float("nan"), float("nan"))

    def _instruction(self):
        return card_to_program(self.card).instructions[self.pc]

    def _domain_error(self, step: int, why: str = "") -> FleqError:
        """Names the instruction, the operand, its value and the machine's window; located at the
        instruction, or, inside an included routine, at the program's own line that called it."""
        instruction = self._instruction()
        if not why:
            X = self.card.X.copy()
            X[self.card.rows["mem"].slice] = self.mem_before
            memory = self.card.read_memory(X)
            why = explain_fault(instruction.func, memory[instruction.src_a], memory[instruction.src_b]) + \
                " (see docs/fleq-machine.md, 'Domains and faults')"
        error = FleqError(ErrorCode.DOMAIN_ERROR, f"instruction {self.pc} ({instruction.func}), step {step}: {why}",
                          instruction.span)
        caller = self.card.instruction_span(self.user_pc) if self.user_pc is not None else None
        return at_call_site(error, caller)


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
) -> Result:
    """Loop the card through the machine. ``validate=False`` skips the check of the card before
    the first pass (fleqc.machine.card_check): only for tests of the health checks themselves."""
    if isinstance(card.config, FleqConfig) and mode != "softmax":
        raise FleqError(
            ErrorCode.BAD_CONFIG,
            "the FLEQ machine runs in softmax mode only: its products, sigmoids and fitted functions "
            "are softmax weights",
        )
    if validate:
        validate_card(card)
    model = weights if weights is not None else machine_for(card.config)
    check_weights_fit(model, card.config, card.source_name)
    check_memory(model, card.config, engine)
    check = HealthCheck(model, card) if health_check else None
    with chosen_blas_threads():
        outcome = loop(model, card.X, max_steps=max_steps, mode=mode, check=check, engine=engine, timed=stats)
    figures = outcome.stats.to_json() if (stats and outcome.stats is not None) else None
    return Result(outcome.halted, outcome.steps, card.decode(outcome.X), card.read_pc(outcome.X), "transformer",
                  figures)
