"""AST to LinkedProgram: the linker.

:func:`link` turns a parsed main file into a :class:`LinkedProgram`, in stages that each guarantee
something to the next:

1. ``expand_includes`` (:mod:`.includes`): one flat list of statements in program order, includes
   expanded, each tagged with its section.
2. ``_choose_machine``: the machine, the same in every ``.machine`` directive.
3. ``_collect_definitions``: every label and constant name defined exactly once.
4. ``Evaluator`` (:mod:`.expressions`): constants resolved in dependency order, first without
   labels (for sizes and ``.bits``), later with them.
5. ``_choose_bits``: the word width, 2..32, agreeing with the caller's and every ``.bits``.
6. ``_Layout`` (pass one): every data directive in ``.data`` and every instruction in ``.text``;
   cells have addresses and shapes, instructions an index and a mnemonic and operand count valid in
   the machine, labels an address or index; sizes within limits; at least one instruction.
7. ``_Linker`` (pass two): cell values in range (SUBLEQ: wrapped to signed N bits; FLEQ: finite
   float64 arrays of the cell's shape); operands of the right kind and in range; FLEQ functions
   given operands of shapes they accept, producing the destination's shape, with scalar flags;
   hidden cells (``__zero``, ``__one``, ``__dummy``) after the user's cells, only when an
   instruction needs them; the implicit trailing ``halt``; a Symbol for every label.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from fleqc.errors import ErrorCode, Span
from fleqc.frontend import syntax as ast
from fleqc.frontend.diagnostics import Sources, did_you_mean, plural, show_number
from fleqc.frontend.expressions import KIND_WORDS, Definition, Evaluator, NeedsLabel, Value
from fleqc.frontend.includes import Placed, Section, expand_includes
from fleqc.frontend.routines import Routines, collect_routines, ret_size
from fleqc.isa.fleq_functions import FLEQ_FUNCTIONS, VALUE_LIMIT, ShapeError
from fleqc.machine.config import DEFAULT_BITS, MAX_BITS, MIN_BITS
from fleqc.program import (
    Cell,
    FleqInstruction,
    Instruction,
    LinkedProgram,
    MachineKind,
    SubleqInstruction,
    Symbol,
)

MACHINES: tuple[MachineKind, ...] = ("subleq", "fleq")

# Limits that keep a typo (`.zero 1000000000`) from exhausting memory; far above what a looped
# transformer can hold.
MAX_CELLS = 1 << 16
MAX_INSTRUCTIONS = 1 << 16
MAX_CELL_ELEMENTS = 1 << 20

HIDDEN_CELLS = ("__zero", "__one", "__dummy")  # in this order after the user's cells
HIDDEN_VALUES = {"__zero": 0, "__one": 1, "__dummy": 0}

Shape = tuple[int, ...]


def link(
    main: ast.SourceFile,
    *,
    main_dir: Path | None = None,
    main_path: Path | None = None,
    bits: int | None = None,
) -> LinkedProgram:
    """Link ``main`` (parsed from ``main_path``, if it is a file) into a LinkedProgram.

    ``main_dir`` is where ``.include`` looks first for files the main file names; ``bits`` is the
    width asked for by the caller (the CLI), which every ``.bits`` directive must agree with.
    """
    sources = Sources()
    placed = expand_includes(main, main_dir, main_path, sources)
    machine = _choose_machine(placed, sources)
    routines = collect_routines(placed, machine, sources)
    placed = routines.placed
    definitions = _collect_definitions(placed, sources)
    evaluator = Evaluator(machine, definitions, sources)
    width = _choose_bits(placed, bits, evaluator, sources)
    layout = _Layout(machine, evaluator, sources, routines).run(placed)
    if not layout.instructions:
        raise sources.error(ErrorCode.EMPTY_PROGRAM, "the program has no instructions", Span(main.name, 1, 1))
    evaluator.set_labels(layout.label_values())
    return _Linker(machine, width, layout, evaluator, sources).run(main.name)


# Machine ------------------------------------------------------------------------------------------


def _choose_machine(placed: Sequence[Placed], sources: Sources) -> MachineKind:
    """The machine every ``.machine`` names (``subleq`` if none does)."""
    chosen: ast.MachineDirective | None = None
    for item in placed:
        directive = item.statement
        if not isinstance(directive, ast.MachineDirective):
            continue
        if directive.machine not in MACHINES:
            hint = did_you_mean(directive.machine, MACHINES)
            raise sources.error(
                ErrorCode.UNKNOWN_MACHINE,
                f"unknown machine '{directive.machine}'{hint}; the machines are subleq and fleq",
                directive.machine_span,
            )
        if chosen is not None and directive.machine != chosen.machine:
            raise sources.error(
                ErrorCode.MACHINE_MISMATCH,
                f"'.machine {directive.machine}' disagrees with '.machine {chosen.machine}' at {chosen.span}",
                directive.machine_span,
            )
        chosen = chosen or directive
    return chosen.machine if chosen else "subleq"  # type: ignore[return-value]


# Names --------------------------------------------------------------------------------------------


def _collect_definitions(placed: Sequence[Placed], sources: Sources) -> dict[str, Definition]:
    """Every label and constant by name; a name defined twice is an error at the second one."""
    definitions: dict[str, Definition] = {}
    for item in placed:
        statement = item.statement
        if isinstance(statement, ast.Label):
            name, span = statement.name, statement.span
        elif isinstance(statement, ast.ConstDirective):
            name, span = statement.name, statement.name_span
        else:
            continue
        first = definitions.get(name)
        if first is not None:
            what = "label" if isinstance(first, ast.Label) else "constant"
            raise sources.error(
                ErrorCode.DUPLICATE_LABEL, f"'{name}' is already defined as a {what} at {first.span}", span
            )
        definitions[name] = statement
    return definitions


# Word width ---------------------------------------------------------------------------------------


def _choose_bits(
    placed: Sequence[Placed], requested: int | None, evaluator: Evaluator, sources: Sources
) -> int:
    """The SUBLEQ word width: the caller's, every ``.bits`` agreeing with it, else 16."""
    if requested is not None and (
        not isinstance(requested, int) or isinstance(requested, bool) or not MIN_BITS <= requested <= MAX_BITS
    ):
        raise sources.error(
            ErrorCode.BAD_BITS,
            f"bits must be a whole number from {MIN_BITS} to {MAX_BITS}, got {requested!r}",
            None,
        )
    chosen, chosen_at = requested, "the command line"
    for item in placed:
        directive = item.statement
        if not isinstance(directive, ast.BitsDirective):
            continue
        width = _bits_value(directive.bits, evaluator, sources)
        if chosen is not None and width != chosen:
            raise sources.error(
                ErrorCode.BAD_BITS,
                f"'.bits {width}' disagrees with {chosen} bits from {chosen_at}",
                directive.bits.span,
            )
        chosen, chosen_at = width, str(directive.span)
    return DEFAULT_BITS if chosen is None else chosen


