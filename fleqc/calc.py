"""`fleqc calc "EXPR"`: compile an arithmetic expression to a FLEQ program that uses the stdlib, run
it, print the result.

The expression language: numbers (``2``, ``1.5``, ``.5``, ``1e-3``), ``+ - * /``, unary minus,
parentheses, ``sqrt(x)``, ``exp(x)``, ``log(x)`` and ``x ^ n`` with a whole-number exponent
(right-associative, binding tighter than unary minus, as Python's ``**``: ``-2^2 = -4``,
``2^-1 = 0.5``). Grammar (recursive descent)::

    expr  := term (("+" | "-") term)*
    term  := unary (("*" | "/") unary)*
    unary := ("-" | "+") unary | power
    power := atom ("^" unary)?
    atom  := NUMBER | ("sqrt" | "exp" | "log") "(" expr ")" | "(" expr ")"

Code: ``+ - *`` are single instructions; ``/``, ``sqrt``, ``exp``, ``log`` and ``^`` call the
routines of the stdlib's arith (div, sqrt, exp, log, pow), and the program includes only the parts
it calls (arith_div.fleq, arith_sqrt.fleq, ...), which keeps it small (one division: a 256-column
machine). Every value is a constant, so the compiler
also evaluates the expression with Python floats: that is the expected result, and any operation
outside a routine's documented domain (division by zero, sqrt of a negative, log of x <= 0, exp
beyond [-708, 693.1], a value beyond the machine's 2^1000) is reported at compile time as a
FleqError with the column of the operator, before anything runs. A product puts the factor nearer
1 in magnitude second (the transformer's multiplier is exact-range in its second factor).
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass
from typing import Union

import click

from fleqc.errors import ErrorCode, FleqError, Span
from fleqc.isa.fleq_functions import VALUE_LIMIT
from fleqc.machine.fleq_layout import EXP_MAX

CALC_FILE = "<calc>"
SMALLEST_NORMAL = 2.0**-1022
EXP_RANGE = (-708.0, EXP_MAX)
FUNCTIONS = ("sqrt", "exp", "log")
# the stdlib file of each routine an expression may call (each includes what it needs)
ARITH_PARTS = {"div": "arith_div.fleq", "sqrt": "arith_sqrt.fleq", "exp": "arith_exp.fleq",
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

_TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_]\w*)|(?P<op>[-+*/^()]))"
)


@dataclass(frozen=True)
class _Token:
    kind: str  # number, name, op, end
    text: str
    column: int  # 1-based


def _tokens(text: str) -> list[_Token]:
    tokens, position = [], 0
    while True:
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            rest = text[position:]
            stripped = len(rest) - len(rest.lstrip())
            if position + stripped >= len(text):
                tokens.append(_Token("end", "", len(text) + 1))
                return tokens
            column = position + stripped + 1
            raise _error(text, f"unexpected character '{text[column - 1]}'", column, ErrorCode.UNEXPECTED_CHARACTER)
        kind = match.lastgroup or "end"
        start = match.start(kind)
        tokens.append(_Token(kind, match.group(kind), start + 1))
        position = match.end()


def _error(text: str, message: str, column: int, code: ErrorCode = ErrorCode.UNEXPECTED_TOKEN) -> FleqError:
    return FleqError(code, message, Span(CALC_FILE, 1, column, 1, column + 1), text)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.at = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def fail(self, expected: str) -> FleqError:
        token = self.token
        if token.kind == "end":
            return _error(self.text, f"unexpected end of the expression; expected {expected}", token.column,
                          ErrorCode.UNEXPECTED_END)
        return _error(self.text, f"unexpected '{token.text}'; expected {expected}", token.column)

    def parse(self) -> Node:
        if self.token.kind == "end":
            raise self.fail("an expression")
        node = self.expr()
        if self.token.kind != "end":
            raise self.fail("an operator or the end")
        return node

    def expr(self) -> Node:
        node = self.term()
        while self.token.text in ("+", "-") and self.token.kind == "op":
            op = self.take()
            node = Bin(op.text, node, self.term(), op.column)
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.token.text in ("*", "/") and self.token.kind == "op":
            op = self.take()
            node = Bin(op.text, node, self.unary(), op.column)
        return node

    def unary(self) -> Node:
        if self.token.kind == "op" and self.token.text in ("-", "+"):
            op = self.take()
            operand = self.unary()
            return Neg(operand, op.column) if op.text == "-" else operand
        return self.power()

    def power(self) -> Node:
        base = self.atom()
        if self.token.kind == "op" and self.token.text == "^":
            op = self.take()
            column = self.token.column
            return Pow(base, self.unary(), op.column, column)
        return base

    def atom(self) -> Node:
        token = self.token
        if token.kind == "number":
            self.take()
            value = float(token.text)
            if not abs(value) <= VALUE_LIMIT:
                raise _error(self.text, f"{token.text} is beyond the machine's range (2^1000)", token.column,
                             ErrorCode.LITERAL_RANGE)
            return Num(value, token.column)
        if token.kind == "name":
            if token.text not in FUNCTIONS:
                raise _error(self.text, f"unknown function '{token.text}': the functions are sqrt, exp and log",
                             token.column, ErrorCode.UNKNOWN_FUNCTION)
            self.take()
            if not (self.token.kind == "op" and self.token.text == "("):
                raise self.fail(f"'(' after {token.text}")
            self.take()
            argument = self.expr()
            self.close()
            return Call(token.text, argument, token.column)
        if token.kind == "op" and token.text == "(":
            self.take()
            node = self.expr()
            self.close()
            return node
        raise self.fail("a number, a function or '('")

    def close(self) -> None:
        if not (self.token.kind == "op" and self.token.text == ")"):
            raise self.fail("')'")
        self.take()


def parse(text: str) -> Node:
    """The syntax tree of ``text``, or a FleqError with the column of the mistake."""
    return _Parser(text).parse()


# Evaluation (the expected value, and the domain checks) --------------------------------------------


def evaluate(node: Node, text: str) -> float:
    """The value of ``node`` in Python floats; a FleqError(DOMAIN_ERROR) where a routine's domain ends."""

    def domain(message: str, column: int) -> FleqError:
        return _error(text, message, column, ErrorCode.DOMAIN_ERROR)

    def check(value: float, column: int) -> float:
        if not abs(value) <= VALUE_LIMIT:
            raise domain("the value is beyond the machine's range (|x| <= 2^1000)", column)
        return value

    def walk(node: Node) -> float:  # depth is bounded by the expression's nesting
        if isinstance(node, Num):
            return node.value
        if isinstance(node, Neg):
            return -walk(node.operand)
        if isinstance(node, Bin):
            left, right = walk(node.left), walk(node.right)
            if node.op == "+":
                return check(left + right, node.column)
            if node.op == "-":
                return check(left - right, node.column)
            if node.op == "*":
                return check(left * right, node.column)
            if right == 0:
                raise domain("division by zero", node.column)
            if abs(right) < SMALLEST_NORMAL or abs(left) > 2.0**968:
                raise domain("outside div's domain (|x| <= 2^968, |y| >= 2^-1022)", node.column)
            return check(left / right, node.column)
        if isinstance(node, Call):
            x = walk(node.argument)
            if node.function == "sqrt":
                if x < 0:
                    raise domain(f"sqrt of a negative number ({x!r})", node.column)
                if 0 < x < SMALLEST_NORMAL:
                    raise domain("outside sqrt's domain (x = 0 or x >= 2^-1022)", node.column)
                return math.sqrt(x)
            if node.function == "log":
                if x <= 0:
                    raise domain(f"log of a number <= 0 ({x!r})", node.column)
                if x < SMALLEST_NORMAL:
                    raise domain("outside log's domain (x >= 2^-1022)", node.column)
                return math.log(x)
            if not EXP_RANGE[0] <= x <= EXP_RANGE[1]:
                raise domain(f"exp of {x!r} is outside its domain [-708, 693.1] (e^x <= 2^1000)", node.column)
            return math.exp(x)
        base, exponent = walk(node.base), walk(node.exponent)
        if exponent != int(exponent) or abs(exponent) > 2.0**51:
            raise _error(text, f"the exponent must be a whole number (got {exponent!r})", node.exponent_column,
                         ErrorCode.DOMAIN_ERROR)
        if base == 0 and exponent < 0:
            raise domain("division by zero (0 to a negative power)", node.column)
        try:
            value = base ** int(exponent)
        except (OverflowError, ZeroDivisionError):
            raise domain("the value is beyond the machine's range (|x| <= 2^1000)", node.column) from None
        return check(value, node.column)

    return walk(node)


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

    def emit(self, node: Node, text: str) -> str:
        """The cell that holds ``node``'s value once the code so far has run."""
        if isinstance(node, Num):
            return self.constant(node.value)
        if isinstance(node, Neg):
            operand = self.emit(node.operand, text)
            out = self.temp()
            self.code.append(f"        sub {out}, {self.constant(0.0)}, {operand}")
            return out
        if isinstance(node, Bin):
            left, right = self.emit(node.left, text), self.emit(node.right, text)
            if node.op == "/":
                return self.call("div", [("x", left), ("y", right)])
            if node.op == "*" and _far_from_one(evaluate(node.right, text), evaluate(node.left, text)):
                left, right = right, left  # the factor nearer 1 second
            out = self.temp()
            function = {"+": "add", "-": "sub", "*": "mul"}[node.op]
            self.code.append(f"        {function} {out}, {left}, {right}")
            return out
        if isinstance(node, Call):
            return self.call(node.function, [("x", self.emit(node.argument, text))])
        base = self.emit(node.base, text)
        exponent = self.constant(float(int(evaluate(node.exponent, text))))
        return self.call("pow", [("x", base), ("n", exponent)])


