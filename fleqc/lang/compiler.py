"""Flow's compiler: the syntax tree -> readable FLEQ assembly, with a source map.

Two passes per expression, both without recursion (post-order over the nodes): the first infers
and checks every node's shape (fleqc.lang.shapes), the second emits instructions
(fleqc.lang.expressions). Here: the program's names and cells, its statements (one by one;
blocks nest at most ``syntax.MAX_BLOCK_DEPTH`` deep) and functions, and the assembly's text. The
reference page is docs/flow.md.

The generated program: every variable is a cell named after it (a function's ``x`` is the cell
``_fn_f_x``, shown as ``f__x``, a name the assembler reads back, as ``fleqc disasm`` writes it);
temporaries ``_t...`` and constants ``_k...`` are hidden after linking.
Each line of the assembly remembers the user's span it was generated for (:class:`Translation`),
and :func:`fleqc.lang.attach_source_map` moves every instruction's span there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from fleqc.errors import ErrorCode, FleqError, Span
from fleqc.lang import syntax as ast
from fleqc.lang.expressions import ExpressionCode
from fleqc.lang.shapes import BUILTINS, KEYWORDS, TUPLE_CALLS, ShapeRules, describe
from fleqc.lang.stdlib import ROUTINES, Shape, stdlib_labels

MAX_CALL_DEPTH = 100  # functions calling functions (each compiled where it is first called)
GENERATED_SUFFIX = ".fleq"  # the generated program's name: the user's file + this

def _number(value: float) -> str:
    return repr(float(value))


@dataclass
class Var:
    cell: str
    shape: Shape
    span: Span


@dataclass
class Instance:
    """One compiled instance of a user function (one per tuple of argument shapes)."""

    label: str
    params: list[Var]
    ret: Optional[Var] = None
    defining: bool = True
    number: int = 1  # the how-manieth instance of its function


@dataclass
class Scope:
    function: Optional[str]  # None: the program's top level
    vars: dict[str, Var] = field(default_factory=dict)
    assigned: set = field(default_factory=set)  # names assigned in a function's body (its locals)
    free: dict = field(default_factory=dict)  # shape -> temps free for reuse
    used: list = field(default_factory=list)  # (shape, cell) taken in the current statement
    instance: Optional[Instance] = None
    exit_label: Optional[str] = None
    loops: list = field(default_factory=list)  # (continue label, break label)
    depth: int = 0  # blocks (if/while/for) around the current statement


@dataclass
class Translation:
    """A compiled Flow program: the assembly, the user's span of each of its lines, and how each
    generated data name is shown (None: hidden)."""

    file: str
    assembly: str
    line_spans: dict[int, Span]  # generated line (1-based) -> the user's span
    display: dict[str, Optional[str]]  # generated data name -> the name shown (None: hidden)
    spans: dict[str, Span]  # generated data name of a variable -> where it was first assigned
    lines: list[str]
    parts: list[str]  # the stdlib parts it includes

    @property
    def generated_name(self) -> str:
        return self.file + GENERATED_SUFFIX


class Compiler(ShapeRules, ExpressionCode):
    """One Flow program: its names, cells, statements and functions (expressions and their
    shapes: :class:`ShapeRules`, :class:`ExpressionCode`)."""

    def __init__(self, module: ast.Module, initial_values: bool = True) -> None:
        self.module = module
        self.initial_values = initial_values  # a top-level literal is a cell's initial value
        self.shapes: dict[str, Shape] = {cell: shape for r in ROUTINES.values()
                                         for cell, shape in (*r.params, *r.results)}
        self.volatile_cells = {cell for r in ROUTINES.values() for cell, _ in (*r.results, *r.params)}
        self.file = module.file
        self.lines = module.lines
        self.reserved = stdlib_labels()
        self.top = self.scope = Scope(None)
        self.taken: set[str] = set()
        self.data: list[tuple[str, Optional[Span]]] = []
        self.main: list[tuple[str, Optional[Span]]] = []
        self.routines: list[tuple[str, Optional[Span]]] = []
        self.routine_blocks: list[list] = []  # one per function copy, in the order they were started
        self.code = self.main
        self.parts: list[str] = []
        self.constants: dict[tuple, str] = {}
        self.display: dict[str, Optional[str]] = {}
        self.var_spans: dict[str, Span] = {}
        self.functions: dict[str, ast.Def] = {}
        self.instances: dict[tuple, Instance] = {}
        self.instantiating: list[str] = []
        self.span: Optional[Span] = None  # the statement being compiled
        self.flag: Optional[str] = None
        self.counter = 0

    # -- names, cells, errors -----------------------------------------------------------------

    def error(self, code: ErrorCode, message: str, span: Span) -> FleqError:
        line = self.lines[span.line - 1] if 0 < span.line <= len(self.lines) else None
        return FleqError(code, message, span, line)

    def fresh(self, base: str) -> str:
        name, k = base, 1
        while name in self.taken or name in self.reserved:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name

    def label(self) -> str:
        self.counter += 1
        return self.fresh(f"_L{self.counter}")

    def cell(self, base: str, shape: Shape, value=None, display: Optional[str] = None, span=None) -> str:
        name = self.fresh(base)
        self.shapes[name] = shape
        self.display[name] = display
        self.data.append((f"{name}: {self._directive(shape, value)}", span))
        return name

    def _directive(self, shape: Shape, value) -> str:
        if shape == ():
            return f".word {_number(0.0 if value is None else value)}"
        values = "" if value is None or not np.any(value) else "  " + " ".join(_number(v) for v in np.ravel(value))
        if len(shape) == 1:
            return f".vector {shape[0]}{values}"
        return f".matrix {shape[0]} {shape[1]}{values}"

    def constant(self, value, shape: Shape = ()) -> str:
        array = np.broadcast_to(np.asarray(value, dtype=np.float64), shape)
        key = (shape, tuple(repr(float(v)) for v in np.ravel(array)))
        if key not in self.constants:
            self.constants[key] = self.cell("_k", shape, array)
        return self.constants[key]

    def temp(self, shape: Shape) -> str:
        free = self.scope.free.setdefault(shape, [])
        name = free.pop() if free else self.cell("_t", shape)
        self.scope.used.append((shape, name))
        return name

    def free_temp(self, name: str, keep: str) -> None:
        for k, (shape, used) in enumerate(self.scope.used):
            if used == name and used != keep:
                del self.scope.used[k]
                self.scope.free.setdefault(shape, []).append(name)
                return

    def release(self) -> None:
        for shape, name in self.scope.used:
            self.scope.free.setdefault(shape, []).append(name)
        self.scope.used = []

    def flag_cell(self) -> str:
        if self.flag is None:
            self.flag = self.cell("_f", ())
        return self.flag

    def emit(self, text: str, span: Optional[Span] = None) -> None:
        self.code.append((f"        {text}", span or self.span))

    def place(self, label: str) -> None:
        self.code.append((f"{label}:", self.span))

    def include(self, routine: str) -> None:
        part = ROUTINES[routine].part
        if part not in self.parts:
            self.parts.append(part)

    # -- variables ----------------------------------------------------------------------------

    def lookup(self, name: str, span: Span) -> Var:
        var = self.scope.vars.get(name)
        if var is None and self.scope.function is not None and name not in self.scope.assigned:
            var = self.globals.get(name)
        if var is None:
            if name in self.functions or name in BUILTINS:
                raise self.error(ErrorCode.WRONG_KIND, f"'{name}' is a function: call it, {name}(...)", span)
            raise self.error(ErrorCode.UNDEFINED_NAME, f"'{name}' is not defined here (a variable is defined by "
                             "its first assignment, above its first use)", span)
        return var

    @property
    def globals(self) -> dict[str, Var]:
        return self.top.vars

    def check_name(self, name: str, span: Span) -> None:
        if name in BUILTINS or name in self.functions or name == "range":
            raise self.error(ErrorCode.RESERVED_NAME, f"'{name}' is a function's name; a variable needs another",
                             span)
        if name.startswith("_"):
            raise self.error(ErrorCode.RESERVED_NAME, f"'{name}': names starting with '_' belong to the compiler",
                             span)
        if self.scope.function is None and name in self.reserved:
            raise self.error(ErrorCode.RESERVED_NAME, f"'{name}' is a cell of the standard library "
                             f"({self.reserved[name]}); choose another name", span)

    def define(self, name: str, shape: Shape, span: Span, value=None) -> Var:
        """The variable ``name`` of this scope, created with ``shape`` on its first assignment."""
        var = self.scope.vars.get(name)
        if var is not None:
            if var.shape != shape:
                raise self.error(ErrorCode.SHAPE_MISMATCH, f"'{name}' is {describe(var.shape)} (since line "
                                 f"{var.span.line}); it cannot hold {describe(shape)}", span)
            return var
        self.check_name(name, span)
        if self.scope.function is None:
            cell = self.cell(name, shape, value, display=name, span=span)
            if cell != name:  # taken by a generated name: cannot happen (those start with '_')
                raise self.error(ErrorCode.RESERVED_NAME, f"'{name}' cannot be a variable's name", span)
        else:
            shown = self.scope.function if self.scope.instance.number == 1 else \
                f"{self.scope.function}_{self.scope.instance.number}"
            cell = self.cell(f"_{self.scope.instance.label.lstrip('_')}_{name}", shape, value,
                             display=f"{shown}__{name}", span=span)
        var = Var(cell, shape, span)
        self.scope.vars[name] = var
        self.var_spans[cell] = span
        return var

    # -- the program --------------------------------------------------------------------------

    def compile(self) -> Translation:
        body = self.module.body
        self.statements(body)
        self.span = self._last_span(body)
        self.emit("halt")
        return self.render()

    def _last_span(self, body: list) -> Span:
        if body:
            return body[-1].span
        return Span(self.file, 1, 1)

    @staticmethod
    def _peephole(code: list) -> list:
        """Drop a ``jmp L`` whose next lines are labels, one of them L (it would jump to itself's
        successor)."""
        out = []
        for k, (text, span) in enumerate(code):
            words = text.split()
            if len(words) == 2 and words[0] == "jmp":
                j = k + 1
                labels = set()
                while j < len(code) and code[j][0].endswith(":") and not code[j][0].startswith(" "):
                    labels.add(code[j][0][:-1])
                    j += 1
                if words[1] in labels:
                    continue
            out.append((text, span))
        return out

    def _redundant_moves(self, code: list) -> list:
        """Drop ``mov a, b`` where a already equals b: a ``mov`` between them (either way, cells of
        one shape) earlier in the same straight run of code, with no write to either since. A label
        or a call ends what is known."""
        out, known = [], set()
        for text, span in code:
            line = text.split(";")[0].strip()
            if not text.startswith(" "):
                known.clear()
            elif line:
                op, _, rest = line.partition(" ")
                operands = [x.strip() for x in rest.split(",")]
                if op == "mov" and len(operands) == 2:
                    a, b = operands
                    if a == b or frozenset((a, b)) in known:
                        continue
                    known = {pair for pair in known if a not in pair}
                    if self.shapes.get(a) is not None and self.shapes.get(a) == self.shapes.get(b):
                        known.add(frozenset((a, b)))
                elif op in ("call", "ret", "halt"):
                    known.clear()
                elif op not in ("jmp", "jle"):
                    known = {pair for pair in known if operands[0] not in pair}
            out.append((text, span))
        return out

    def render(self) -> Translation:
        self.main[:] = self._peephole(self._redundant_moves(self.main))
        self.routines[:] = [line for block in self.routine_blocks for line in block]
        self.routines[:] = self._peephole(self._redundant_moves(self.routines))
        out: list[tuple[str, Optional[Span]]] = [
            (f"; generated by fleqc from {self.file} (Flow: docs/flow.md)", None), (".machine fleq", None),
            (".data", None), *self.data, (".text", None), *self.main]
        if self.routines:
            out += [("", None), *self.routines]
        if self.parts:
            out += [("", None), *((f'.include "{part}"', None) for part in self.parts)]
        text_lines, spans, last = [], {}, None
        for number, (text, span) in enumerate(out, 1):
            if span is not None and not text.startswith("."):
                if span.line != last and text.startswith("        "):
                    source = self.lines[span.line - 1].strip() if 0 < span.line <= len(self.lines) else ""
                    if source:
                        text = f"{text:<40} ; {span.line}: {source}"
                    last = span.line
                spans[number] = span
            text_lines.append(text)
        return Translation(self.file, "\n".join(text_lines) + "\n", spans, self.display, self.var_spans,
                           self.lines, list(self.parts))

    # -- statements ---------------------------------------------------------------------------

    def statements(self, body: list) -> None:
        for statement in body:
            self.span = statement.span
            self.statement(statement)
            self.release()

    def statement(self, s) -> None:
        if isinstance(s, ast.Assign):
            self.assign(s)
        elif isinstance(s, ast.AugAssign):
            value = ast.Bin(s.op, ast.Name(s.target.name, s.target.span), s.value, s.target.span, s.at)
            self.assign(ast.Assign([s.target], value, s.span))
        elif isinstance(s, ast.ExprStmt):
            if not isinstance(s.value, ast.Call) or s.value.function not in self.functions:
                raise self.error(ErrorCode.UNEXPECTED_TOKEN, "an expression on its own does nothing: assign it "
                                 "(x = ...) or call a function of your own", s.value.span)
            self.call_function(s.value, want_value=False)
        elif isinstance(s, ast.If):
            self.if_statement(s)
        elif isinstance(s, ast.While):
            self.while_statement(s)
        elif isinstance(s, ast.For):
            self.for_statement(s)
        elif isinstance(s, ast.Def):
            self.define_function(s)
        elif isinstance(s, ast.Return):
            self.return_statement(s)
        elif isinstance(s, ast.Simple):
            if s.word == "pass":
                return
            if not self.scope.loops:
                raise self.error(ErrorCode.UNEXPECTED_TOKEN, f"'{s.word}' outside a loop", s.span)
            continue_label, break_label = self.scope.loops[-1]
            self.emit(f"jmp {continue_label if s.word == 'continue' else break_label}")
        else:  # pragma: no cover - the parser makes no other statement
            raise AssertionError(s)

    def _in_block(self) -> bool:
        """Inside a function or a block: an assignment there runs when (and as often as) its block does.
        At the top level, a variable's first assignment runs before anything can read the variable
        (a name is defined by its first assignment, above its first use): a literal there is the
        cell's initial value, and costs no instruction."""
        return self.scope.function is not None or self.scope.depth > 0

    def assign(self, s: ast.Assign) -> None:
        if len(s.targets) > 1 or (isinstance(s.value, ast.Call) and s.value.function in TUPLE_CALLS):
            self.tuple_assign(s)
            return
        target = s.targets[0]
        if target.indices is not None:
            self.index_assign(target, s.value)
            return
        if self.scope.function is not None:
            self.scope.assigned.add(target.name)
        shapes, values = self.check(s.value)
        shape = shapes[id(s.value)]
        literal = self.literal(s.value)
        if literal is not None and self.initial_values and not self._in_block() and target.name not in self.scope.vars:
            self.define(target.name, shape, target.span, literal)  # an initial value: no instruction
            return
        existing = self.scope.vars.get(target.name)
        if existing is None:
            var = self.define(target.name, shape, target.span)
        else:
            var = self.define(target.name, shape, s.value.span)
        self.expression(s.value, shapes, values, dest=var.cell)


    def tuple_assign(self, s: ast.Assign) -> None:
        call = s.value
        if not isinstance(call, ast.Call) or call.function not in TUPLE_CALLS:
            raise self.error(ErrorCode.OPERAND_COUNT, "several names take the values of a call that returns "
                             f"several ({', '.join(TUPLE_CALLS)})", s.value.span)
        count = TUPLE_CALLS[call.function]
        if len(s.targets) != count:
            raise self.error(ErrorCode.OPERAND_COUNT, f"{call.function} returns {count} values; "
                             f"{len(s.targets)} name(s) take them", s.targets[0].span)
        results = self.library_call(call, tuple_values=True)
        for target, (cell, shape) in zip(s.targets, results):
            if target.indices is not None:
                raise self.error(ErrorCode.UNEXPECTED_TOKEN, "v[i] cannot take one of several values", target.span)
            if self.scope.function is not None:
                self.scope.assigned.add(target.name)
            var = self.define(target.name, shape, target.span)
            self.emit(f"mov {var.cell}, {cell}")

    def index_assign(self, target: ast.Target, value) -> None:
        var = self.lookup(target.name, target.span)
        if var.shape == ():
            raise self.error(ErrorCode.SHAPE_MISMATCH, f"'{target.name}' is a scalar: it has no entries", target.span)
        index = self.constant_indices(target.indices, var.shape, target.span)
        if len(index) != len(var.shape):
            raise self.error(ErrorCode.SHAPE_MISMATCH, f"v[i] = ... sets one entry: give {len(var.shape)} "
                             f"index(es) of {describe(var.shape)}", target.span)
        shapes, values = self.check(value)
        if shapes[id(value)] != ():
            raise self.error(ErrorCode.SHAPE_MISMATCH, f"an entry is a scalar, not {describe(shapes[id(value)])}",
                             value.span)
        cell = self.expression(value, shapes, values)
        unit = np.zeros(var.shape)
        unit[index] = 1.0
        keep = self.temp(var.shape)
        put = self.temp(var.shape)
        self.emit(f"mul {keep}, {var.cell}, {self.constant(1.0 - unit, var.shape)}")
        self.emit(f"mul {put}, {cell}, {self.constant(unit, var.shape)}")
        self.emit(f"add {var.cell}, {keep}, {put}")

    def if_statement(self, s: ast.If) -> None:
        end = self.label()
        clauses = list(s.tests)
        for k, (test, body) in enumerate(clauses):
            last = k == len(clauses) - 1 and s.orelse is None
            following = end if last else self.label()
            self.span = test.span
            self.branch(test, following, False)
            self.block(body)
            if not last:
                if not self._ends_in_jump(body):
                    self.emit("jmp " + end)
                self.place(following)
        if s.orelse is not None:
            self.block(s.orelse)
        self.place(end)

    def _ends_in_jump(self, body: list) -> bool:
        return bool(body) and isinstance(body[-1], (ast.Return, ast.Simple)) and \
            getattr(body[-1], "word", "return") in ("return", "break", "continue")

    def block(self, body: list) -> None:
        self.scope.depth += 1
        try:
            self.statements(body)
        finally:
            self.scope.depth -= 1

    def while_statement(self, s: ast.While) -> None:
        top, test, end = self.label(), self.label(), self.label()
        self.span = s.span
        self.emit("jmp " + test)
        self.place(top)
        self.scope.loops.append((test, end))
        self.block(s.body)
        self.scope.loops.pop()
        self.span = s.test.span
        self.place(test)
        self.branch(s.test, top, True)
        self.place(end)

    def for_statement(self, s: ast.For) -> None:
        """``for i in range(a, b)``: a counter c = a - b steps up by one per round, the loop goes
        on while c <= 0 after the step (one instruction: c += 1 and its test): b - a rounds (a range
        known not to be empty skips the first test: c starts at a - b + 1); i (unless it is ``_``) is a - 1 at
        the start and steps up at the top of each round, so it ends at b - 1, as in Python."""
        if not 1 <= len(s.args) <= 2:
            raise self.error(ErrorCode.OPERAND_COUNT, "range takes 1 or 2 arguments: range(stop), range(start, "
                             "stop)", s.span)
        self.span = s.span
        bounds = []
        for arg in s.args:
            shapes, values = self.check(arg)
            if shapes[id(arg)] != ():
                raise self.error(ErrorCode.SHAPE_MISMATCH, f"range's bounds are scalars, not "
                                 f"{describe(shapes[id(arg)])}", arg.span)
            known = values.get(id(arg))
            if known is not None and known != int(known):
                raise self.error(ErrorCode.DOMAIN_ERROR, f"range's bounds are whole numbers (got {known!r})", arg.span)
            bounds.append((arg, shapes, values, known))
        if len(bounds) == 1:
            bounds.insert(0, (None, None, {}, 0.0))
        (start_node, start_shapes, start_values, start), (stop_node, stop_shapes, stop_values, stop) = bounds
        known = start is not None and stop is not None
        skip_test = known and start < stop  # a range known not to be empty: no test before the first round
        first = (start - stop + 1.0) if skip_test else (start - stop if known else None)  # the counter's start
        once = known and not self._in_block()  # runs once, first: the initial values are the cells' own
        var = None
        if s.var != "_":
            if self.scope.function is not None:
                self.scope.assigned.add(s.var)
            new = s.var not in self.scope.vars
            var = self.define(s.var, (), s.var_span, start - 1.0 if once and new else None)
            if once and not new:
                once = False
        one = self.constant(1.0)
        if once:
            counter = self.cell("_c", (), first)
        elif known:
            counter = self.cell("_c", ())  # its own cell: loops nest
            self.emit(f"mov {counter}, {self.constant(first)}")
            if var is not None:
                self.emit(f"mov {var.cell}, {self.constant(start - 1.0)}")
        else:
            counter = self.cell("_c", ())
            start_cell = self.constant(0.0) if start_node is None else \
                self.expression(start_node, start_shapes, start_values, stable=True)
            stop_cell = self.expression(stop_node, stop_shapes, stop_values)
            self.emit(f"sub {counter}, {start_cell}, {stop_cell}")
            if var is not None:
                self.emit(f"sub {var.cell}, {start_cell}, {one}")
        self.release()
        top, test, end = self.label(), self.label(), self.label()
        if not skip_test:
            self.emit("jmp " + test)
        self.place(top)
        if var is not None:
            self.emit(f"add {var.cell}, {var.cell}, {one}")
        self.scope.loops.append((test, end))
        self.block(s.body)
        self.scope.loops.pop()
        self.span = s.span
        self.place(test)
        self.emit(f"fleq {counter}, add, {counter}, {one}, {counter}, {top}")
        self.place(end)

    # -- functions ----------------------------------------------------------------------------

    def define_function(self, s: ast.Def) -> None:
        if self.scope.function is not None:
            raise self.error(ErrorCode.UNEXPECTED_TOKEN, "functions are defined at the top level, not inside "
                             "another function", s.span)
        if s.name in BUILTINS or s.name in KEYWORDS:
            raise self.error(ErrorCode.RESERVED_NAME, f"'{s.name}' is a built-in function", s.name_span)
        if s.name in self.functions or s.name in self.globals:
            raise self.error(ErrorCode.DUPLICATE_LABEL, f"'{s.name}' is already defined", s.name_span)
        if s.name.startswith("_"):
            raise self.error(ErrorCode.RESERVED_NAME, f"'{s.name}': names starting with '_' belong to the "
                             "compiler", s.name_span)
        seen = set()
        for name, span in s.params:
            if name in seen:
                raise self.error(ErrorCode.DUPLICATE_LABEL, f"parameter '{name}' appears twice", span)
            seen.add(name)
        self.functions[s.name] = s

    def call_function(self, call: ast.Call, want_value: bool = True) -> Instance:
        """Compile (once per argument shapes) and call the user's function; its result is in
        instance.ret."""
        definition = self.functions[call.function]
        if len(call.args) != len(definition.params):
            raise self.error(ErrorCode.OPERAND_COUNT, f"{call.function} takes {len(definition.params)} "
                             f"argument(s), got {len(call.args)}", call.span)
        checked = [self.check(arg) for arg in call.args]
        shapes = tuple(c[0][id(a)] for c, a in zip(checked, call.args))
        instance = self.instance(call, definition, shapes)
        if want_value and instance.ret is None:
            raise self.error(ErrorCode.WRONG_KIND, f"{call.function} returns no value", call.span)
        cells = [self.expression(a, c[0], c[1], stable=k < len(call.args) - 1)
                 for k, (a, c) in enumerate(zip(call.args, checked))]
        for param, cell in zip(instance.params, cells):
            if param.cell != cell:
                self.emit(f"mov {param.cell}, {cell}")
        self.emit(f"call {instance.label}", call.span)
        return instance

    def instance(self, call: ast.Call, definition: ast.Def, shapes: tuple) -> Instance:
        key = (definition.name, shapes)
        if definition.name in self.instantiating:
            chain = " -> ".join([*self.instantiating[self.instantiating.index(definition.name):], definition.name])
            raise self.error(ErrorCode.RECURSION, f"recursion ({chain}): the FLEQ machine has no stack, so a "
                             "function cannot call itself, directly or through others", call.span)
        if len(self.instantiating) >= MAX_CALL_DEPTH:
            raise self.error(ErrorCode.RECURSION, f"functions call each other more than {MAX_CALL_DEPTH} deep",
                             call.span)
        found = self.instances.get(key)
        if found is not None:
            if found.defining:  # pragma: no cover - caught above
                raise self.error(ErrorCode.RECURSION, "recursion", call.span)
            return found
        label = self.fresh(f"_fn_{definition.name}")
        number = 1 + sum(1 for (name, _) in self.instances if name == definition.name)
        instance = Instance(label, [], number=number)
        self.instances[key] = instance
        saved = (self.scope, self.code, self.span)
        self.scope = Scope(definition.name, instance=instance, exit_label=None)
        self.scope.assigned = {definition.params[i][0] for i in range(len(shapes))} | self._assigned(definition.body)
        self.code = []
        self.routine_blocks.append(self.code)
        self.instantiating.append(definition.name)
        try:
            self.span = definition.span
            for (name, span), shape in zip(definition.params, shapes):
                instance.params.append(self.define(name, shape, span))
            self.scope.exit_label = self.fresh(f"{label}_end")
            self.code.append((f".routine {label}", definition.span))
            self.statements(definition.body)
            self.span = self._last_span(definition.body)
            self.place(self.scope.exit_label)
            self.emit("ret")
            self.code.append((".endroutine", definition.span))
            self.code.append(("", None))
        finally:
            self.instantiating.pop()
            self.scope, self.code, self.span = saved
        instance.defining = False
        return instance

    def _assigned(self, body: list) -> set:
        names, stack = set(), list(body)
        while stack:
            node = stack.pop()
            if isinstance(node, ast.Assign):
                names.update(t.name for t in node.targets if t.indices is None)
            elif isinstance(node, ast.AugAssign):
                names.add(node.target.name)
            elif isinstance(node, ast.For):
                names.add(node.var)
            if isinstance(node, ast.If):
                for _, b in node.tests:
                    stack.extend(b)
                stack.extend(node.orelse or [])
            elif isinstance(node, (ast.While, ast.For)):
                stack.extend(node.body)
        return names

    def return_statement(self, s: ast.Return) -> None:
        if self.scope.function is None:
            raise self.error(ErrorCode.UNEXPECTED_TOKEN, "'return' outside a function (the program ends at its "
                             "last line)", s.span)
        instance = self.scope.instance
        if s.value is not None:
            shapes, values = self.check(s.value)
            shape = shapes[id(s.value)]
            if instance.ret is None:
                instance.ret = Var(self.cell(f"{instance.label}_ret", shape,
                                             display=None), shape, s.span)
                self.volatile_cells.add(instance.ret.cell)
            elif instance.ret.shape != shape:
                raise self.error(ErrorCode.SHAPE_MISMATCH, f"{self.scope.function} returned "
                                 f"{describe(instance.ret.shape)} (line {instance.ret.span.line}); here "
                                 f"{describe(shape)}", s.value.span)
            self.expression(s.value, shapes, values, dest=instance.ret.cell)
        elif instance.ret is not None:
            raise self.error(ErrorCode.SHAPE_MISMATCH, f"{self.scope.function} returns a value (line "
                             f"{instance.ret.span.line}); this return gives none", s.span)
        self.emit("jmp " + self.scope.exit_label)


def translate(text: str, file: str) -> Translation:
    """Compile Flow source ``text`` (the file ``file``) to FLEQ assembly with its source map."""
    return Compiler(ast.parse_module(text, file)).compile()
