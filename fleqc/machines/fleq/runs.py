"""The FLEQ machine's runs: the reference run and the health check after every pass, both of which
report a domain error at the program's own line when it happens inside an included routine."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from fleqc.errors import ErrorCode, FleqError, Span
from fleqc.machines.fleq import reference as interpreter
from fleqc.machines.fleq.functions import FLEQ_FUNCTIONS, VALUE_LIMIT
from fleqc.state import RunResult, run_to_fixed_point
from fleqc.machines import card_to_program
from fleqc.machines.fleq.card import fleq_cell_in_mem
from fleqc.machines.base import HealthCheck, ReferenceStepper
from fleqc.program import LinkedProgram
from fleqc.transformer import MachineFault
from fleqc.transformer.layers import LoopedTransformer


def run_fleq_reference(program: LinkedProgram, max_steps: int, pc: int) -> RunResult:
    """The FLEQ reference run; a domain error inside an included routine is located at the
    program's own line that was executed last (the call), like the transformer backend's."""
    last_own: list[int] = []
    count = [0]

    def step(program: LinkedProgram, state):
        span = program.instructions[state.pc].span if 0 <= state.pc < len(program.instructions) else None
        if span is None or span.file == program.source_name:
            last_own[:] = [state.pc]
        count[0] += 1
        return interpreter.step(program, state)

    try:
        return run_to_fixed_point(step, program, interpreter.initial_state(program, pc), max_steps, (FleqError,))
    except FleqError as error:
        caller = line_of(program.instructions[last_own[0]].span) if last_own else None
        raise at_call_site(as_on_the_machine(error, count[0]), caller) from None


def line_of(span: Optional[Span]) -> Optional[Span]:
    """The line of ``span`` (a card keeps an instruction's file and line, not its column)."""
    return None if span is None else Span(span.file, span.line, 1)


def as_on_the_machine(error: FleqError, step: int) -> FleqError:
    """The reference's domain error as the transformer reports the same one (FleqHealthCheck): the
    step that failed, and the instruction's line (the caret under its statement), so both backends
    name the same step and the same place."""
    if error.code is not ErrorCode.DOMAIN_ERROR:
        return error
    head, sep, rest = error.message.partition("): ")
    message = f"{head}), step {step}: {rest}" if sep and ", step " not in head else error.message
    return FleqError(error.code, message, line_of(error.span))


class FleqStepper(ReferenceStepper):
    """The reference stepped one instruction at a time; a domain error as :func:`as_on_the_machine`."""

    def __init__(self, program: LinkedProgram, pc: int) -> None:
        super().__init__(interpreter, program, pc)

    def step(self) -> bool:  # the base counts the steps taken
        try:
            return super().step()
        except FleqError as error:
            raise as_on_the_machine(error, self.steps + 1) from None


def at_call_site(error: FleqError, caller: Optional[Span]) -> FleqError:
    """``error`` (raised inside an included file) moved to ``caller``, the program's own line."""
    span = error.span
    if error.code is not ErrorCode.DOMAIN_ERROR or span is None or caller is None or span.file == caller.file:
        return error
    return FleqError(error.code, f"{error.message}; in {span.file}:{span.line}, reached from this line", caller)


# The machine's own results may lie beyond 2^1000 by their error bound (a product whose exact value
# is just inside the limit); anything beyond twice the limit means the machine broke.
MACHINE_RANGE = 2.0 * VALUE_LIMIT


class FleqHealthCheck(HealthCheck):
    """The generic checks, and: the operands the pass read lie inside its function's window (the
    record's ``limits``, the same test as the reference interpreter's, on the same bits: else a
    DOMAIN_ERROR naming the instruction, the operand and the window); the fault row is 0 (the
    weights refuse the limits marked ``by_weights`` themselves, so a fault inside the window is a
    broken machine); every memory value has |x| <= 2^1001; every lane holds the same pc."""

    def __init__(self, model: LoopedTransformer, card: Any) -> None:
        super().__init__(model, card)
        self.fault_rows = list(model.metadata.get("fault_rows", []))
        self.mem_before = card.X[card.rows["mem"].slice].copy()  # the operands the next pass reads
        self.instructions = card_to_program(card).instructions  # static: the program lives in X
        self.user_pc: Optional[int] = None  # the last instruction executed from the program's own file

    def extra(self, X: np.ndarray, step: int, cols: Any) -> None:
        """The FLEQ checks on the columns ``cols`` (those the pass changed; the rest were checked)."""
        refusal = self._refusal()
        if refusal is not None:
            raise self._domain_error(step, refusal)
        card = self.card
        mem = X[card.rows["mem"].slice][:, cols]
        with np.errstate(invalid="ignore"):
            beyond = ~(np.abs(mem) <= MACHINE_RANGE)
        if beyond.any():
            row, k = np.argwhere(beyond)[0]
            raise MachineFault(step, f"mem[{row}]", int(np.arange(X.shape[1])[cols][k]), float(mem[row, k]),
                               float("inf"))
        if self.fault_rows:
            faults = X[self.fault_rows][:, cols]
            if np.any(faults != 0.0):
                k = int(np.argwhere(faults != 0.0)[0][1])
                raise MachineFault(step, "fault (operands inside the window)", int(np.arange(X.shape[1])[cols][k]),
                                   float(faults.max()), float(faults.max()))
        lanes = X[card.rows["pc"].slice, card.regions.scratch[0] + 1 : card.regions.scratch[1]]
        if not np.all(lanes == lanes[:, :1]):
            column = int(np.argmax(np.any(lanes != lanes[:, :1], axis=0))) + 1
            raise MachineFault(step, "pc (lanes disagree)", column, float("nan"), float("nan"),
                               f"the program counter's lanes disagree (lane column {column})")

    def after(self, X: np.ndarray, cols: Any) -> None:
        files = self.card.instruction_files
        if not files or not files[self.pc]:
            self.user_pc = self.pc
        self.mem_before[:, cols] = X[self.card.rows["mem"].slice][:, cols]  # the unchanged columns are kept

    def _refusal(self) -> Optional[str]:
        """The window test of the instruction the pass executed, on the operands it read."""
        instruction = self.instructions[self.pc]
        function = FLEQ_FUNCTIONS[instruction.func]
        a = fleq_cell_in_mem(self.card, self.mem_before, instruction.src_a)
        b = fleq_cell_in_mem(self.card, self.mem_before, instruction.src_b) if function.arity == 2 else None
        return function.refusal(a, b)

    def _domain_error(self, step: int, why: str) -> FleqError:
        """Names the instruction, the operand, its value and the window; located at the instruction,
        or, inside an included routine, at the program's own line that called it."""
        instruction = self.instructions[self.pc]
        error = FleqError(ErrorCode.DOMAIN_ERROR, f"instruction {self.pc} ({instruction.func}), step {step}: {why}",
                          instruction.span)
        caller = self.card.instruction_span(self.user_pc) if self.user_pc is not None else None
        return at_call_site(error, caller)
