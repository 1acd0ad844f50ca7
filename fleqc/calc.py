"""`fleqc calc "EXPR"`: compile an arithmetic expression to a FLEQ program that uses the stdlib, run
it, print the result.

The expression language: numbers (``2``, ``1.5``, ``.5``, ``1e-3``), ``+ - * /``, unary minus,
parentheses, ``sqrt(x)``, ``exp(x)``, ``log(x)`` and ``x ^ n`` with a whole-number exponent
(right-associative, binding tighter than unary minus, as Python's ``**``: ``-2^2 = -4``,
``2^-1 = 0.5``). The grammar is ``grammar/calc.lark``, parsed by Lark's LALR(1) parser as the
assembly language is; the tree is built and walked without recursion, so an expression may nest
as deeply as memory allows. Syntax errors carry the assembler's codes (``unexpected-character``,
``unexpected-token``, ``unexpected-end``) and the column, printed with a caret.

Code: ``+ -`` are single instructions, and so is ``*`` inside mul's window (else it calls mulw);
``/``, ``sqrt``, ``exp``, ``log`` and ``^`` call the routines of the stdlib's arith (div, sqrt, exp,
log, pow; a power whose powering leaves mul's window is written out, see below), and the program
includes only the parts it calls (arith_div.fleq, arith_sqrt.fleq, ...), which keeps it small (one
division: a 256-column machine). Every value is a constant, so the compiler
also evaluates the expression with Python floats: that is the expected result, and any operation
outside a routine's documented domain (division by zero, sqrt of a negative, log of x <= 0, exp
beyond 693.1, a value beyond the machine's 2^1000) is reported at compile time as a
FleqError with the column of the operator, before anything runs. A product puts the factor nearer
1 in magnitude second and is one ``mul`` when mul's window takes it (fleqc.machines.fleq.functions, the
same on both backends: a second factor 2^-96 < |b| <= 2^96, or 0); any other product calls the
stdlib's ``mulw`` (arith_mulw.fleq), which moves powers of two between the factors and rounds once:
``+ - * / sqrt`` print Python's float for any operands. ``x ^ n`` calls stdlib pow when the
products of its binary powering stay inside mul's window, and otherwise writes the same powering
out with mul or mulw for each product (``2^150``); only a product beyond 2^1000 is refused.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np
from lark import Lark, Token, Transformer_NonRecursive
from lark.exceptions import LarkError, UnexpectedCharacters, VisitError

from fleqc import api
from fleqc.errors import ErrorCode, FleqError, Span
from fleqc.machines.fleq.functions import FLEQ_FUNCTIONS, PRODUCT_FLUSH, VALUE_LIMIT
from fleqc.machines.fleq.rows import EXP_MAX
from fleqc.resources import calc_grammar_path

CALC_FILE = "<calc>"
FUNCTIONS = ("sqrt", "exp", "log")
# the stdlib file of each routine an expression may call (each includes what it needs)
ARITH_PARTS = {"div": "arith_div.fleq", "mulw": "arith_mulw.fleq", "sqrt": "arith_sqrt.fleq", "exp": "arith_exp.fleq",
               "log": "arith_log.fleq", "pow": "arith_pow.fleq"}

# Syntax -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Num:
    value: float
    column: int


@dataclass(frozen=True)
class Neg:
    operand: "Node"
    column: int


@dataclass(frozen=True)
class Bin:
    op: str  # + - * /
    left: "Node"
    right: "Node"
    column: int  # of the operator


@dataclass(frozen=True)
class Call:
    function: str
    argument: "Node"
    column: int


@dataclass(frozen=True)
class Pow:
    base: "Node"
    exponent: "Node"
    column: int  # of the ^
    exponent_column: int


Node = Union[Num, Neg, Bin, Call, Pow]

def _error(text: str, message: str, column: int, code: ErrorCode = ErrorCode.UNEXPECTED_TOKEN) -> FleqError:
    return FleqError(code, message, Span(CALC_FILE, 1, column, 1, column + 1), text)


@functools.cache
def _parser() -> Lark:
    from fleqc.frontend.grammar import cached_lark

    return cached_lark(calc_grammar_path().read_text(encoding="utf-8"), "calc", maybe_placeholders=False)


class _ToNodes(Transformer_NonRecursive):
    """Lark tree to calc nodes, bottom-up without recursion; ``start`` keeps each node's first column
    (by id: nodes are compared by identity, never hashed, so deep trees cost no recursion)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.start: dict[int, int] = {}

    def _at(self, node: Node, column: int) -> Node:
        self.start[id(node)] = column
        return node

    def number(self, children: list[Token]) -> Node:
        token = children[0]
        value = float(token)
        if not abs(value) <= VALUE_LIMIT:
            raise _error(self.text, f"{token} is beyond the machine's range (2^1000)", token.column,
                         ErrorCode.LITERAL_RANGE)
        return self._at(Num(value, token.column), token.column)

    def _binary(self, children: list) -> Node:
        left, op, right = children
        return self._at(Bin(op.value, left, right, op.column), self.start[id(left)])

    add = sub = mul = div = _binary

    def neg(self, children: list) -> Node:
        op, operand = children
        return self._at(Neg(operand, op.column), op.column)

    def pos(self, children: list) -> Node:
        op, operand = children
        return self._at(operand, op.column)

    def pow(self, children: list) -> Node:
        base, caret, exponent = children
        return self._at(Pow(base, exponent, caret.column, self.start[id(exponent)]), self.start[id(base)])

    def call(self, children: list) -> Node:
        name, _, argument, _ = children
        if name.value not in FUNCTIONS:
            raise _error(self.text, f"unknown function '{name}': the functions are sqrt, exp and log",
                         name.column, ErrorCode.UNKNOWN_FUNCTION)
        return self._at(Call(name.value, argument, name.column), name.column)

    def paren(self, children: list) -> Node:
        lpar, node, _ = children
        return self._at(node, lpar.column)