def _bits_value(expr: ast.Expr, evaluator: Evaluator, sources: Sources) -> int:
    try:
        value = evaluator.evaluate(expr)
    except NeedsLabel as pending:
        raise sources.error(
            ErrorCode.BAD_BITS, f"'.bits' cannot use the label '{pending.name}'", expr.span
        ) from None
    if not isinstance(value.number, int) or not MIN_BITS <= value.number <= MAX_BITS:
        raise sources.error(
            ErrorCode.BAD_BITS,
            f"bits must be a whole number from {MIN_BITS} to {MAX_BITS}, got {show_number(value.number)}",
            expr.span,
        )
    return value.number


# Pass one: layout ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _PendingCell:
    """A user cell before its value is computed: no expressions means zeros."""

    address: int
    shape: Shape
    values: tuple[ast.Expr, ...]
    span: Span


@dataclass(frozen=True)
class _PendingInstruction:
    """An instruction with its index and what it turned out to be (``op``) in this machine."""

    index: int
    statement: ast.Instruction
    op: str  # subleq, jmp, halt, fleq, jle, call, ret or apply (a FLEQ function as a mnemonic)
    size: int = 1  # instructions it expands to (a `ret`: its dispatch over the call sites)


@dataclass(frozen=True)
class _LabelPlace:
    label: ast.Label
    kind: Literal["data", "code"]
    address: int


