"""The FLEQ machine's runs: the reference run and the health check after every pass, both of which
report a domain error at the program's own line when it happens inside an included routine."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from fleqc.errors import ErrorCode, FleqError, Span
from fleqc.isa import fleq as interpreter
from fleqc.isa.fleq_functions import VALUE_LIMIT
from fleqc.isa.state import RunResult, run_to_fixed_point
from fleqc.machine.card_to_program import card_to_program
from fleqc.machine.fleq_domains import explain_fault
from fleqc.machines.base import HealthCheck
from fleqc.program import LinkedProgram
from fleqc.transformer import MachineFault
from fleqc.transformer.layers import LoopedTransformer


def run_fleq_reference(program: LinkedProgram, max_steps: int, pc: int) -> RunResult:
    """The FLEQ reference run; a domain error inside an included routine is located at the
    program's own line that was executed last (the call), like the transformer backend's."""
    last_own: list[int] = []

    def step(program: LinkedProgram, state):
        span = program.instructions[state.pc].span if 0 <= state.pc < len(program.instructions) else None
        if span is None or span.file == program.source_name:
            last_own[:] = [state.pc]
        return interpreter.step(program, state)

    try:
        return run_to_fixed_point(step, program, interpreter.initial_state(program, pc), max_steps, (FleqError,))
    except FleqError as error:
        caller = program.instructions[last_own[0]].span if last_own else None
        raise at_call_site(error, caller) from None


def at_call_site(error: FleqError, caller: Optional[Span]) -> FleqError:
    """``error`` (raised inside an included file) moved to ``caller``, the program's own line."""
    span = error.span
    if error.code is not ErrorCode.DOMAIN_ERROR or span is None or caller is None or span.file == caller.file:
        return error
    return FleqError(error.code, f"{error.message}; in {span.file}:{span.line}, reached from this line", caller)


class FleqHealthCheck(HealthCheck):
    """The generic checks, and: every lane holds the same pc, every memory value has |x| <= 2^1000,
    and the fault row is 0 (a function block's operand left its domain: reported as a DOMAIN_ERROR
    naming the instruction)."""

    def __init__(self, model: LoopedTransformer, card: Any) -> None:
        super().__init__(model, card)
        self.fault_rows = list(model.metadata.get("fault_rows", []))
        self.mem_before = card.X[card.rows["mem"].slice].copy()  # the operands the next pass reads
        self.user_pc: Optional[int] = None  # the last instruction executed from the program's own file

    def extra(self, X: np.ndarray, step: int, cols: Any) -> None:
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

    def after(self, X: np.ndarray, cols: Any) -> None:
        files = self.card.instruction_files
        if not files or not files[self.pc]:
            self.user_pc = self.pc
        self.mem_before[:, cols] = X[self.card.rows["mem"].slice][:, cols]  # the unchanged columns are kept

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
