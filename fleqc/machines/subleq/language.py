"""The SUBLEQ machine's dialect of the FLEQ language: ``subleq a, b[, c]``, ``jmp c``, ``halt``;
integer cells of N bits (``.word``, ``.zero``)."""

from __future__ import annotations

from fleqc.errors import ErrorCode, Span
from fleqc.frontend import syntax as ast
from fleqc.frontend.ast_to_program import Linker, PendingCell, PendingInstruction
from fleqc.frontend.diagnostics import show_number
from fleqc.frontend.dialect import Dialect
from fleqc.program import Cell, SubleqInstruction


class SubleqLinker(Linker):
    """Cells are signed N-bit ints; ``halt`` and ``jmp`` use the hidden zero cell."""

    def hidden_needed(self) -> tuple[list[str], dict[str, float]]:
        return ["__zero"], {}  # for the implicit halt, if nothing else

    def cell(self, pending: PendingCell) -> Cell:
        value = self._word(pending.values[0]) if pending.values else 0
        return Cell(pending.address, value, (), pending.span)

    def hidden_cell(self, name: str, address: int) -> Cell:
        return Cell(address, self.hidden_values[name], ())

    def _word(self, expr: ast.Expr) -> int:
        """A SUBLEQ value: in [-2^(N-1), 2^N - 1], stored as signed N-bit two's complement."""
        number = self.evaluator.evaluate(expr).number
        low, high = -(1 << (self.bits - 1)), (1 << self.bits) - 1
        if not low <= number <= high:
            raise self.sources.error(
                ErrorCode.LITERAL_RANGE,
                f"{show_number(number)} does not fit in {self.bits} bits (allowed: {low} to {high})",
                expr.span,
            )
        return number - (1 << self.bits) if number >= 1 << (self.bits - 1) else number


    def halt(self, index: int, span: Span | None) -> SubleqInstruction:
        zero = self.hidden["__zero"]
        return SubleqInstruction(index, zero, zero, index, span)

    def instructions(self, pending: PendingInstruction) -> list[SubleqInstruction]:
        return [self._subleq(pending)]

    def _subleq(self, pending: PendingInstruction) -> SubleqInstruction:
        index, statement = pending.index, pending.statement
        ops, span = statement.operands, statement.span
        if pending.op == "halt":
            return self.halt(index, span)
        zero = self.hidden["__zero"]
        if pending.op == "jmp":
            return SubleqInstruction(index, zero, zero, self.code(ops[0], "the jump target"), span)
        a, b = self.data(ops[0], "operand a"), self.data(ops[1], "operand b")
        return SubleqInstruction(index, a, b, self.next_or(pending, 2, "the jump target c"), span)


SUBLEQ_DIALECT = Dialect(
    forms={"subleq": (2, 3, "subleq a, b[, c]"), "jmp": (1, 1, "jmp c"), "halt": (0, 0, "halt")},
    linker=SubleqLinker,
)