@dataclass
class _Layout:
    """Addresses for cells, indices for instructions, places for labels (pass one)."""

    machine: MachineKind
    evaluator: Evaluator
    sources: Sources
    routines: Routines
    cells: list[_PendingCell] = field(default_factory=list)
    instructions: list[_PendingInstruction] = field(default_factory=list)
    labels: dict[str, _LabelPlace] = field(default_factory=dict)
    lengths: dict[str, int] = field(default_factory=dict)
    code_size: int = 0  # instructions placed so far (a `ret` may take several)

    def run(self, placed: Sequence[Placed]) -> _Layout:
        """Place everything; a label names the next item of the section it is written in."""
        pending: dict[Section, list[Placed]] = {"data": [], "text": []}
        group: list[str] = []  # the last data labels placed: later data directives extend them
        for item in placed:
            statement = item.statement
            if isinstance(statement, ast.Label):
                pending[item.section].append(item)
            elif isinstance(statement, ast.DATA_DIRECTIVES):
                started, count = self._place_data(item, pending["data"])
                group = started or group
                for name in group:
                    self.lengths[name] += count
                pending["data"] = []
            elif isinstance(statement, ast.Instruction):
                self._place_instruction(item, pending["text"])
                pending["text"] = []
        # labels after the last item of their section: the end of memory, or the implicit halt
        self._attach(pending["data"], "data")
        self._attach(pending["text"], "code")
        return self

    def label_values(self) -> dict[str, Value]:
        return {name: Value(place.address, place.kind) for name, place in self.labels.items()}

    def _attach(self, pending: list[Placed], kind: Literal["data", "code"]) -> list[str]:
        address = len(self.cells) if kind == "data" else self.code_size
        for item in pending:
            label = item.statement
            assert isinstance(label, ast.Label)
            self.labels[label.name] = _LabelPlace(label, kind, address)
            self.lengths[label.name] = 0 if kind == "data" else 1
        return [item.statement.name for item in pending]  # type: ignore[union-attr]

    def _place_data(self, item: Placed, pending: list[Placed]) -> tuple[list[str], int]:
        """Lay out one data directive; returns the labels attached to it and its cell count."""
        directive = item.statement
        if isinstance(directive, (ast.VectorDirective, ast.MatrixDirective)) and self.machine != "fleq":
            name = ".vector" if isinstance(directive, ast.VectorDirective) else ".matrix"
            raise self.sources.error(
                ErrorCode.NOT_IN_MACHINE, f"'{name}' is FLEQ only (add '.machine fleq')", directive.span
            )
        if item.section != "data":
            raise self.sources.error(
                ErrorCode.WRONG_SECTION, "data in the .text section (put it after '.data')", directive.span
            )
        started = self._attach(pending, "data")
        cells = self._cells_of(directive)  # type: ignore[arg-type]
        if len(self.cells) + len(cells) > MAX_CELLS:
            raise self.sources.error(
                ErrorCode.PROGRAM_TOO_LARGE,
                f"the program defines more than {MAX_CELLS} memory cells",
                directive.span,
            )
        self.cells += cells
        return started, len(cells)

    def _cells_of(self, directive: ast.DataDirective) -> list[_PendingCell]:
        at, span = len(self.cells), directive.span
        if isinstance(directive, ast.WordDirective):
            return [
                _PendingCell(at + i, (), (value,), value.span) for i, value in enumerate(directive.values)
            ]
        if isinstance(directive, ast.ZeroDirective):
            count = self._size(directive.count, "'.zero' count", 0, MAX_CELLS)
            return [_PendingCell(at + i, (), (), span) for i in range(count)]
        if isinstance(directive, ast.VectorDirective):
            shape: Shape = (self._size(directive.length, "vector length", 1, MAX_CELL_ELEMENTS),)
        else:
            rows = self._size(directive.rows, "row count", 1, MAX_CELL_ELEMENTS)
            columns = self._size(directive.columns, "column count", 1, MAX_CELL_ELEMENTS)
            shape = (rows, columns)
            if rows * columns > MAX_CELL_ELEMENTS:
                raise self.sources.error(
                    ErrorCode.PROGRAM_TOO_LARGE,
                    f"a {rows}x{columns} matrix has more than {MAX_CELL_ELEMENTS} elements",
                    directive.span,
                )
        self._check_value_count(directive, shape)
        return [_PendingCell(at, shape, directive.values, span)]

    def _check_value_count(self, directive: ast.VectorDirective | ast.MatrixDirective, shape: Shape) -> None:
        needed = math.prod(shape)
        given = len(directive.values)
        if given not in (0, needed):
            where = directive.values[needed].span if given > needed else directive.span
            raise self.sources.error(
                ErrorCode.OPERAND_COUNT,
                f"a {_shape_words(shape)} needs {needed} values (or none for zeros), got {given}",
                where,
            )

    def _size(self, expr: ast.Expr, what: str, least: int, most: int) -> int:
        """A size known before labels have addresses: a whole number in [least, most]."""
        try:
            value = self.evaluator.evaluate(expr)
        except NeedsLabel as pending:
            raise self.sources.error(
                ErrorCode.BAD_DIRECTIVE,
                f"the {what} cannot use the label '{pending.name}' "
                "(sizes are fixed before labels are placed)",
                expr.span,
            ) from None
        number = value.number
        if not isinstance(number, int) or number < least:
            raise self.sources.error(
                ErrorCode.BAD_DIRECTIVE,
                f"the {what} must be a whole number >= {least}, got {show_number(number)}",
                expr.span,
            )
        if number > most:
            raise self.sources.error(
                ErrorCode.PROGRAM_TOO_LARGE,
                f"the {what} {show_number(number)} is larger than the limit {most}",
                expr.span,
            )
        return number

    def _place_instruction(self, item: Placed, pending: list[Placed]) -> None:
        statement = item.statement
        assert isinstance(statement, ast.Instruction)
        op = _classify(statement, self.machine, self.sources)
        if item.section != "text":
            raise self.sources.error(
                ErrorCode.WRONG_SECTION,
                "instruction in the .data section (put it after '.text')",
                statement.span,
            )
        size = self.routines.size(statement)
        if self.code_size + size >= MAX_INSTRUCTIONS:
            raise self.sources.error(
                ErrorCode.PROGRAM_TOO_LARGE,
                f"the program has more than {MAX_INSTRUCTIONS - 1} instructions",
                statement.span,
            )
        self._attach(pending, "code")
        self.instructions.append(_PendingInstruction(self.code_size, statement, op, size))
        self.code_size += size


