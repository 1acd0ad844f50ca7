"""The FLEQ machine's dialect of the FLEQ language: ``fleq dst, f, a, b, flag, p``, every function
as a mnemonic (``sigmoid y, x``), ``subleq``/``jmp``/``jle``/``halt`` as sugar, ``call``/``ret``
with routines; real literals, ``.vector`` and ``.matrix``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fleqc.errors import ErrorCode, Span
from fleqc.frontend import syntax as ast
from fleqc.frontend.ast_to_program import Linker, PendingCell, PendingInstruction, shape_words
from fleqc.frontend.diagnostics import show_number
from fleqc.frontend.dialect import Dialect
from fleqc.frontend.routines import ret_size
from fleqc.machines.fleq.functions import FLEQ_FUNCTIONS, VALUE_LIMIT, ShapeError
from fleqc.program import Cell, FleqInstruction


@dataclass(frozen=True)
class _Operand:
    """A FLEQ memory operand: its address and where it was written (None: a hidden cell)."""

    address: int
    expr: ast.Expr | None
    role: str = "operand"


class FleqLinker(Linker):
    """Cells are float64 arrays of their shapes; every instruction is checked against the shapes its
    function takes and gives; sugar, calls and returns become ``fleq`` instructions."""

    size_names = ("columns", "cell")  # .linked COLUMNS, CELL

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.call_index = {id(p.statement): p.index for p in self.layout.instructions if p.op == "call"}

    def hidden_needed(self) -> tuple[list[str], dict[str, float]]:
        calls = any(p.op == "apply" for p in self.layout.instructions)
        return ["__zero", "__dummy"] + (["__one"] if calls else []), self._routine_cells()

    def hidden_cell(self, name: str, address: int) -> Cell:
        return Cell(address, np.array(float(self.hidden_values[name])), ())

    def cell(self, pending: PendingCell) -> Cell:
        if pending.values:
            numbers = [self._real(expr) for expr in pending.values]
            array = np.array(numbers, dtype=np.float64).reshape(pending.shape)
        else:
            array = np.zeros(pending.shape, dtype=np.float64)
        return Cell(pending.address, array, pending.shape, pending.span)

    def halt(self, index: int, span: Span | None) -> FleqInstruction:
        zero, dummy = self.hidden["__zero"], self.hidden["__dummy"]
        return FleqInstruction(index, "mov", dummy, dummy, dummy, zero, index, span)

    def instructions(self, pending: PendingInstruction) -> list[FleqInstruction]:
        return self._ret(pending) if pending.op == "ret" else [self._fleq(pending)]

    def _routine_cells(self) -> dict[str, float]:
        """``__ret_R`` per called routine, ``__dispatch``, ``__call_k`` = k, ``__split_k`` = k + 0.5."""
        routines = self.layout.routines
        most = routines.most_sites()
        values: dict[str, float] = {f"__ret_{name}": 0 for name in routines.names if routines.sites[name]}
        if most >= 2:
            values["__dispatch"] = 0
        values |= {f"__call_{k}": k for k in range(1, most + 1)}
        values |= {f"__split_{k}": k + 0.5 for k in range(1, most)}
        return values

    def _real(self, expr: ast.Expr) -> float:
        number = self.evaluator.evaluate(expr).number
        try:
            value = float(number)
        except OverflowError:
            value = math.inf
        if not math.isfinite(value):
            raise self.sources.error(
                ErrorCode.LITERAL_RANGE, f"{show_number(number)} is too large for a float64", expr.span
            )
        if abs(value) > VALUE_LIMIT:
            raise self.sources.error(
                ErrorCode.LITERAL_RANGE, f"{show_number(number)} is beyond the FLEQ range |x| <= 2^1000", expr.span
            )
        return value

    def _fleq(self, pending: PendingInstruction) -> FleqInstruction:
        op, ops = pending.op, pending.statement.operands
        if op == "halt":
            return self.halt(pending.index, pending.statement.span)
        if op in ("jmp", "jle"):
            return self._fleq_jump(pending)
        if op == "subleq":  # mem[b] -= mem[a], branch on mem[b]: fleq b, sub, b, a, b, c
            a, b = self._operand(ops[0], "operand a"), self._operand(ops[1], "operand b")
            flag = _Operand(b.address, ops[1], "operand b of subleq (it is also the branch flag)")
            target = self.next_or(pending, 2, "the jump target c")
            return self._fleq_checked(pending, "sub", b, b, a, flag, target)
        if op == "call":  # store the site number in the routine's return cell and jump to it
            return self._call(pending)
        if op == "apply":  # f dst, a[, b]: no branch (the flag __one is never <= 0)
            func = pending.statement.mnemonic
            dst, a = self._operand(ops[0], "the destination"), self._operand(ops[1], "operand a")
            b = self._operand(ops[2], "operand b") if len(ops) > 2 else a
            flag = _Operand(self.hidden["__one"], None)
            return self._fleq_checked(pending, func, dst, a, b, flag, pending.index + 1)
        dst_expr, func_expr, a_expr, b_expr, flag_expr, target_expr = ops
        assert isinstance(func_expr, ast.Name)
        dst, a = self._operand(dst_expr, "the destination"), self._operand(a_expr, "operand a")
        b = self._operand(b_expr, "operand b")
        if FLEQ_FUNCTIONS[func_expr.name].arity == 1:
            b = a  # a unary function ignores b: the linker sets it equal to a
        flag = self._operand(flag_expr, "the flag")
        target = self.code(target_expr, "the jump target p")
        return self._fleq_checked(pending, func_expr.name, dst, a, b, flag, target, func_expr.span)

    def _call(self, pending: PendingInstruction) -> FleqInstruction:
        routines, statement = self.layout.routines, pending.statement
        target = statement.operands[0]
        assert isinstance(target, ast.Name)
        site = self.hidden[f"__call_{routines.site_number[id(statement)]}"]
        entry = self.code(target, "the routine")
        return FleqInstruction(
            pending.index, "mov", self.hidden[f"__ret_{target.name}"], site, site, self.hidden["__zero"],
            entry, statement.span,
        )

    def _ret(self, pending: PendingInstruction) -> list[FleqInstruction]:
        """The dispatch of a ``ret`` over its routine's call sites (see fleqc.frontend.routines)."""
        routines, span = self.layout.routines, pending.statement.span
        name = routines.owner[id(pending.statement)]
        returns = [self.call_index[id(call)] + 1 for call in routines.sites[name]]
        if not returns:
            return [self.halt(pending.index, span)]
        zero, dummy = self.hidden["__zero"], self.hidden["__dummy"]
        out: list[FleqInstruction] = []

        def emit(lo: int, hi: int) -> None:  # sites lo..hi (1-based), depth log2(K): no deep recursion
            at = pending.index + len(out)
            if lo == hi:
                out.append(FleqInstruction(at, "mov", dummy, dummy, dummy, zero, returns[lo - 1], span))
                return
            mid = (lo + hi) // 2
            left = at + 1 + ret_size(hi - mid)  # the right half comes first, falling through
            scratch, split = self.hidden["__dispatch"], self.hidden[f"__split_{mid}"]
            out.append(FleqInstruction(at, "sub", scratch, self.hidden[f"__ret_{name}"], split, scratch, left, span))
            emit(mid + 1, hi)
            emit(lo, mid)

        emit(1, len(returns))
        assert len(out) == pending.size
        return out

    def _operand(self, expr: ast.Expr, role: str) -> _Operand:
        return _Operand(self.data(expr, role), expr, role)

    def _fleq_jump(self, pending: PendingInstruction) -> FleqInstruction:
        """``jmp p`` / ``jle flag, p``: a ``mov`` on the hidden dummy cell, then the branch."""
        ops, dummy = pending.statement.operands, self.hidden["__dummy"]
        if pending.op == "jmp":
            flag = self.hidden["__zero"]
        else:
            flag = self.data(ops[0], "the flag")
            self._require_scalar(_Operand(flag, ops[0], "the flag"))
        target = self.code(ops[-1], "the jump target p")
        return FleqInstruction(
            pending.index, "mov", dummy, dummy, dummy, flag, target, pending.statement.span
        )

    def _fleq_checked(
        self,
        pending: PendingInstruction,
        func: str,
        dst: _Operand,
        a: _Operand,
        b: _Operand,
        flag: _Operand,
        target: int,
        func_span: Span | None = None,
    ) -> FleqInstruction:
        """The FLEQ instruction, once the shapes of its operands agree with ``func``."""
        function = FLEQ_FUNCTIONS[func]
        where = func_span or pending.statement.mnemonic_span
        try:
            result = function.result_shape(
                self.shape(a.address), self.shape(b.address) if function.arity == 2 else None
            )
        except ShapeError as exc:
            raise self.sources.error(ErrorCode.SHAPE_MISMATCH, f"'{func}': {exc}", where) from None
        if not function.gives(result, self.shape(dst.address)):
            raise self.sources.error(
                ErrorCode.SHAPE_MISMATCH,
                f"'{func}' gives a {shape_words(result)} but the destination holds a "
                f"{shape_words(self.shape(dst.address))}",
                dst.expr.span if dst.expr is not None else where,
            )
        self._require_scalar(flag)
        return FleqInstruction(
            pending.index,
            func,
            dst.address,
            a.address,
            b.address,
            flag.address,
            target,
            pending.statement.span,
        )

    def _require_scalar(self, operand: _Operand) -> None:
        shape = self.shape(operand.address)
        if shape != () and operand.expr is not None:
            raise self.sources.error(
                ErrorCode.SHAPE_MISMATCH,
                f"{operand.role} must be a scalar cell, but it holds a {shape_words(shape)}",
                operand.expr.span,
            )


FLEQ_DIALECT = Dialect(
    forms={
        "fleq": (6, 6, "fleq dst, f, a, b, flag, p"),
        "subleq": (2, 3, "subleq a, b[, c]"),
        "jle": (2, 2, "jle flag, p"),
        "jmp": (1, 1, "jmp p"),
        "halt": (0, 0, "halt"),
        "call": (1, 1, "call ROUTINE"),
        "ret": (0, 0, "ret"),
    },
    linker=FleqLinker,
    functions=FLEQ_FUNCTIONS,
    function_operands={"fleq": 1},
    reals=True,
    shaped_cells=True,
    routines=True,
)