_WORDS = {"NUMBER": "a number", "NAME": "a function", "LPAR": "'('", "RPAR": "')'", "PLUS": "'+'",
          "MINUS": "'-'", "STAR": "'*'", "SLASH": "'/'", "CARET": "'^'"}


def _syntax_error(exc: LarkError, text: str) -> FleqError:
    if isinstance(exc, UnexpectedCharacters):
        char = text[exc.column - 1] if exc.column - 1 < len(text) else "?"
        shown = f"'{char}'" if char.isprintable() else f"U+{ord(char):04X}"
        return _error(text, f"unexpected character {shown}", exc.column, ErrorCode.UNEXPECTED_CHARACTER)
    names = getattr(exc, "accepts", None) or getattr(exc, "expected", None) or set()
    words = sorted({_WORDS[n] for n in names if n in _WORDS}, key=list(_WORDS.values()).index)
    expected = "; expected " + (" or ".join([", ".join(words[:-1]), words[-1]] if len(words) > 1 else words)) \
        if words else ""
    token = getattr(exc, "token", None)
    if token is None or token.type == "$END":
        return _error(text, f"unexpected end of the expression{expected}", len(text.rstrip()) + 1,
                      ErrorCode.UNEXPECTED_END)
    return _error(text, f"unexpected '{token}'{expected}", token.column)


def parse(text: str) -> Node:
    """The syntax tree of ``text``, or a FleqError with the column of the mistake."""
    builder = _ToNodes(text)
    try:
        return builder.transform(_parser().parse(text))
    except VisitError as exc:
        if isinstance(exc.orig_exc, FleqError):
            raise exc.orig_exc from None
        raise
    except LarkError as exc:
        raise _syntax_error(exc, text) from None


def _children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Bin):
        return (node.left, node.right)
    if isinstance(node, (Neg,)):
        return (node.operand,)
    if isinstance(node, Call):
        return (node.argument,)
    if isinstance(node, Pow):
        return (node.base, node.exponent)
    return ()


def postorder(root: Node, children=_children) -> list[Node]:
    """The nodes under ``root``, each after its children, left before right (no recursion)."""
    order, stack = [], [root]
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(children(node))
    order.reverse()
    return order


# Evaluation (the expected value, and the domain checks) --------------------------------------------


def evaluate(node: Node, text: str) -> float:
    """The value of ``node`` in Python floats; a FleqError(DOMAIN_ERROR) where a routine's domain or
    a product's window (the same on both backends) ends."""
    return values_of(node, text)[id(node)]


def values_of(root: Node, text: str) -> dict[int, float]:
    """The value of every node under ``root`` (by id), checking domains left to right."""
    values: dict[int, float] = {}
    for node in postorder(root):
        values[id(node)] = _value(node, [values[id(c)] for c in _children(node)], text)
    return values