def _shape_words(shape: Shape) -> str:
    if shape == ():
        return "scalar"
    if len(shape) == 1:
        return f"vector of {shape[0]}"
    return "x".join(str(n) for n in shape) + " matrix"


# Mnemonics and operand counts ---------------------------------------------------------------------

# op -> (least, most operands, how to write it)
_SUBLEQ_FORMS = {
    "subleq": (2, 3, "subleq a, b[, c]"),
    "jmp": (1, 1, "jmp c"),
    "halt": (0, 0, "halt"),
}
_FLEQ_FORMS = {
    "fleq": (6, 6, "fleq dst, f, a, b, flag, p"),
    "subleq": (2, 3, "subleq a, b[, c]"),
    "jle": (2, 2, "jle flag, p"),
    "jmp": (1, 1, "jmp p"),
    "halt": (0, 0, "halt"),
    "call": (1, 1, "call ROUTINE"),
    "ret": (0, 0, "ret"),
}


def _classify(statement: ast.Instruction, machine: MachineKind, sources: Sources) -> str:
    """What the instruction is in this machine; checks the mnemonic and the operand count."""
    mnemonic = statement.mnemonic
    if machine == "subleq":
        forms = _SUBLEQ_FORMS
        if mnemonic not in forms:
            _reject_subleq_mnemonic(statement, sources)
        op = mnemonic
    elif mnemonic in _FLEQ_FORMS:
        forms, op = _FLEQ_FORMS, mnemonic
    elif mnemonic in FLEQ_FUNCTIONS:
        arity = FLEQ_FUNCTIONS[mnemonic].arity
        operands = "dst, a, b" if arity == 2 else "dst, a"
        forms, op = {"apply": (arity + 1, arity + 1, f"{mnemonic} {operands}")}, "apply"
    else:
        hint = did_you_mean(mnemonic, list(_FLEQ_FORMS) + list(FLEQ_FUNCTIONS)) or _label_hint(statement)
        raise sources.error(
            ErrorCode.UNKNOWN_FUNCTION,
            f"unknown instruction or function '{mnemonic}'{hint}",
            statement.mnemonic_span,
        )
    _check_operand_count(statement, *forms[op], sources)
    if op == "fleq":
        _check_function_operand(statement.operands[1], sources)
    return op