def _far_from_one(a: float, b: float) -> bool:
    """True when |a| is further from 1 (in binary orders of magnitude) than |b|."""

    def distance(x: float) -> float:
        return abs(math.log2(abs(x))) if x else math.inf

    return distance(a) > distance(b)


@dataclass(frozen=True)
class Compiled:
    expression: str
    source: str  # the FLEQ program
    expected: float  # Python's float evaluation


def compile_expression(text: str) -> Compiled:
    """The FLEQ program that computes ``text`` into the cell ``result``, and Python's value of it."""
    if "\n" in text:
        raise _error(text.split("\n")[0], "an expression is one line", len(text.split("\n")[0]) + 1)
    tree = parse(text)
    expected = evaluate(tree, text)
    emitter = _Emitter()
    cell = emitter.emit(tree, text)
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
    from fleqc import api

    compiled = compile_expression(text)
    program = api.compile(compiled.source)
    result = api.run(program, backend=backend, max_steps=max_steps)
    return float(result.memory["result"]), result, compiled


# The command -------------------------------------------------------------------------------------


@click.command("calc")
@click.argument("expression")
@click.option("--emit", is_flag=True, help="Print the generated FLEQ assembly instead of running it.")
@click.option("--backend", "-b", type=click.Choice(["transformer", "reference"]), default="transformer",
              show_default=True, help="Run on the looped transformer or the reference interpreter.")
@click.option("--max-steps", type=click.IntRange(min=0), default=1_000_000, show_default=True,
              help="Stop after this many steps if the program has not halted.")
def calc_command(expression: str, emit: bool, backend: str, max_steps: int) -> None:
    """Compute EXPRESSION on the FLEQ machine: numbers, + - * /, unary minus, parentheses,
    sqrt(x), exp(x), log(x) and x^n for a whole number n (e.g. "sqrt(2)^3 - 1/3")."""
    try:
        compiled = compile_expression(expression)
        if emit:
            click.echo(compiled.source, nl=False)
            return
        from fleqc import api

        program = api.compile(compiled.source)
        result = api.run(program, backend=backend, max_steps=max_steps)
    except FleqError as error:
        click.echo(error.render(), err=True)
        sys.exit(1)
    if not result.halted:
        click.echo(f"stopped after {result.steps} steps without halting (--max-steps {max_steps})", err=True)
        sys.exit(3)
    value = float(result.memory["result"])
    click.echo(repr(value))
    error = abs(value - compiled.expected) / abs(compiled.expected) if compiled.expected else abs(value)
    click.echo(f"({result.backend}, {result.steps} steps; Python's float value {compiled.expected!r}, "
               f"relative difference {error:.1e})", err=True)