def _value(node: Node, args: list[float], text: str) -> float:
    def domain(message: str, column: int) -> FleqError:
        return _error(text, message, column, ErrorCode.DOMAIN_ERROR)

    def check(value: float, column: int) -> float:
        if not abs(value) <= VALUE_LIMIT:
            raise domain("the value is beyond the machine's range (|x| <= 2^1000)", column)
        return value

    if isinstance(node, Num):
        return node.value
    if isinstance(node, Neg):
        return -args[0]
    if isinstance(node, Bin):
        left, right = args
        if node.op == "+":
            return check(left + right, node.column)
        if node.op == "-":
            return check(left - right, node.column)
        if node.op == "*":
            return check(left * right, node.column)
        if right == 0:
            raise domain("division by zero", node.column)
        return check(left / right, node.column)
    if isinstance(node, Call):
        x = args[0]
        if node.function == "sqrt":
            if x < 0:
                raise domain(f"sqrt of a negative number ({x!r})", node.column)
            return math.sqrt(x)
        if node.function == "log":
            if x <= 0:
                raise domain(f"log of a number <= 0 ({x!r})", node.column)
            return math.log(x)
        if not x <= EXP_MAX:
            raise domain(f"exp of {x!r} is outside its domain x <= 693.1 (e^x <= 2^1000)", node.column)
        return math.exp(x)
    assert isinstance(node, Pow)
    base, exponent = args
    if exponent != int(exponent) or abs(exponent) > 2.0**51:
        raise _error(text, f"the exponent must be a whole number (got {exponent!r})", node.exponent_column,
                     ErrorCode.DOMAIN_ERROR)
    if base == 0 and exponent < 0:
        raise domain("division by zero (0 to a negative power)", node.column)
    try:
        value = base ** int(exponent)
    except (OverflowError, ZeroDivisionError):
        raise domain("the value is beyond the machine's range (|x| <= 2^1000)", node.column) from None
    _check_powering(base, int(exponent), node.column, text)
    value = check(value, node.column)
    return value


def _mul_refusal(a: float, b: float) -> Optional[str]:
    """Why ``mul a, b`` would not compute a * b: outside mul's window, or b so small that the machine
    counts it as 0 (its ``PRODUCT_FLUSH``: the result would lose every digit); None if it would."""
    refusal = FLEQ_FUNCTIONS["mul"].refusal(np.float64(a), np.float64(b))
    if refusal is None and b != 0 and abs(b) <= PRODUCT_FLUSH:
        refusal = f"the factor {b!r} is below 2^-96 and counts as 0 on the machine"
    return refusal


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


def _check_powering(x: float, n: int, column: int, text: str) -> None:
    """Every product of the binary powering stays within the machine's 2^1000 (a product beyond mul's
    window is computed by mulw: see _Emitter.power)."""
    for kind, a, b in _powering(x, n):
        with np.errstate(over="ignore", under="ignore"):
            product = float(np.float64(a) * np.float64(b))
        if not abs(product) <= VALUE_LIMIT:
            what = "squares" if kind == "b" else "multiplies by"
            raise _error(text, f"{x!r}^{n}: the binary powering {what} {b!r}, a product beyond the machine's range "
                         "(|x| <= 2^1000)", column, ErrorCode.DOMAIN_ERROR)


# Code generation ---------------------------------------------------------------------------------