def _reject_subleq_mnemonic(statement: ast.Instruction, sources: Sources) -> None:
    mnemonic = statement.mnemonic
    if mnemonic in FLEQ_FUNCTIONS or mnemonic in _FLEQ_FORMS:
        raise sources.error(
            ErrorCode.NOT_IN_MACHINE,
            f"'{mnemonic}' is a FLEQ instruction (add '.machine fleq')",
            statement.mnemonic_span,
        )
    hint = did_you_mean(mnemonic, _SUBLEQ_FORMS) or _label_hint(statement)
    raise sources.error(
        ErrorCode.UNKNOWN_INSTRUCTION, f"unknown instruction '{mnemonic}'{hint}", statement.mnemonic_span
    )


def _label_hint(statement: ast.Instruction) -> str:
    """A hint for ``loop halt``: a label written without its colon."""
    first = statement.operands[0] if statement.operands else None
    known = set(_FLEQ_FORMS) | set(FLEQ_FUNCTIONS)
    if isinstance(first, ast.Name) and first.name in known:
        return f" (is '{statement.mnemonic}' a label missing its ':'?)"
    return ""


def _check_operand_count(
    statement: ast.Instruction, least: int, most: int, form: str, sources: Sources
) -> None:
    count = len(statement.operands)
    if least <= count <= most:
        return
    expected = f"{least}" if least == most else f"{least} or {most}"
    noun = "operand" if most == 1 else "operands"
    span = statement.operands[most].span if count > most else statement.span
    raise sources.error(
        ErrorCode.OPERAND_COUNT,
        f"'{statement.mnemonic}' takes {expected} {noun} ({form}), got {count}",
        span,
    )


def _check_function_operand(operand: ast.Expr, sources: Sources) -> None:
    if isinstance(operand, ast.Name) and operand.name in FLEQ_FUNCTIONS:
        return
    if isinstance(operand, ast.Name):
        hint = did_you_mean(operand.name, FLEQ_FUNCTIONS)
        message = f"unknown function '{operand.name}'{hint}"
    else:
        message = "expected a function name (add, sub, mul, ...) as the second operand of 'fleq'"
    raise sources.error(ErrorCode.UNKNOWN_FUNCTION, message, operand.span)


# Pass two: values, instructions, symbols ----------------------------------------------------------


@dataclass(frozen=True)
class _Operand:
    """A FLEQ memory operand: its address and where it was written (None: a hidden cell)."""

    address: int
    expr: ast.Expr | None
    role: str = "operand"


