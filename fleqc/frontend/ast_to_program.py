"""AST to LinkedProgram: the linker.

:func:`link` turns a parsed main file into a :class:`LinkedProgram`, in stages that each guarantee
something to the next:

1. ``expand_includes`` (:mod:`.includes`): one flat list of statements in program order, includes
   expanded, each tagged with its section.
2. ``_choose_machine``: the machine, the same in every ``.machine`` directive; from here on its
   dialect (:mod:`.dialect`) says which instructions, literals and directives are allowed.
3. ``_collect_definitions``: every label and constant name defined exactly once.
4. ``Evaluator`` (:mod:`.expressions`): constants resolved in dependency order, first without
   labels (for sizes and ``.bits``), later with them.
5. ``_choose_bits``: the word width, 2..32, agreeing with the caller's and every ``.bits``.
6. ``_Layout`` (pass one): every data directive in ``.data`` and every instruction in ``.text``;
   cells have addresses and shapes, instructions an index and a mnemonic and operand count valid in
   the machine, labels an address or index; sizes within limits; at least one instruction.
7. ``Linker`` (pass two, the machine's subclass): cell values in range (SUBLEQ: wrapped to signed
   N bits; FLEQ: finite float64 arrays of the cell's shape); operands of the right kind and in
   range; FLEQ functions given operands of shapes they accept, producing the destination's shape,
   with scalar flags; hidden cells (``__zero``, ``__one``, ``__dummy``) after the user's cells,
   only when an instruction needs them; the implicit trailing ``halt``; a Symbol for every label.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn

from fleqc.errors import ErrorCode, Span
from fleqc.frontend import syntax as ast
from fleqc.frontend.diagnostics import Sources, did_you_mean, plural, show_number
from fleqc.frontend.dialect import Language, Machine
from fleqc.frontend.expressions import KIND_WORDS, Definition, Evaluator, NeedsLabel, Value
from fleqc.frontend.includes import Placed, Section, expand_includes
from fleqc.frontend.routines import Routines, collect_routines
from fleqc.program import DEFAULT_BITS, MAX_BITS, MIN_BITS, Cell, Instruction, LinkedProgram, Symbol

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
    language: Language,
    *,
    main_dir: Path | None = None,
    main_path: Path | None = None,
    bits: int | None = None,
) -> LinkedProgram:
    """Link ``main`` (parsed from ``main_path``, if it is a file) into a LinkedProgram.

    ``language``: the machines a ``.machine`` directive may name; ``main_dir`` is where ``.include``
    looks first for files the main file names; ``bits`` is the width asked for by the caller (the
    CLI), which every ``.bits`` directive must agree with.
    """
    sources = Sources(language)
    placed = expand_includes(main, main_dir, main_path, sources)
    machine = _choose_machine(placed, sources)
    routines = collect_routines(placed, machine.language.routines, sources)
    placed = routines.placed
    definitions = _collect_definitions(placed, sources)
    evaluator = Evaluator(machine, definitions, sources)
    width = _choose_bits(placed, bits, evaluator, sources)
    layout = _Layout(machine, evaluator, sources, routines).run(placed)
    if not layout.instructions:
        raise sources.error(ErrorCode.EMPTY_PROGRAM, "the program has no instructions", Span(main.name, 1, 1))
    evaluator.set_labels(layout.label_values())
    linked = _linked_sizes(placed, evaluator, sources)
    return machine.language.linker(machine, width, layout, evaluator, sources, linked).run(main.name)


def _linked_sizes(placed: Sequence[Placed], evaluator: Evaluator, sources: Sources) -> list[tuple[Any, Span]] | None:
    """The sizes a ``.linked`` directive gives (None: the program is linked as usual)."""
    for item in placed:
        if isinstance(item.statement, ast.LinkedDirective):
            return [(evaluator.evaluate(expr).number, expr.span) for expr in item.statement.sizes]
    return None


# Machine ------------------------------------------------------------------------------------------


def _choose_machine(placed: Sequence[Placed], sources: Sources) -> Machine:
    """The machine every ``.machine`` names (the language's default if none does)."""
    names = sources.language.names
    chosen: ast.MachineDirective | None = None
    for item in placed:
        directive = item.statement
        if not isinstance(directive, ast.MachineDirective):
            continue
        if directive.machine not in names:
            hint = did_you_mean(directive.machine, names)
            raise sources.error(
                ErrorCode.UNKNOWN_MACHINE,
                f"unknown machine '{directive.machine}'{hint}; "
                f"the machines are {', '.join(names[:-1])} and {names[-1]}",
                directive.machine_span,
            )
        if chosen is not None and directive.machine != chosen.machine:
            raise sources.error(
                ErrorCode.MACHINE_MISMATCH,
                f"'.machine {directive.machine}' disagrees with '.machine {chosen.machine}' at {chosen.span}",
                directive.machine_span,
            )
        chosen = chosen or directive
    return sources.language.named(chosen.machine) if chosen else sources.language.default



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
class PendingCell:
    """A user cell before its value is computed: no expressions means zeros."""

    address: int
    shape: Shape
    values: tuple[ast.Expr, ...]
    span: Span


@dataclass(frozen=True)
class PendingInstruction:
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

    machine: Machine
    evaluator: Evaluator
    sources: Sources
    routines: Routines
    cells: list[PendingCell] = field(default_factory=list)
    instructions: list[PendingInstruction] = field(default_factory=list)
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
        shaped = isinstance(directive, (ast.VectorDirective, ast.MatrixDirective))
        if shaped and not self.machine.language.shaped_cells:
            name = ".vector" if isinstance(directive, ast.VectorDirective) else ".matrix"
            owner = self.sources.language.owner_of("shaped_cells")
            raise self.sources.error(
                ErrorCode.NOT_IN_MACHINE, f"'{name}' is {owner.title} only (add '.machine {owner.name}')",
                directive.span,
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

    def _cells_of(self, directive: ast.DataDirective) -> list[PendingCell]:
        at, span = len(self.cells), directive.span
        if isinstance(directive, ast.WordDirective):
            return [
                PendingCell(at + i, (), (value,), value.span) for i, value in enumerate(directive.values)
            ]
        if isinstance(directive, ast.ZeroDirective):
            count = self._size(directive.count, "'.zero' count", 0, MAX_CELLS)
            return [PendingCell(at + i, (), (), span) for i in range(count)]
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
        return [PendingCell(at, shape, directive.values, span)]

    def _check_value_count(self, directive: ast.VectorDirective | ast.MatrixDirective, shape: Shape) -> None:
        needed = math.prod(shape)
        given = len(directive.values)
        if given not in (0, needed):
            where = directive.values[needed].span if given > needed else directive.span
            raise self.sources.error(
                ErrorCode.OPERAND_COUNT,
                f"a {shape_words(shape)} needs {needed} values (or none for zeros), got {given}",
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
        self.instructions.append(PendingInstruction(self.code_size, statement, op, size))
        self.code_size += size


def shape_words(shape: Shape) -> str:
    if shape == ():
        return "scalar"
    if len(shape) == 1:
        return f"vector of {shape[0]}"
    return "x".join(str(n) for n in shape) + " matrix"


# Mnemonics and operand counts ---------------------------------------------------------------------

def _classify(statement: ast.Instruction, machine: Machine, sources: Sources) -> str:
    """What the instruction is in this machine's dialect; checks the mnemonic and the operand count.

    A function used as a mnemonic is the op ``apply``: ``f dst, a[, b]``."""
    mnemonic, dialect = statement.mnemonic, machine.language
    if mnemonic in dialect.forms:
        least, most, form = dialect.forms[mnemonic]
        op = mnemonic
    elif mnemonic in dialect.functions:
        arity = dialect.functions[mnemonic].arity
        least = most = arity + 1
        op, form = "apply", f"{mnemonic} {'dst, a, b' if arity == 2 else 'dst, a'}"
    else:
        _reject_mnemonic(statement, machine, sources)
    _check_operand_count(statement, least, most, form, sources)
    if op in dialect.function_operands:
        _check_function_operand(statement.operands[dialect.function_operands[op]], dialect.functions, sources)
    return op


def _reject_mnemonic(statement: ast.Instruction, machine: Machine, sources: Sources) -> NoReturn:
    """UNKNOWN_FUNCTION (a dialect with functions) or UNKNOWN_INSTRUCTION; NOT_IN_MACHINE when
    another machine of the language has the mnemonic."""
    mnemonic, dialect = statement.mnemonic, machine.language
    if not dialect.functions:
        owner = sources.language.machine_knowing(mnemonic)
        if owner is not None:
            raise sources.error(
                ErrorCode.NOT_IN_MACHINE,
                f"'{mnemonic}' is a {owner.title} instruction (add '.machine {owner.name}')",
                statement.mnemonic_span,
            )
    known = [*dialect.forms, *dialect.functions]
    hint = did_you_mean(mnemonic, known) or _label_hint(statement, sources.language)
    if dialect.functions:
        raise sources.error(
            ErrorCode.UNKNOWN_FUNCTION, f"unknown instruction or function '{mnemonic}'{hint}", statement.mnemonic_span
        )
    raise sources.error(
        ErrorCode.UNKNOWN_INSTRUCTION, f"unknown instruction '{mnemonic}'{hint}", statement.mnemonic_span
    )


def _label_hint(statement: ast.Instruction, language: Language) -> str:
    """A hint for ``loop halt``: a label written without its colon."""
    first = statement.operands[0] if statement.operands else None
    if isinstance(first, ast.Name) and language.machine_knowing(first.name) is not None:
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


def _check_function_operand(operand: ast.Expr, functions: Mapping[str, Any], sources: Sources) -> None:
    if isinstance(operand, ast.Name) and operand.name in functions:
        return
    if isinstance(operand, ast.Name):
        hint = did_you_mean(operand.name, functions)
        message = f"unknown function '{operand.name}'{hint}"
    else:
        message = "expected a function name (add, sub, mul, ...) as the second operand of 'fleq'"
    raise sources.error(ErrorCode.UNKNOWN_FUNCTION, message, operand.span)


# Pass two: values, instructions, symbols ----------------------------------------------------------


class _Defined(dict):
    """The hidden cells a ``.linked`` program defines itself; sugar that needs another is an error."""

    def __init__(self, cells: dict[str, int], sources: Sources) -> None:
        super().__init__(cells)
        self.sources = sources

    def __missing__(self, name: str) -> int:
        raise self.sources.error(
            ErrorCode.BAD_DIRECTIVE,
            f"this '.linked' program uses '{name}' (through halt, jmp, call or a flagless instruction) "
            "but does not define it: write every instruction in the machine's own form",
            None,
        )


class Linker:
    """Pass two: values, hidden cells, encoded instructions and symbols.

    The shared part: addresses and code indices checked, hidden cells placed after the user's,
    the implicit halt appended, symbols made. A machine's dialect subclasses it with the hooks
    :meth:`hidden_needed`, :meth:`cell`, :meth:`hidden_cell`, :meth:`instructions` and :meth:`halt`.
    """

    # what the numbers of ``.linked`` give, in order: the card's columns (a machine adds its own)
    size_names: tuple[str, ...] = ("columns",)

    def __init__(self, machine: Machine, bits: int, layout: _Layout, evaluator: Evaluator, sources: Sources,
                 linked: list[tuple[Any, Span]] | None = None) -> None:
        self.machine, self.bits, self.layout = machine, bits, layout
        self.evaluator, self.sources = evaluator, sources
        self.linked = linked is not None  # a linked program written out: nothing added, hidden cells defined
        self.user_cells = len(layout.cells)
        self.code_size = layout.code_size + (0 if self.linked else 1)  # the implicit halt
        self.hidden_values: dict[str, float] = dict(HIDDEN_VALUES)
        if self.linked:
            self.hidden = _Defined({name: place.address for name, place in layout.labels.items()
                                    if name.startswith("__") and place.kind == "data"}, sources)
        else:
            self.hidden = self._hidden_addresses()
        self.card_size = self._card_size(linked or [])

    def _card_size(self, sizes: list[tuple[Any, Span]]) -> dict[str, int]:
        if len(sizes) > len(self.size_names):
            raise self.sources.error(ErrorCode.BAD_DIRECTIVE, f"'.linked' takes at most {len(self.size_names)} "
                                     f"value(s) on the {self.machine.title} machine: {', '.join(self.size_names)}",
                                     sizes[len(self.size_names)][1])
        for number, span in sizes:
            if not isinstance(number, int) or number < 1:
                raise self.sources.error(ErrorCode.BAD_DIRECTIVE, "'.linked' sizes are whole numbers >= 1", span)
        return {name: number for name, (number, _) in zip(self.size_names, sizes)}

    def run(self, source_name: str) -> LinkedProgram:
        cells = [self.cell(pending) for pending in self.layout.cells]
        if not self.linked:
            cells += [self.hidden_cell(name, address) for name, address in self.hidden.items()]
        instructions: list[Instruction] = []
        for pending in self.layout.instructions:
            instructions += self.instructions(pending)
        if not self.linked:
            instructions.append(self.halt(len(instructions), None))
        return LinkedProgram(
            machine=self.machine.name,
            bits=self.bits,
            cells=tuple(cells),
            instructions=tuple(instructions),
            symbols=self._symbols(),
            source_name=source_name,
            card_size=self.card_size,
        )

    # the machine's hooks

    def hidden_needed(self) -> tuple[list[str], dict[str, float]]:
        """The names of HIDDEN_CELLS the program needs, and further hidden cells with their values."""
        raise NotImplementedError

    def cell(self, pending: PendingCell) -> Cell:
        """A user cell with its value."""
        raise NotImplementedError

    def hidden_cell(self, name: str, address: int) -> Cell:
        raise NotImplementedError

    def instructions(self, pending: PendingInstruction) -> list[Instruction]:
        """The instructions ``pending`` encodes to (a ``ret``: its dispatch)."""
        raise NotImplementedError

    def halt(self, index: int, span: Span | None) -> Instruction:
        """The instruction that jumps to itself and changes nothing."""
        raise NotImplementedError

    # shared

    def _hidden_addresses(self) -> dict[str, int]:
        """Addresses of the hidden cells some instruction needs, after the user's cells."""
        needed, extra = self.hidden_needed()
        self.hidden_values |= extra
        names = [name for name in HIDDEN_CELLS if name in needed] + list(extra)
        return {name: self.user_cells + i for i, name in enumerate(names)}

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


    def data(self, expr: ast.Expr, role: str) -> int:
        return self._address(expr, "data", role)

    def code(self, expr: ast.Expr, role: str) -> int:
        return self._address(expr, "code", role)

    def next_or(self, pending: PendingInstruction, position: int, role: str) -> int:
        operands = pending.statement.operands
        return self.code(operands[position], role) if len(operands) > position else pending.index + 1

    def shape(self, address: int) -> Shape:
        return self.layout.cells[address].shape if address < self.user_cells else ()

    # symbols

    def _symbols(self) -> dict[str, Symbol]:
        symbols: dict[str, Symbol] = {}
        for name, place in self.layout.labels.items():
            shape = (
                self.shape(place.address) if place.kind == "data" and place.address < self.user_cells else ()
            )
            symbols[name] = Symbol(
                name, place.kind, place.address, shape, place.label.span, self.layout.lengths[name]
            )
        for name, address in self.hidden.items():
            if not self.linked:
                symbols[name] = Symbol(name, "data", address, (), None, 1)
        return symbols