class _Emitter:
    def __init__(self) -> None:
        self.data: list[str] = []
        self.code: list[str] = []
        self.constants: dict[str, str] = {}
        self.temps = 0
        self.routines: list[str] = []  # the routines called, in order of first call

    def constant(self, value: float) -> str:
        key = repr(float(value))
        if key not in self.constants:
            name = f"k{len(self.constants)}"
            self.constants[key] = name
            self.data.append(f"{name}: .word {key}")
        return self.constants[key]

    def temp(self) -> str:
        name = f"t{self.temps}"
        self.temps += 1
        self.data.append(f"{name}: .word 0.0")
        return name

    def call(self, routine: str, arguments: list[tuple[str, str]]) -> str:
        if routine not in self.routines:
            self.routines.append(routine)
        for parameter, cell in arguments:
            self.code.append(f"        mov {routine}_{parameter}, {cell}")
        self.code.append(f"        call {routine}")
        out = self.temp()
        self.code.append(f"        mov {out}, {routine}_out")
        return out

    def emit(self, root: Node, values: dict[int, float]) -> str:
        """The cell that holds ``root``'s value once the code emitted so far has run (``values``:
        every node's value, from :func:`values_of`). Nodes are emitted in post-order, no recursion."""
        cells: dict[int, str] = {}
        for node in postorder(root, _emitted_children):
            cells[id(node)] = self._emit_one(node, [cells[id(c)] for c in _emitted_children(node)], values)
        return cells[id(root)]

    def _emit_one(self, node: Node, args: list[str], values: dict[int, float]) -> str:
        if isinstance(node, Num):
            return self.constant(node.value)
        if isinstance(node, Neg):
            out = self.temp()
            self.code.append(f"        sub {out}, {self.constant(0.0)}, {args[0]}")
            return out
        if isinstance(node, Bin):
            left, right = args
            if node.op == "/":
                return self.call("div", [("x", left), ("y", right)])
            if node.op == "*":
                return self.product(left, right, values[id(node.left)], values[id(node.right)])
            out = self.temp()
            function = {"+": "add", "-": "sub"}[node.op]
            self.code.append(f"        {function} {out}, {left}, {right}")
            return out
        if isinstance(node, Call):
            return self.call(node.function, [("x", args[0])])
        assert isinstance(node, Pow)
        return self.power(args[0], values[id(node.base)], int(values[id(node.exponent)]))

    def product(self, left: str, right: str, a: float, b: float) -> str:
        """left * right (their values a, b): one mul with the factor nearer 1 second, or mulw where
        mul's window does not take it."""
        if _far_from_one(b, a):
            left, right, a, b = right, left, b, a
        if _mul_refusal(a, b) is not None:  # mulw moves powers of two between the factors
            return self.call("mulw", [("x", left), ("y", right)])
        out = self.temp()
        self.code.append(f"        mul {out}, {left}, {right}")
        return out

    def power(self, base: str, x: float, n: int) -> str:
        """base^n (base's value x): stdlib pow when its products stay inside mul's window (as pow
        multiplies, r *= b with the square b second); otherwise the same binary powering written
        out, each product by :meth:`product` (the same IEEE products, so the same bits), and for
        n < 0 the reciprocal by div, as pow takes it."""
        products = _powering(x, n)
        if all(_mul_refusal(r_or_b, b) is None for _, r_or_b, b in products):
            return self.call("pow", [("x", base), ("n", self.constant(float(n)))])
        r, square = self.constant(1.0), base
        for kind, a, b in products:
            if kind == "r":
                r = self.product(r, square, a, b)
            else:
                square = self.product(square, square, a, b)
        return self.call("div", [("x", self.constant(1.0)), ("y", r)]) if n < 0 else r


def _emitted_children(node: Node) -> tuple[Node, ...]:
    """The children whose code is emitted (a power's exponent is a constant, not code)."""
    return (node.base,) if isinstance(node, Pow) else _children(node)


def _far_from_one(a: float, b: float) -> bool:
    """True when |a| is further from 1 (in binary orders of magnitude) than |b|. A zero counts as
    1: mul takes a second factor 0 as it is."""

    def distance(x: float) -> float:
        return abs(math.log2(abs(x))) if x else 0.0

    return distance(a) > distance(b)


@dataclass(frozen=True)
class Compiled:
    expression: str
    source: str  # the FLEQ program
    expected: float  # Python's float evaluation


def compile_expression(text: str) -> Compiled:
    """The FLEQ program that computes ``text`` into the cell ``result``, and Python's value of it;
    a domain error found here is one either backend would stop on."""
    if "\n" in text:
        raise _error(text.split("\n")[0], "an expression is one line", len(text.split("\n")[0]) + 1)
    tree = parse(text)
    values = values_of(tree, text)
    expected = values[id(tree)]
    emitter = _Emitter()
    cell = emitter.emit(tree, values)
    emitter.code.append(f"        mov result, {cell}")
    shown = text.replace(";", ",")
    source = "\n".join(
        [f"; generated by fleqc calc: {shown}", f"; expect: result = {expected!r}", ".machine fleq", ".data",
         "result: .word 0.0", *emitter.data, ".text", *emitter.code, "        halt", "",
         *(f'.include "{ARITH_PARTS[routine]}"' for routine in emitter.routines), ""]
    )
    return Compiled(text, source, expected)


def calculate(text: str, backend: str = "reference", max_steps: int = 1_000_000):
    """Compile and run ``text``: (result value, the backend's Result, the Compiled program)."""
    compiled = compile_expression(text)
    program = api.compile(compiled.source)
    result = api.run(program, backend=backend, max_steps=max_steps)
    return float(result.memory["result"]), result, compiled