class _Linker:
    """Pass two: values, hidden cells, encoded instructions and symbols."""

    def __init__(
        self, machine: MachineKind, bits: int, layout: _Layout, evaluator: Evaluator, sources: Sources
    ) -> None:
        self.machine, self.bits, self.layout = machine, bits, layout
        self.evaluator, self.sources = evaluator, sources
        self.user_cells = len(layout.cells)
        self.code_size = layout.code_size + 1  # the implicit halt
        self.hidden_values: dict[str, float] = dict(HIDDEN_VALUES)
        self.hidden = self._hidden_addresses()
        self.call_index = {id(p.statement): p.index for p in layout.instructions if p.op == "call"}

    def run(self, source_name: str) -> LinkedProgram:
        cells = [self._cell(pending) for pending in self.layout.cells]
        cells += [self._hidden_cell(name, address) for name, address in self.hidden.items()]
        instructions: list[Instruction] = []
        for pending in self.layout.instructions:
            if pending.op == "ret":
                instructions += self._ret(pending)
            else:
                instructions.append(self._instruction(pending))
        instructions.append(self._halt(len(instructions), None))
        return LinkedProgram(
            machine=self.machine,
            bits=self.bits,
            cells=tuple(cells),
            instructions=tuple(instructions),
            symbols=self._symbols(),
            source_name=source_name,
        )

    # hidden cells

    def _hidden_addresses(self) -> dict[str, int]:
        """Addresses of the hidden cells some instruction needs, after the user's cells."""
        if self.machine == "subleq":
            needed = {"__zero"}  # for the implicit halt, if nothing else
        else:
            calls = any(p.op == "apply" for p in self.layout.instructions)
            needed = {"__zero", "__dummy"} | ({"__one"} if calls else set())
        names = [name for name in HIDDEN_CELLS if name in needed]
        if self.machine == "fleq":
            names += self._routine_cells()
        return {name: self.user_cells + i for i, name in enumerate(names)}

    def _routine_cells(self) -> list[str]:
        """``__ret_R`` per called routine, ``__dispatch``, ``__call_k`` = k, ``__split_k`` = k + 0.5."""
        routines = self.layout.routines
        most = routines.most_sites()
        values: dict[str, float] = {f"__ret_{name}": 0 for name in routines.names if routines.sites[name]}
        if most >= 2:
            values["__dispatch"] = 0
        values |= {f"__call_{k}": k for k in range(1, most + 1)}
        values |= {f"__split_{k}": k + 0.5 for k in range(1, most)}
        self.hidden_values |= values
        return list(values)

    def _hidden_cell(self, name: str, address: int) -> Cell:
        value = self.hidden_values[name]
        return Cell(address, np.array(float(value)) if self.machine == "fleq" else value, ())

    # cells

    def _cell(self, pending: _PendingCell) -> Cell:
        if self.machine == "subleq":
            value = self._word(pending.values[0]) if pending.values else 0
            return Cell(pending.address, value, (), pending.span)
        if pending.values:
            numbers = [self._real(expr) for expr in pending.values]
            array = np.array(numbers, dtype=np.float64).reshape(pending.shape)
        else:
            array = np.zeros(pending.shape, dtype=np.float64)
        return Cell(pending.address, array, pending.shape, pending.span)

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

    # operands

    def _address(self, expr: ast.Expr, kind: Literal["data", "code"], role: str) -> int:
        """A data address (0 <= a < user cells) or a code index (0 <= c <= last instruction)."""
        value = self.evaluator.evaluate(expr)
        limit = self.user_cells if kind == "data" else self.code_size
        if value.kind and value.kind != kind:
            raise self.sources.error(
                ErrorCode.WRONG_KIND,
                f"{role} must be a {KIND_WORDS[kind]}, but this is a {KIND_WORDS[value.kind]}",
                expr.span,
            )
        number = value.number
        if not isinstance(number, int):
            raise self.sources.error(
                ErrorCode.ADDRESS_RANGE, f"{role} must be a whole number, got {number!r}", expr.span
            )
        if not 0 <= number < limit:
            space = (
                plural(limit, "memory cell")
                if kind == "data"
                else plural(limit, "instruction") + " (with the final halt)"
            )
            raise self.sources.error(
                ErrorCode.ADDRESS_RANGE,
                f"{role} is out of range ({show_number(number)}): the program has {space}",
                expr.span,
            )
        return number

    def _data(self, expr: ast.Expr, role: str) -> int:
        return self._address(expr, "data", role)

    def _code(self, expr: ast.Expr, role: str) -> int:
        return self._address(expr, "code", role)

    # instructions

    def _instruction(self, pending: _PendingInstruction) -> Instruction:
        if self.machine == "subleq":
            return self._subleq(pending)
        return self._fleq(pending)

    def _halt(self, index: int, span: Span | None) -> Instruction:
        zero = self.hidden["__zero"]
        if self.machine == "subleq":
            return SubleqInstruction(index, zero, zero, index, span)
        dummy = self.hidden["__dummy"]
        return FleqInstruction(index, "mov", dummy, dummy, dummy, zero, index, span)

    def _next_or(self, pending: _PendingInstruction, position: int, role: str) -> int:
        operands = pending.statement.operands
        return self._code(operands[position], role) if len(operands) > position else pending.index + 1

    def _subleq(self, pending: _PendingInstruction) -> SubleqInstruction:
        index, statement = pending.index, pending.statement
        ops, span = statement.operands, statement.span
        if pending.op == "halt":
            return self._halt(index, span)  # type: ignore[return-value]
        zero = self.hidden["__zero"]
        if pending.op == "jmp":
            return SubleqInstruction(index, zero, zero, self._code(ops[0], "the jump target"), span)
        a, b = self._data(ops[0], "operand a"), self._data(ops[1], "operand b")
        return SubleqInstruction(index, a, b, self._next_or(pending, 2, "the jump target c"), span)

    def _fleq(self, pending: _PendingInstruction) -> FleqInstruction:
        op, ops = pending.op, pending.statement.operands
        if op == "halt":
            return self._halt(pending.index, pending.statement.span)  # type: ignore[return-value]
        if op in ("jmp", "jle"):
            return self._fleq_jump(pending)
        if op == "subleq":  # mem[b] -= mem[a], branch on mem[b]: fleq b, sub, b, a, b, c
            a, b = self._operand(ops[0], "operand a"), self._operand(ops[1], "operand b")
            flag = _Operand(b.address, ops[1], "operand b of subleq (it is also the branch flag)")
            target = self._next_or(pending, 2, "the jump target c")
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
        target = self._code(target_expr, "the jump target p")
        return self._fleq_checked(pending, func_expr.name, dst, a, b, flag, target, func_expr.span)

    def _call(self, pending: _PendingInstruction) -> FleqInstruction:
        routines, statement = self.layout.routines, pending.statement
        target = statement.operands[0]
        assert isinstance(target, ast.Name)
        site = self.hidden[f"__call_{routines.site_number[id(statement)]}"]
        entry = self._code(target, "the routine")
        return FleqInstruction(
            pending.index, "mov", self.hidden[f"__ret_{target.name}"], site, site, self.hidden["__zero"],
            entry, statement.span,
        )

    def _ret(self, pending: _PendingInstruction) -> list[FleqInstruction]:
        """The dispatch of a ``ret`` over its routine's call sites (see fleqc.frontend.routines)."""
        routines, span = self.layout.routines, pending.statement.span
        name = routines.owner[id(pending.statement)]
        returns = [self.call_index[id(call)] + 1 for call in routines.sites[name]]
        if not returns:
            return [self._halt(pending.index, span)]  # type: ignore[list-item]
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
        return _Operand(self._data(expr, role), expr, role)

    def _fleq_jump(self, pending: _PendingInstruction) -> FleqInstruction:
        """``jmp p`` / ``jle flag, p``: a ``mov`` on the hidden dummy cell, then the branch."""
        ops, dummy = pending.statement.operands, self.hidden["__dummy"]
        if pending.op == "jmp":
            flag = self.hidden["__zero"]
        else:
            flag = self._data(ops[0], "the flag")
            self._require_scalar(_Operand(flag, ops[0], "the flag"))
        target = self._code(ops[-1], "the jump target p")
        return FleqInstruction(
            pending.index, "mov", dummy, dummy, dummy, flag, target, pending.statement.span
        )

    def _fleq_checked(
        self,
        pending: _PendingInstruction,
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
                self._shape(a.address), self._shape(b.address) if function.arity == 2 else None
            )
        except ShapeError as exc:
            raise self.sources.error(ErrorCode.SHAPE_MISMATCH, f"'{func}': {exc}", where) from None
        if not function.gives(result, self._shape(dst.address)):
            raise self.sources.error(
                ErrorCode.SHAPE_MISMATCH,
                f"'{func}' gives a {_shape_words(result)} but the destination holds a "
                f"{_shape_words(self._shape(dst.address))}",
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

    def _shape(self, address: int) -> Shape:
        return self.layout.cells[address].shape if address < self.user_cells else ()

    def _require_scalar(self, operand: _Operand) -> None:
        shape = self._shape(operand.address)
        if shape != () and operand.expr is not None:
            raise self.sources.error(
                ErrorCode.SHAPE_MISMATCH,
                f"{operand.role} must be a scalar cell, but it holds a {_shape_words(shape)}",
                operand.expr.span,
            )

    # symbols

    def _symbols(self) -> dict[str, Symbol]:
        symbols: dict[str, Symbol] = {}
        for name, place in self.layout.labels.items():
            shape = (
                self._shape(place.address) if place.kind == "data" and place.address < self.user_cells else ()
            )
            symbols[name] = Symbol(
                name, place.kind, place.address, shape, place.label.span, self.layout.lengths[name]
            )
        for name, address in self.hidden.items():
            symbols[name] = Symbol(name, "data", address, (), None, 1)
        return symbols
