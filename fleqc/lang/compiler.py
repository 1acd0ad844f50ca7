"""Flow's compiler: the syntax tree -> readable FLEQ assembly, with a source map.

Two passes per expression, both without recursion (post-order over the nodes): the first infers
and checks every node's shape (and the value of every node made of literals only, so that a
domain error such as ``1/0`` is found at compile time, as `fleqc calc` always did), the second
emits instructions. Statements are compiled one by one; blocks nest at most
``syntax.MAX_BLOCK_DEPTH`` deep. The reference page is docs/flow.md.

The generated program: every variable is a cell named after it (a function's ``x`` is the cell
``_fn_f_x``, shown as ``f__x``, a name the assembler reads back, as ``fleqc disasm`` writes it);
temporaries ``_t...`` and constants ``_k...`` are hidden after linking.
Each line of the assembly remembers the user's span it was generated for (:class:`Translation`),
and :func:`fleqc.lang.attach_source_map` moves every instruction's span there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from fleqc.errors import ErrorCode, FleqError, Span
from fleqc.lang import syntax as ast
from fleqc.lang.stdlib import ROUTINES, Shape, stdlib_labels
from fleqc.machines.fleq.functions import FLEQ_FUNCTIONS, PRODUCT_FLUSH, VALUE_LIMIT
from fleqc.machines.fleq.rows import EXP_MAX

MAX_TEST_DEPTH = 200  # and/or/not inside each other in one test (compiled recursively)
MAX_CALL_DEPTH = 100  # functions calling functions (each compiled where it is first called)
MAX_DIM = 8  # the machine's cell: 8 x 8 (the stdlib's linalg routines take 8 x 8 cells)
GENERATED_SUFFIX = ".fleq"  # the generated program's name: the user's file + this

ELEMENTWISE_ROUTINES = ("sqrt", "exp", "log", "sigmoid", "rsqrt")
CONSTRUCTORS = ("zeros", "ones", "eye")
BUILTINS = (*ELEMENTWISE_ROUTINES, "abs", "min", "max", "pow", "mulw", "relu", "transpose", *CONSTRUCTORS,
            "inv", "inverse", "solve", "norm", "norm1", "norminf", "power_iteration", "backprop_mlp2",
            "sgd_linear")
KEYWORDS = ("if", "elif", "else", "while", "for", "in", "def", "return", "pass", "break", "continue", "and",
            "or", "not", "range")

# tuple-valued calls: how many values each returns
TUPLE_CALLS = {"inverse": 2, "power_iteration": 3, "backprop_mlp2": 5, "sgd_linear": 2}


def describe(shape: Shape) -> str:
    if shape == ():
        return "a scalar"
    if len(shape) == 1:
        return f"a vector of {shape[0]}"
    return f"a {shape[0]} x {shape[1]} matrix"


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


class Compiler:
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

    def literal(self, node) -> Optional[np.ndarray]:
        """The value of a literal (a number, an array of numbers, zeros/ones/eye), else None."""
        if isinstance(node, ast.Num):
            return np.float64(node.value)
        if isinstance(node, ast.Array):
            rows = node.elements
            if rows and all(isinstance(r, ast.Array) for r in rows):
                if all(isinstance(x, ast.Num) for r in rows for x in r.elements):
                    return np.array([[x.value for x in r.elements] for r in rows], dtype=np.float64)
                return None
            if all(isinstance(x, ast.Num) for x in rows):
                return np.array([x.value for x in rows], dtype=np.float64)
            return None
        if isinstance(node, ast.Call) and node.function in CONSTRUCTORS:
            return self.constructed(node)
        return None

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

    # -- conditions ---------------------------------------------------------------------------

    def branch(self, node, target: str, when: bool) -> None:
        """Jump to ``target`` when ``node`` is ``when``; fall through otherwise (short-circuit)."""
        stack, deepest = [(node, 1)], 0
        while stack:
            item, depth = stack.pop()
            if depth > MAX_TEST_DEPTH:
                raise self.error(ErrorCode.UNEXPECTED_TOKEN, f"a test nests and, or and not more than "
                                 f"{MAX_TEST_DEPTH} deep", item.span)
            if isinstance(item, ast.Not):
                stack.append((item.operand, depth + 1))
            elif isinstance(item, ast.BoolOp):
                stack += [(item.left, depth + 1), (item.right, depth + 1)]
        self._branch(node, target, when)

    def _branch(self, node, target: str, when: bool) -> None:
        if isinstance(node, ast.Not):
            self._branch(node.operand, target, not when)
        elif isinstance(node, ast.BoolOp):
            if (node.op == "and") != when:  # and/False, or/True: either side decides
                self._branch(node.left, target, when)
                self._branch(node.right, target, when)
            else:
                skip = self.label()
                self._branch(node.left, skip, not when)
                self._branch(node.right, target, when)
                self.place(skip)
        elif isinstance(node, ast.Compare):
            left = self.scalar_operand(node.left, node.op, stable=True)
            right = self.scalar_operand(node.right, node.op)
            self.compare(node.op, left, right, target, when)
            self.release()
        else:
            cell = self.scalar_operand(node, "if")
            self.compare("!=", cell, self.constant(0.0), target, when)
            self.release()

    def scalar_operand(self, node, op: str, stable: bool = False) -> str:
        shapes, values = self.check(node)
        if shapes[id(node)] != ():
            what = "a test" if op == "if" else f"'{op}'"
            raise self.error(ErrorCode.SHAPE_MISMATCH, f"{what} compares scalars; this is {describe(shapes[id(node)])}",
                             node.span)
        return self.expression(node, shapes, values, stable=stable)

    def compare(self, op: str, a: str, b: str, target: str, when: bool) -> None:
        f = self.flag_cell()

        def le(x: str, y: str, to: str) -> None:  # jump when x <= y: one instruction, exact (x - y keeps the sign)
            self.emit(f"fleq {f}, sub, {x}, {y}, {f}, {to}")

        def gt(x: str, y: str, to: str) -> None:  # jump when x > y
            skip = self.label()
            le(x, y, skip)
            self.emit("jmp " + to)
            self.place(skip)

        if not when:
            op = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}[op]
        if op == "<=":
            le(a, b, target)
        elif op == ">=":
            le(b, a, target)
        elif op == ">":
            gt(a, b, target)
        elif op == "<":
            gt(b, a, target)
        elif op == "==":
            first, skip = self.label(), self.label()
            le(a, b, first)
            self.emit("jmp " + skip)
            self.place(first)
            le(b, a, target)
            self.place(skip)
        else:  # !=
            gt(a, b, target)
            gt(b, a, target)

    # -- expressions: shapes and known values --------------------------------------------------

    def children(self, node) -> list:
        if isinstance(node, ast.Bin):
            return [node.left, node.right]
        if isinstance(node, ast.Neg):
            return [node.operand]
        if isinstance(node, ast.Pow):
            return [node.base, node.exponent]
        if isinstance(node, ast.Call):
            return [] if node.function in CONSTRUCTORS else list(node.args)
        if isinstance(node, ast.Array):
            return [x for row in node.elements for x in (row.elements if isinstance(row, ast.Array) else [row])]
        if isinstance(node, (ast.Index, ast.Attribute)):
            return [node.base]
        return []

    def postorder(self, root) -> list:
        order, stack = [], [root]
        while stack:
            node = stack.pop()
            order.append(node)
            stack.extend(self.children(node))
        order.reverse()
        return order

    def check(self, root) -> tuple[dict, dict]:
        """Every node's shape (by id), and the value of each scalar node made of literals only."""
        shapes: dict[int, Shape] = {}
        values: dict[int, float] = {}
        for node in self.postorder(root):
            kids = self.children(node)
            shapes[id(node)] = self.shape_of(node, [shapes[id(k)] for k in kids], values)
            if kids or isinstance(node, ast.Num):
                known = [values.get(id(k)) for k in kids]
                if all(v is not None for v in known):
                    value = self.value_of(node, known)
                    if value is not None:
                        values[id(node)] = value
        return shapes, values

    def shape_of(self, node, kids: list, values: dict) -> Shape:
        def mismatch(message: str, span: Span) -> FleqError:
            return self.error(ErrorCode.SHAPE_MISMATCH, message, span)

        if isinstance(node, ast.Num):
            return ()
        if isinstance(node, ast.Name):
            return self.lookup(node.id, node.span).shape
        if isinstance(node, ast.Array):
            return self.array_shape(node, kids)
        if isinstance(node, ast.Neg):
            return kids[0]
        if isinstance(node, ast.Bin):
            a, b = kids
            if node.op == "@":
                if a == () or b == ():
                    raise mismatch(f"@ multiplies vectors and matrices; this is {describe(a)} @ {describe(b)} "
                                   "(use * with a scalar)", node.at)
                if a[-1] != b[0]:
                    raise mismatch(f"{describe(a)} @ {describe(b)}: the inner sizes differ ({a[-1]} and {b[0]})",
                                   node.at)
                return a[:-1] + b[1:]
            if a == b or a == () or b == ():
                return a if b == () else b
            raise mismatch(f"{describe(a)} {node.op} {describe(b)}: the shapes differ (elementwise "
                           "operations take equal shapes, or a scalar)", node.at)
        if isinstance(node, ast.Pow):
            if kids[1] != ():
                raise mismatch(f"the exponent is a scalar, not {describe(kids[1])}", node.exponent.span)
            return kids[0]
        if isinstance(node, ast.Attribute):
            if node.name != "T":
                raise self.error(ErrorCode.UNKNOWN_FUNCTION, f"unknown attribute '.{node.name}' (the one there "
                                 "is: .T, the transpose)", node.at)
            a = kids[0]
            return (a[1], a[0]) if len(a) == 2 else a
        if isinstance(node, ast.Index):
            a = kids[0]
            index = self.constant_indices(node.indices, a, node.at)
            return a[len(index):]
        if isinstance(node, (ast.Compare, ast.BoolOp, ast.Not)):
            raise self.error(ErrorCode.WRONG_KIND, "a comparison is a test for if and while, not a value", node.at)
        if isinstance(node, ast.Call):
            return self.call_shape(node, kids)
        raise AssertionError(node)  # pragma: no cover

    def array_shape(self, node: ast.Array, kids: list) -> Shape:
        rows = node.elements
        if not rows:
            raise self.error(ErrorCode.SHAPE_MISMATCH, "an empty literal: a vector needs 1 to 8 entries", node.span)
        if all(isinstance(r, ast.Array) for r in rows):
            widths = {len(r.elements) for r in rows}
            for r in rows:
                if not r.elements or any(isinstance(x, ast.Array) for x in r.elements):
                    raise self.error(ErrorCode.SHAPE_MISMATCH, "a matrix's rows hold numbers", r.span)
            if len(widths) != 1:
                bad = next(r for r in rows if len(r.elements) != len(rows[0].elements))
                raise self.error(ErrorCode.SHAPE_MISMATCH, f"the rows of a matrix have equal lengths: this one has "
                                 f"{len(bad.elements)}, the first {len(rows[0].elements)}", bad.span)
            shape = (len(rows), len(rows[0].elements))
        elif any(isinstance(r, ast.Array) for r in rows):
            bad = next(r for r in rows if isinstance(r, ast.Array) != isinstance(rows[0], ast.Array))
            raise self.error(ErrorCode.SHAPE_MISMATCH, "a literal holds numbers (a vector) or rows (a matrix), not "
                             "both", bad.span)
        else:
            shape = (len(rows),)
        if max(shape) > MAX_DIM:
            raise self.error(ErrorCode.SHAPE_MISMATCH, f"{describe(shape)}: a cell holds at most 8 x 8 numbers",
                             node.span)
        for kid, entry in zip(kids, self.children(node)):
            if kid != ():
                raise self.error(ErrorCode.SHAPE_MISMATCH, f"an entry of a literal is a scalar, not {describe(kid)}",
                                 entry.span)
        return shape

    def constant_indices(self, indices: list, shape: Shape, span: Span) -> tuple:
        if shape == ():
            raise self.error(ErrorCode.SHAPE_MISMATCH, "a scalar has no entries to index", span)
        if len(indices) > len(shape):
            raise self.error(ErrorCode.SHAPE_MISMATCH, f"{describe(shape)} takes at most {len(shape)} index(es)",
                             span)
        out = []
        for index, size in zip(indices, shape):
            if not isinstance(index, ast.Num) or index.value != int(index.value):
                raise self.error(ErrorCode.WRONG_KIND, "an index is a whole number written in the program (the "
                                 "machine has no indirect addressing)", index.span)
            k = int(index.value)
            if not -size <= k < size:
                raise self.error(ErrorCode.ADDRESS_RANGE, f"index {k} is outside 0..{size - 1}", index.span)
            out.append(k % size)
        return tuple(out)

    def constructed(self, node: ast.Call) -> np.ndarray:
        sizes = []
        if not 1 <= len(node.args) <= (1 if node.function == "eye" else 2):
            raise self.error(ErrorCode.OPERAND_COUNT, f"{node.function} takes the size: {node.function}(n)"
                             + ("" if node.function == "eye" else f" or {node.function}(rows, columns)"), node.span)
        for arg in node.args:
            if not isinstance(arg, ast.Num) or arg.value != int(arg.value) or not 1 <= arg.value <= MAX_DIM:
                raise self.error(ErrorCode.SHAPE_MISMATCH, "a size is a whole number from 1 to 8, written as a "
                                 "number", arg.span)
            sizes.append(int(arg.value))
        if node.function == "eye":
            return np.eye(sizes[0])
        return (np.zeros if node.function == "zeros" else np.ones)(tuple(sizes))

    def call_shape(self, node: ast.Call, kids: list) -> Shape:
        name, n = node.function, len(kids)

        def arity(*allowed: int) -> None:
            if n not in allowed:
                raise self.error(ErrorCode.OPERAND_COUNT, f"{name} takes {' or '.join(map(str, allowed))} "
                                 f"argument(s), got {n}", node.span)

        def need(k: int, ok: bool, what: str) -> None:
            if not ok:
                raise self.error(ErrorCode.SHAPE_MISMATCH, f"{name}'s argument {k + 1} is {what}, not "
                                 f"{describe(kids[k])}", node.args[k].span)

        if name in self.functions:
            definition = self.functions[name]
            if n != len(definition.params):
                raise self.error(ErrorCode.OPERAND_COUNT, f"{name} takes {len(definition.params)} argument(s), "
                                 f"got {n}", node.span)
            instance = self.instance(node, definition, tuple(kids))
            if instance.ret is None:
                raise self.error(ErrorCode.WRONG_KIND, f"{name} returns no value", node.span)
            return instance.ret.shape
        if name in TUPLE_CALLS:
            raise self.error(ErrorCode.OPERAND_COUNT, f"{name} returns {TUPLE_CALLS[name]} values: assign them, "
                             f"{', '.join(['x'] * TUPLE_CALLS[name])} = {name}(...)", node.span)
        if name in CONSTRUCTORS:
            return self.constructed(node).shape
        if name in ELEMENTWISE_ROUTINES or name in ("abs", "relu"):
            arity(1)
            return kids[0]
        if name in ("min", "max", "mulw"):
            arity(2)
            need(0, kids[0] == (), "a scalar")
            need(1, kids[1] == (), "a scalar")
            return ()
        if name == "pow":
            arity(2)
            need(1, kids[1] == (), "a scalar")
            return kids[0]
        if name == "transpose":
            arity(1)
            return (kids[0][1], kids[0][0]) if len(kids[0]) == 2 else kids[0]
        if name == "inv":
            arity(1)
            need(0, len(kids[0]) == 2 and kids[0][0] == kids[0][1], "a square matrix")
            return kids[0]
        if name == "solve":
            arity(2)
            need(0, len(kids[0]) == 2 and kids[0][0] == kids[0][1], "a square matrix")
            need(1, kids[1] == (kids[0][0],), f"a vector of {kids[0][0]}")
            return kids[0][:1]
        if name == "norm":
            arity(1)
            need(0, kids[0] != (), "a vector or a matrix")
            return ()
        if name in ("norm1", "norminf"):
            arity(1)
            need(0, len(kids[0]) == 2, "a matrix")
            return ()
        raise self.error(ErrorCode.UNKNOWN_FUNCTION, f"unknown function '{name}' (the built-in ones: "
                         f"{', '.join(BUILTINS)}; or define it with def)", node.span)

    # known values: the checks `fleqc calc` made, now for every literal subexpression
    def value_of(self, node, args: list) -> Optional[float]:
        def domain(message: str, span: Span) -> FleqError:
            return self.error(ErrorCode.DOMAIN_ERROR, message, span)

        def check(value: float, span: Span) -> float:
            if not abs(value) <= VALUE_LIMIT:
                raise domain("the value is beyond the machine's range (|x| <= 2^1000)", span)
            return value

        if isinstance(node, ast.Num):
            return node.value
        if isinstance(node, ast.Neg):
            return -args[0]
        if isinstance(node, ast.Bin):
            if node.op == "@":
                return None
            left, right = args
            if node.op == "+":
                return check(left + right, node.at)
            if node.op == "-":
                return check(left - right, node.at)
            if node.op == "*":
                return check(left * right, node.at)
            if right == 0:
                raise domain("division by zero", node.at)
            return check(left / right, node.at)
        if isinstance(node, ast.Call):
            if node.function in self.functions or len(args) != 1 or node.function not in ("sqrt", "exp", "log"):
                if node.function in ("abs",) and len(args) == 1:
                    return abs(args[0])
                return None
            x = args[0]
            if node.function == "sqrt":
                if x < 0:
                    raise domain(f"sqrt of a negative number ({x!r})", node.at)
                return math.sqrt(x)
            if node.function == "log":
                if x <= 0:
                    raise domain(f"log of a number <= 0 ({x!r})", node.at)
                return math.log(x)
            if not x <= EXP_MAX:
                raise domain(f"exp of {x!r} is outside its domain x <= 693.1 (e^x <= 2^1000)", node.at)
            return math.exp(x)
        if isinstance(node, ast.Pow):
            base, exponent = args
            if exponent != int(exponent) or abs(exponent) > 2.0 ** 51:
                raise self.error(ErrorCode.DOMAIN_ERROR, f"the exponent must be a whole number (got {exponent!r})",
                                 node.exponent.span)
            if base == 0 and exponent < 0:
                raise domain("division by zero (0 to a negative power)", node.at)
            try:
                value = base ** int(exponent)
            except (OverflowError, ZeroDivisionError):
                raise domain("the value is beyond the machine's range (|x| <= 2^1000)", node.at) from None
            for kind, a, b in _powering(base, int(exponent)):
                with np.errstate(over="ignore", under="ignore"):
                    product = float(np.float64(a) * np.float64(b))
                if not abs(product) <= VALUE_LIMIT:
                    what = "squares" if kind == "b" else "multiplies by"
                    raise domain(f"{base!r}^{int(exponent)}: the binary powering {what} {b!r}, a product beyond "
                                 "the machine's range (|x| <= 2^1000)", node.at)
            return check(value, node.at)
        return None

    # -- expressions: code --------------------------------------------------------------------

    def expression(self, root, shapes: dict, values: dict, dest: Optional[str] = None, stable: bool = False) -> str:
        """Emit ``root``; the cell that holds its value (``dest`` when given: written last).
        ``stable``: the value must outlive later calls (else it may be left in a routine's cell)."""
        order = self.postorder(root)
        position = {id(n): k for k, n in enumerate(order)}
        parent: dict[int, object] = {}
        for node in order:
            for kid in self.children(node):
                parent[id(kid)] = node
        calls = [0]
        for node in order:
            calls.append(calls[-1] + (1 if self.calls(node, values) else 0))
        hints = self.hints(order, shapes, values)
        cells: dict[int, str] = {}
        for node in order:
            kids = self.children(node)
            args = [cells[id(k)] for k in kids]
            node_dest = dest if node is root else hints.get(id(node))
            cell = self.node(node, kids, args, shapes, values, node_dest)
            if self.volatile(cell) and node is not root and cell != node_dest:
                up = parent[id(node)]
                between = calls[position[id(up)]] - calls[position[id(node)] + 1]
                if between or self.repeats_calls(up, shapes, values):
                    copy = self.temp(shapes[id(node)])
                    self.emit(f"mov {copy}, {cell}")
                    cell = copy
            cells[id(node)] = cell
            for kid in kids:  # each value is read by its parent only: its temp is free again
                self.free_temp(cells[id(kid)], keep=cell)
        cell = cells[id(root)]
        if dest is not None and cell != dest:
            self.emit(f"mov {dest}, {cell}")
            cell = dest
        elif stable and dest is None and self.volatile(cell):
            copy = self.temp(shapes[id(root)])
            self.emit(f"mov {copy}, {cell}")
            cell = copy
        return cell

    def hints(self, order: list, shapes: dict, values: dict) -> dict:
        """Where a routine's last argument may be computed straight into the routine's own cell:
        nothing runs between it and the call but the moves of the other arguments."""
        hints = {}
        for node in order:
            last, cell = None, None
            if isinstance(node, ast.Call) and node.args and shapes[id(node)] == ():
                if node.function in self.functions:
                    instance = self.instances.get((node.function, tuple(shapes[id(a)] for a in node.args)))
                    if instance is not None:
                        last, cell = node.args[-1], instance.params[-1].cell
                elif node.function in (*ELEMENTWISE_ROUTINES, "mulw"):
                    last, cell = node.args[-1], ROUTINES[node.function].params[len(node.args) - 1][0]
            elif isinstance(node, ast.Bin) and node.op == "/" and shapes[id(node)] == ():
                last, cell = node.right, "div_y"
            if last is not None and not isinstance(last, (ast.Name, ast.Num)) and self.literal(last) is None \
                    and shapes[id(last)] == self.shapes.get(cell):
                hints[id(last)] = cell
        return hints

    def calls(self, node, values) -> bool:
        """Whether the code of ``node`` itself calls a routine (which may overwrite routine cells)."""
        if isinstance(node, ast.Call):
            return node.function not in ("abs", "min", "max", "relu", "transpose", *CONSTRUCTORS)
        if isinstance(node, ast.Bin) and node.op == "/":
            return True
        if isinstance(node, ast.Pow):
            n = values.get(id(node.exponent))
            return n is None or n < 0
        return False

    def volatile(self, cell: str) -> bool:
        """The value is left in a routine's own cell (overwritten by the routine's next call)."""
        return cell in self.volatile_cells

    def repeats_calls(self, node, shapes, values) -> bool:
        """Whether ``node`` reads its operands after calling a routine (elementwise routines)."""
        if isinstance(node, ast.Call) and node.function in ELEMENTWISE_ROUTINES:
            return shapes[id(node)] != ()
        if isinstance(node, ast.Bin) and node.op == "/":
            return shapes[id(node)] != ()
        return False  # a power reads its base before any call (pow's, or div's for n < 0)

    def kept(self, cell: str, shape: Shape) -> str:
        """``cell``, or a copy of it where a routine's next call would overwrite it."""
        if not self.volatile(cell):
            return cell
        copy = self.temp(shape)
        self.emit(f"mov {copy}, {cell}")
        return copy

    def result(self, shape: Shape, dest: Optional[str]) -> str:
        return dest if dest is not None else self.temp(shape)

    def node(self, node, kids, args, shapes, values, dest) -> str:
        shape = shapes[id(node)]
        if isinstance(node, ast.Num):
            return self.constant(node.value)
        if isinstance(node, ast.Name):
            return self.lookup(node.id, node.span).cell
        if isinstance(node, ast.Array):
            literal = self.literal(node)
            if literal is not None:
                return self.constant(literal, shape)
            return self.build_array(shape, args, dest)
        if isinstance(node, ast.Neg):
            out = self.result(shape, dest)
            self.emit(f"mul {out}, {args[0]}, {self.constant(-1.0)}", node.span)
            return out
        if isinstance(node, ast.Bin):
            return self.binary(node, kids, args, shapes, values, dest)
        if isinstance(node, ast.Pow):
            return self.power(node, args, shapes, values, dest)
        if isinstance(node, ast.Attribute):
            if len(shapes[id(kids[0])]) < 2:
                return args[0]  # a vector is its own transpose
            out = self.result(shape, dest)
            self.emit(f"transpose {out}, {args[0]}", node.at)
            return out
        if isinstance(node, ast.Index):
            return self.extract(args[0], shapes[id(kids[0])],
                                self.constant_indices(node.indices, shapes[id(kids[0])], node.at), dest)
        if isinstance(node, ast.Call):
            return self.call(node, kids, args, shapes, values, dest)
        raise AssertionError(node)  # pragma: no cover

    def build_array(self, shape: Shape, args: list, dest) -> str:
        """[a, b, ...]: the sum of each entry times its unit vector (or matrix), exact."""
        acc = self.temp(shape) if dest is None or dest in args else dest
        term = self.temp(shape)
        for k, arg in enumerate(args):
            unit = np.zeros(shape)
            unit.flat[k] = 1.0
            self.emit(f"mul {acc if k == 0 else term}, {arg}, {self.constant(unit, shape)}")
            if k:
                self.emit(f"add {acc}, {acc}, {term}")
        if dest is not None and acc != dest:
            self.emit(f"mov {dest}, {acc}")
            return dest
        return acc

    def extract(self, cell: str, shape: Shape, index: tuple, dest) -> str:
        """An entry (or a matrix's row) by products with unit vectors: exact."""
        if len(shape) == 1:
            unit = np.zeros(shape)
            unit[index[0]] = 1.0
            out = self.result((), dest)
            self.emit(f"matmul {out}, {cell}, {self.constant(unit, shape)}")
            return out
        row = np.zeros(shape[0])
        row[index[0]] = 1.0
        if len(index) == 1:
            out = self.result((shape[1],), dest)
            self.emit(f"matmul {out}, {self.constant(row, (shape[0],))}, {cell}")
            return out
        column = np.zeros(shape[1])
        column[index[1]] = 1.0
        middle = self.temp((shape[0],))
        self.emit(f"matmul {middle}, {cell}, {self.constant(column, (shape[1],))}")
        out = self.result((), dest)
        self.emit(f"matmul {out}, {self.constant(row, (shape[0],))}, {middle}")
        return out

    def broadcast(self, cell: str, shape: Shape) -> str:
        out = self.temp(shape)
        self.emit(f"mul {out}, {cell}, {self.constant(1.0, shape)}")
        return out

    def binary(self, node: ast.Bin, kids, args, shapes, values, dest) -> str:
        shape = shapes[id(node)]
        left, right = args
        a, b = shapes[id(kids[0])], shapes[id(kids[1])]
        if node.op == "@":
            out = self.result(shape, dest)
            self.emit(f"matmul {out}, {left}, {right}", node.at)
            return out
        if node.op in "+-":
            if a != b:
                if a == ():
                    left = self.broadcast(left, shape)
                else:
                    right = self.broadcast(right, shape)
            out = self.result(shape, dest)
            self.emit(f"{'add' if node.op == '+' else 'sub'} {out}, {left}, {right}", node.at)
            return out
        if node.op == "*":
            return self.product(left, right, values.get(id(kids[0])), values.get(id(kids[1])), shape, dest,
                                node.at, a, b)
        # division
        if shape == ():
            return self.routine_call("div", [left, right], dest, node.at)
        return self.elementwise("div", [(left, a), (right, b)], shape, dest, node.at)

    def product(self, left, right, x, y, shape, dest, span, a=(), b=()) -> str:
        """left * right: one mul, the factor nearer 1 second when the values are known (or the known
        one, when only one is), mulw for scalars mul's window does not take."""
        swap = False
        if x is not None and y is not None:
            swap = _far_from_one(y, x)
        elif x is not None and y is None and _mul_refusal(1.0, x) is None and x != 0:
            swap = True  # the known factor second: it is inside mul's window
        if swap:
            left, right, x, y, a, b = right, left, y, x, b, a
        if x is not None and y is not None and _mul_refusal(x, y) is not None:
            return self.routine_call("mulw", [left, right], dest, span)
        if shape == () and (x is not None or y is not None) and _mul_refusal(1.0, y if y is not None else x):
            return self.routine_call("mulw", [left, right], dest, span)  # a known factor mul's window does not take
        out = self.result(shape, dest)
        self.emit(f"mul {out}, {left}, {right}", span)
        return out

    def power(self, node: ast.Pow, args, shapes, values, dest) -> str:
        shape = shapes[id(node)]
        n = values.get(id(node.exponent))
        x = values.get(id(node.base))
        if n is None:
            if shape != ():
                raise self.error(ErrorCode.WRONG_KIND, "an array's power needs an exponent written in the program",
                                 node.exponent.span)
            return self.routine_call("pow", args, dest, node.at)
        if n != int(n) or abs(n) > 2.0 ** 51:
            raise self.error(ErrorCode.DOMAIN_ERROR, f"the exponent must be a whole number (got {n!r})",
                             node.exponent.span)
        n = int(n)
        if n == 0:
            return self.constant(1.0, shape)
        # the binary powering of stdlib pow written out (the same IEEE products: the same bits),
        # without its first product by 1
        base = args[0]
        products = _powering(x if x is not None else 2.0, n)
        r: Optional[str] = None
        rv = None
        square, sv = base, x
        last = len(products) - 1
        for k, (kind, _, _) in enumerate(products):
            target = dest if (k == last and n > 0 and dest is not None) else None
            if kind == "r":
                if r is None:
                    r, rv = square, sv
                    if k == last and target is not None:
                        self.emit(f"mov {target}, {r}", node.at)
                        r = target
                    continue
                r = self.kept(self.product(r, square, rv, sv, shape, target, node.at), shape)
                rv = None if rv is None or sv is None else rv * sv
            else:
                square = self.kept(self.product(square, square, sv, sv, shape, None, node.at), shape)
                sv = None if sv is None else sv * sv
        assert r is not None
        if n < 0:
            if shape == ():
                return self.routine_call("div", [self.constant(1.0), r], dest, node.at)
            return self.elementwise("div", [(self.constant(1.0), ()), (r, shape)], shape, dest, node.at)
        return r

    def routine_call(self, routine: str, args: list, dest, span, result_index: int = 0) -> str:
        """Move the arguments into the routine's cells, call it; its result cell (or ``dest``)."""
        info = ROUTINES[routine]
        self.include(routine)
        for (cell, _), arg in zip(info.params, args):
            if cell != arg:
                self.emit(f"mov {cell}, {arg}", span)
        self.emit(f"call {routine}", span)
        out = info.results[result_index][0]
        if dest is not None:
            self.emit(f"mov {dest}, {out}", span)
            return dest
        return out

    def elementwise(self, routine: str, operands: list, shape: Shape, dest, span) -> str:
        """A scalar routine on every entry: each entry by a product with a unit vector, the routine,
        and the result put back by a product and a sum (all exact but the routine)."""
        info = ROUTINES[routine]
        self.include(routine)
        acc = self.temp(shape)
        term = self.temp(shape)
        for k in range(int(np.prod(shape))):
            index = np.unravel_index(k, shape)
            for (param, _), (cell, operand_shape) in zip(info.params, operands):
                if operand_shape == ():
                    self.emit(f"mov {param}, {cell}", span)
                else:
                    self.extract(cell, operand_shape, index if len(operand_shape) == 2 else (index[0],), param)
            self.emit(f"call {routine}", span)
            unit = np.zeros(shape)
            unit[index] = 1.0
            self.emit(f"mul {acc if k == 0 else term}, {info.results[0][0]}, {self.constant(unit, shape)}", span)
            if k:
                last = k == int(np.prod(shape)) - 1
                self.emit(f"add {dest if last and dest is not None else acc}, {acc}, {term}", span)
        if int(np.prod(shape)) == 1 or dest is None:
            if dest is not None:
                self.emit(f"mov {dest}, {acc}", span)
                return dest
            return acc
        return dest

    def call(self, node: ast.Call, kids, args, shapes, values, dest) -> str:
        name = node.function
        shape = shapes[id(node)]
        if name in self.functions:
            definition = self.functions[name]
            instance = self.instance(node, definition, tuple(shapes[id(k)] for k in kids))
            for param, cell in zip(instance.params, args):
                if param.cell != cell:
                    self.emit(f"mov {param.cell}, {cell}", node.span)
            self.emit(f"call {instance.label}", node.span)
            if dest is not None:
                self.emit(f"mov {dest}, {instance.ret.cell}", node.span)
                return dest
            return instance.ret.cell
        if name in CONSTRUCTORS:
            return self.constant(self.constructed(node), shape)
        if name in ELEMENTWISE_ROUTINES:
            if shape == ():
                return self.routine_call(name, args, dest, node.span)
            return self.elementwise(name, [(args[0], shape)], shape, dest, node.span)
        if name == "abs":
            positive, negative = self.temp(shape), self.temp(shape)
            self.emit(f"relu {positive}, {args[0]}", node.span)
            self.emit(f"mul {negative}, {args[0]}, {self.constant(-1.0)}", node.span)
            self.emit(f"relu {negative}, {negative}", node.span)
            out = self.result(shape, dest)
            self.emit(f"add {out}, {positive}, {negative}", node.span)
            return out
        if name == "relu":
            out = self.result(shape, dest)
            self.emit(f"relu {out}, {args[0]}", node.span)
            return out
        if name in ("min", "max"):
            out = self.result(shape, dest)
            f, second, end = self.flag_cell(), self.label(), self.label()
            a, b = args
            # max: a - b <= 0 -> b, else a; min: a - b <= 0 -> a, else b (one exact subtraction)
            self.emit(f"fleq {f}, sub, {a}, {b}, {f}, {second}", node.span)
            self.emit(f"mov {out}, {a if name == 'max' else b}", node.span)
            self.emit(f"jmp {end}", node.span)
            self.place(second)
            self.emit(f"mov {out}, {b if name == 'max' else a}", node.span)
            self.place(end)
            return out
        if name == "mulw":
            return self.routine_call("mulw", args, dest, node.span)
        if name == "pow":
            power = ast.Pow(kids[0], kids[1], node.span, node.span)
            return self.power(power, args, shapes, values, dest)
        if name == "transpose":
            if len(shape) < 2:
                return args[0]
            out = self.result(shape, dest)
            self.emit(f"transpose {out}, {args[0]}", node.span)
            return out
        if name in ("inv", "solve", "norm", "norm1", "norminf"):
            routine = {"inv": "inverse", "norm": "vnorm" if len(shapes[id(kids[0])]) == 1 else "fnorm"}.get(name, name)
            out = self.routine_call(routine, args, None, node.span)
            if dest is not None:
                self.emit(f"mov {dest}, {out}", node.span)
                return dest
            if shape != ROUTINES[routine].results[0][1]:  # a corner of the 8 x 8 result
                corner = self.temp(shape)
                self.emit(f"mov {corner}, {out}", node.span)
                return corner
            return out
        raise AssertionError(name)  # pragma: no cover

    def library_call(self, call: ast.Call, tuple_values: bool) -> list[tuple[str, Shape]]:
        """A stdlib routine with several results: (cell, shape) of each, in Flow's order."""
        name = call.function
        info = ROUTINES[name]
        checked = [self.check(arg) for arg in call.args]
        shapes = [c[0][id(a)] for c, a in zip(checked, call.args)]
        params = list(info.params)
        if name == "power_iteration":
            if len(call.args) not in (1, 2):
                raise self.error(ErrorCode.OPERAND_COUNT, "power_iteration takes A, or A and a start vector",
                                 call.span)
        elif len(call.args) != len(params):
            raise self.error(ErrorCode.OPERAND_COUNT, f"{name} takes {len(params)} arguments "
                             f"({', '.join(p for p, _ in params)}), got {len(call.args)}", call.span)
        n = None
        for k, (shape, (param, wanted)) in enumerate(zip(shapes, params)):
            ok = len(shape) == len(wanted) and all(s <= w for s, w in zip(shape, wanted))
            if name in ("inverse", "power_iteration") and k == 0:
                ok = ok and shape[0] == shape[1]
                n = shape[0] if ok else None
            if name in ("backprop_mlp2",):
                ok = shape == wanted
            if name == "power_iteration" and k == 1:
                ok = ok and n is not None and shape == (n,)
            if not ok:
                raise self.error(ErrorCode.SHAPE_MISMATCH, f"{name}'s argument {param} takes "
                                 f"{describe(wanted) if name == 'backprop_mlp2' else 'up to ' + describe(wanted)}"
                                 f"{' (square)' if name in ('inverse', 'power_iteration') and k == 0 else ''}, "
                                 f"not {describe(shape)}", call.args[k].span)
        self.include(name)
        cells = []
        last = len(call.args) - 1
        for k, (arg, (sh, vals)) in enumerate(zip(call.args, checked)):
            param, wanted = params[k]
            hint = param if (k == last and shapes[k] == wanted and not isinstance(arg, (ast.Name, ast.Num))) else None
            cells.append(self.expression(arg, sh, vals, dest=hint, stable=k < last))
        for k, cell in enumerate(cells):
            if cell != params[k][0]:
                self.emit(f"mov {params[k][0]}, {cell}", call.span)
        if name == "power_iteration" and len(call.args) == 1:
            self.emit(f"mov pi_v, {self.constant(1.0, (8,))}", call.span)  # the start: all ones
        self.emit(f"call {name}", call.span)
        results = []
        for cell, shape in info.results:
            if name == "inverse" and cell == "inv_out":
                shape = (n, n)
            elif name == "power_iteration" and cell == "pi_v":
                shape = (n,)
            elif name == "sgd_linear" and cell == "lin_w":
                shape = shapes[2]
            results.append((cell, shape))
        return results


def _powering(x: float, n: int) -> list[tuple[str, float, float]]:
    """The products of stdlib pow's binary powering of x^n (``r *= b`` for each set bit of |n|,
    ``b *= b`` between bits), in order: ("r", r, b) or ("b", b, b) with the factors' values."""
    products, r, b, m = [], 1.0, x, abs(n)
    while m:
        if m & 1:
            products.append(("r", r, b))
            r *= b
        m >>= 1
        if m:
            products.append(("b", b, b))
            b *= b
    return products


def _mul_refusal(a: float, b: float) -> Optional[str]:
    """Why ``mul a, b`` would not compute a * b (outside mul's window, or b below 2^-96, which the
    machine counts as 0); None if it would."""
    with np.errstate(over="ignore", under="ignore"):
        refusal = FLEQ_FUNCTIONS["mul"].refusal(np.float64(a), np.float64(b))
    if refusal is None and b != 0 and abs(b) <= PRODUCT_FLUSH:
        refusal = f"the factor {b!r} is below 2^-96 and counts as 0 on the machine"
    return refusal


def _far_from_one(a: float, b: float) -> bool:
    """True when |a| is further from 1 (in binary orders of magnitude) than |b| (0 counts as 1)."""

    def distance(x: float) -> float:
        return abs(math.log2(abs(x))) if x else 0.0

    return distance(a) > distance(b)


def translate(text: str, file: str) -> Translation:
    """Compile Flow source ``text`` (the file ``file``) to FLEQ assembly with its source map."""
    return Compiler(ast.parse_module(text, file)).compile()
