"""Flow's syntax: the Lark grammar (grammar/flow.lark) parsed with the LALR(1) parser and an
Indenter, and the syntax tree it becomes.

Every node carries the :class:`Span` of its text in the user's file (``span``: where the node
starts, ``at``: the operator or name an error points at), so that every error and every step of a
run is located in the user's source, never in the generated assembly. The tree is built without
recursion (``Transformer_NonRecursive``), so an expression may nest as deeply as memory allows;
the statements nest at most :data:`MAX_BLOCK_DEPTH` blocks deep.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Optional, Union

from lark import Lark, Token, Transformer_NonRecursive
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, VisitError
from lark.indenter import DedentError, Indenter

from fleqc.errors import ErrorCode, FleqError, Span
from fleqc.frontend.diagnostics import expected, line_text, unexpected_character, without_bom
from fleqc.frontend.grammar import cached_lark
from fleqc.resources import flow_grammar_path

MAX_BLOCK_DEPTH = 64  # blocks inside blocks (if inside while inside def ...)
MAX_LINE_LENGTH = 10_000


# The tree ---------------------------------------------------------------------------------------

@dataclass(eq=False)
class Num:
    value: float
    span: Span

    @property
    def at(self) -> Span:
        return self.span


@dataclass(eq=False)
class Name:
    id: str
    span: Span

    @property
    def at(self) -> Span:
        return self.span


@dataclass(eq=False)
class Array:
    """``[e, ...]`` (a vector) or ``[[e, ...], ...]`` (a matrix: every element a row literal)."""

    elements: list
    span: Span

    @property
    def at(self) -> Span:
        return self.span


@dataclass(eq=False)
class Neg:
    operand: "Expr"
    span: Span  # of the minus sign

    @property
    def at(self) -> Span:
        return self.span


@dataclass(eq=False)
class Bin:
    op: str  # + - * / @
    left: "Expr"
    right: "Expr"
    span: Span  # where the expression starts
    at: Span  # the operator


@dataclass(eq=False)
class Pow:
    base: "Expr"
    exponent: "Expr"
    span: Span
    at: Span  # the ** or ^


@dataclass(eq=False)
class Compare:
    op: str  # < <= > >= == !=
    left: "Expr"
    right: "Expr"
    span: Span
    at: Span


@dataclass(eq=False)
class BoolOp:
    op: str  # and, or
    left: "Expr"
    right: "Expr"
    span: Span
    at: Span


@dataclass(eq=False)
class Not:
    operand: "Expr"
    span: Span

    @property
    def at(self) -> Span:
        return self.span


@dataclass(eq=False)
class Call:
    function: str
    args: list
    span: Span  # the function's name

    @property
    def at(self) -> Span:
        return self.span


@dataclass(eq=False)
class Index:
    base: "Expr"
    indices: list
    span: Span
    at: Span  # the [


@dataclass(eq=False)
class Attribute:
    base: "Expr"
    name: str
    span: Span
    at: Span  # the name after the dot


Expr = Union[Num, Name, Array, Neg, Bin, Pow, Compare, BoolOp, Not, Call, Index, Attribute]


@dataclass(eq=False)
class Target:
    name: str
    span: Span
    indices: Optional[list] = None  # v[i] = ...


@dataclass(eq=False)
class Assign:
    targets: list  # of Target
    value: Expr
    span: Span


@dataclass(eq=False)
class AugAssign:
    target: Target
    op: str  # + - * /
    value: Expr
    span: Span
    at: Span


@dataclass(eq=False)
class ExprStmt:
    value: Expr
    span: Span


@dataclass(eq=False)
class Return:
    value: Optional[Expr]
    span: Span


@dataclass(eq=False)
class Simple:
    """pass, break, continue."""

    word: str
    span: Span


@dataclass(eq=False)
class If:
    tests: list  # [(condition, body)] for if and each elif
    orelse: Optional[list]
    span: Span


@dataclass(eq=False)
class While:
    test: Expr
    body: list
    span: Span


@dataclass(eq=False)
class For:
    var: str
    var_span: Span
    args: list  # range's arguments
    body: list
    span: Span


@dataclass(eq=False)
class Def:
    name: str
    params: list  # of (name, span)
    body: list
    span: Span
    name_span: Span


Stmt = Union[Assign, AugAssign, ExprStmt, Return, Simple, If, While, For, Def]


@dataclass
class Module:
    body: list
    file: str
    lines: list = field(default_factory=list)


# Parsing ----------------------------------------------------------------------------------------


class _FlowIndenter(Indenter):
    NL_type = "_NL"
    OPEN_PAREN_types = ["LPAR", "LSQB"]
    CLOSE_PAREN_types = ["RPAR", "RSQB"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8


@functools.cache
def _grammar() -> str:
    return flow_grammar_path().read_text(encoding="utf-8")


@functools.cache
def _file_parser() -> Lark:
    """Flow's parser (cached on disk between processes, as the assembler's: fleqc.frontend.grammar)."""
    return cached_lark(_grammar(), "flow", postlex=_FlowIndenter(), start="start", maybe_placeholders=True)


@functools.cache
def _expression_parser() -> Lark:
    return cached_lark(_grammar(), "flow-expr", start="expr", maybe_placeholders=True)


def _span(file: str, token: Token) -> Span:
    return Span(file, token.line or 1, token.column or 1, token.end_line, token.end_column)


class _ToTree(Transformer_NonRecursive):
    """The Lark tree as Flow nodes, bottom-up without recursion."""

    def __init__(self, file: str, lines: list[str]) -> None:
        super().__init__()
        self.file = file
        self.lines = lines

    def _s(self, token: Token) -> Span:
        return _span(self.file, token)

    def error(self, code: ErrorCode, message: str, span: Span) -> FleqError:
        return FleqError(code, message, span, line_text(self.lines, span.line))

    # expressions
    def number(self, c):
        token = c[0]
        value = float(token)
        if not abs(value) <= 2.0 ** 1000:
            raise self.error(ErrorCode.LITERAL_RANGE, f"{token} is beyond the machine's range (2^1000)", self._s(token))
        return Num(value, self._s(token))

    def name(self, c):
        return Name(str(c[0]), self._s(c[0]))

    def _binary(self, c):
        left, op, right = c
        return Bin(str(op), left, right, left.span, self._s(op))

    add = sub = mul = div = matmul = _binary

    def neg(self, c):
        op, operand = c
        if isinstance(operand, Num):  # -3 is a number, as it is written
            return Num(-operand.value, self._s(op))
        return Neg(operand, self._s(op))

    def pos(self, c):
        op, operand = c
        if isinstance(operand, Num):
            return Num(operand.value, self._s(op))
        return operand

    def pow(self, c):
        base, op, exponent = c
        return Pow(base, exponent, base.span, self._s(op))

    def compare(self, c):
        left, op, right = c
        return Compare(str(op), left, right, left.span, self._s(op))

    def or_(self, c):
        left, op, right = c
        return BoolOp("or", left, right, left.span, self._s(op))

    def and_(self, c):
        left, op, right = c
        return BoolOp("and", left, right, left.span, self._s(op))

    def not_(self, c):
        op, operand = c
        return Not(operand, self._s(op))

    def call(self, c):
        name, _, args, _ = c
        return Call(str(name), args or [], self._s(name))

    def arguments(self, c):
        return [x for x in c if x is not None and not isinstance(x, Token)]

    elements = indices = arguments

    def paren(self, c):
        return c[1]

    def array(self, c):
        lsqb, elements, _ = c
        return Array(elements or [], self._s(lsqb))

    def attribute(self, c):
        base, _, name = c
        return Attribute(base, str(name), base.span, self._s(name))

    def index(self, c):
        base, lsqb, indices, _ = c
        return Index(base, indices, base.span, self._s(lsqb))

    # statements
    def name_target(self, c):
        return Target(str(c[0]), self._s(c[0]))

    def index_target(self, c):
        name, _, indices, _ = c
        return Target(str(name), self._s(name), indices)

    def targets(self, c):
        return [x for x in c if isinstance(x, Target)]

    def assign(self, c):
        targets, _, value = c
        return Assign(targets, value, targets[0].span)

    def augassign(self, c):
        name, op, value = c
        return AugAssign(Target(str(name), self._s(name)), str(op)[0], value, self._s(name), self._s(op))

    def return_stmt(self, c):
        keyword, value = c
        return Return(value, self._s(keyword))

    def pass_stmt(self, c):
        return Simple("pass", self._s(c[0]))

    def break_stmt(self, c):
        return Simple("break", self._s(c[0]))

    def continue_stmt(self, c):
        return Simple("continue", self._s(c[0]))

    def expr_stmt(self, c):
        return ExprStmt(c[0], c[0].span)

    def suite(self, c):
        return [x for x in c if not isinstance(x, Token)]

    def if_stmt(self, c):
        keyword, test, _, body, *rest = c
        tests, orelse = [(test, body)], None
        for clause in rest:
            if clause is None:
                continue
            if clause[0] == "elif":
                tests.append((clause[1], clause[2]))
            else:
                orelse = clause[1]
        return If(tests, orelse, self._s(keyword))

    def elif_clause(self, c):
        _, test, _, body = c
        return ("elif", test, body)

    def else_clause(self, c):
        return ("else", c[2])

    def while_stmt(self, c):
        keyword, test, _, body = c
        return While(test, body, self._s(keyword))

    def for_stmt(self, c):
        keyword, var, _, rng, _, args, _, _, body = c
        if str(rng) != "range":
            raise self.error(ErrorCode.UNEXPECTED_TOKEN, f"a for loop counts over range(...), not {rng}(...)",
                             self._s(rng))
        return For(str(var), self._s(var), args, body, self._s(keyword))

    def parameters(self, c):
        return [(str(t), self._s(t)) for t in c if isinstance(t, Token) and t.type == "NAME"]

    def funcdef(self, c):
        keyword, name, _, params, _, _, body = c
        return Def(str(name), params or [], body, self._s(keyword), self._s(name))

    def start(self, c):
        return [x for x in c if not isinstance(x, Token)]


_WORDS = {
    "NUMBER": "a number", "NAME": "a name", "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'",
    "PLUS": "'+'", "MINUS": "'-'", "STAR": "'*'", "SLASH": "'/'", "POW": "'**'", "AT": "'@'", "COLON": "':'",
    "EQUAL": "'='", "COMMA": "','", "_NL": "a new line", "_INDENT": "an indented block",
}


def syntax_error(exc: LarkError, text: str, file: str, lines: list[str]) -> FleqError:
    """A Lark error as a located FleqError (the assembler's codes)."""
    if isinstance(exc, UnexpectedCharacters):
        return unexpected_character(file, lines, exc.line, exc.column, strings=False)  # Flow has no strings
    if isinstance(exc, DedentError):
        line = _dedent_line(lines)
        return FleqError(ErrorCode.UNEXPECTED_TOKEN, "the indentation does not match any outer block",
                         Span(file, line, 1), line_text(lines, line))
    wanted = expected(getattr(exc, "accepts", None) or getattr(exc, "expected", None) or set(), _WORDS)
    token = getattr(exc, "token", None)
    if token is None or token.type == "$END" or (token.type == "_DEDENT" and token.line is None):
        last = len(lines) or 1
        while last > 1 and not lines[last - 1].strip():
            last -= 1
        column = len((line_text(lines, last) or "").rstrip()) + 1
        what = "expression" if file == "<calc>" else "program"
        return FleqError(ErrorCode.UNEXPECTED_END, f"unexpected end of the {what}{wanted}",
                         Span(file, last, column, last, column + 1), line_text(lines, last))
    line = token.line or 1
    column = token.column or 1
    if token.type == "_INDENT" and token.end_line:  # it borrows the position of the line break before it
        line, column = token.end_line, 1
        return FleqError(ErrorCode.UNEXPECTED_TOKEN, f"unexpected indentation{wanted}",
                         Span(file, line, 1, line, max(2, token.end_column or 2)), line_text(lines, line))
    if token.type == "_NL":
        what = "end of the line"
    elif token.type == "_INDENT":
        what = "indentation"
    elif token.type == "_DEDENT":
        what = "end of the block"
    else:
        what = f"'{token}'"
    return FleqError(ErrorCode.UNEXPECTED_TOKEN, f"unexpected {what}{wanted}",
                     Span(file, line, column, line, column + max(1, len(str(token).split(chr(10))[0]))),
                     line_text(lines, line))


def _dedent_line(lines: list[str]) -> int:
    """The first line whose indentation matches no enclosing block (for the DedentError's span)."""
    stack = [0]
    for number, row in enumerate(lines, 1):
        stripped = row.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(row.expandtabs(8)) - len(row.expandtabs(8).lstrip())
        if indent > stack[-1]:
            stack.append(indent)
            continue
        while indent < stack[-1]:
            stack.pop()
        if indent != stack[-1]:
            return number
    return max(1, len(lines))


def _check_lines(text: str, file: str, lines: list[str]) -> None:
    for number, row in enumerate(lines, 1):
        if len(row) > MAX_LINE_LENGTH:
            raise FleqError(ErrorCode.UNEXPECTED_TOKEN, f"line {number} is longer than {MAX_LINE_LENGTH} characters",
                            Span(file, number, 1), row[:200])
    if "\0" in text:
        index = text.index("\0")
        line = text.count("\n", 0, index) + 1
        column = index - (text.rfind("\n", 0, index) + 1) + 1
        raise FleqError(ErrorCode.UNEXPECTED_CHARACTER, "unexpected character U+0000", Span(file, line, column),
                        line_text(lines, line))


def _check_depth(body: list, file: str, lines: list[str]) -> None:
    """Blocks nest at most MAX_BLOCK_DEPTH deep (the compiler walks statements recursively)."""
    stack = [(body, 0)]
    while stack:
        statements, depth = stack.pop()
        for statement in statements:
            blocks = []
            if isinstance(statement, If):
                blocks = [b for _, b in statement.tests] + ([statement.orelse] if statement.orelse else [])
            elif isinstance(statement, (While, For, Def)):
                blocks = [statement.body]
            for block in blocks:
                if depth + 1 > MAX_BLOCK_DEPTH:
                    raise FleqError(ErrorCode.UNEXPECTED_TOKEN, f"blocks nest more than {MAX_BLOCK_DEPTH} deep",
                                    statement.span, line_text(lines, statement.span.line))
                stack.append((block, depth + 1))


def _normalize(text: str) -> str:
    return without_bom(text).replace("\r\n", "\n").replace("\r", "\n")


def parse_module(text: str, file: str) -> Module:
    """The syntax tree of a Flow program, or a located FleqError."""
    text = _normalize(text)
    lines = text.split("\n")
    _check_lines(text, file, lines)
    source = text if text.endswith("\n") else text + "\n"
    try:
        tree = _file_parser().parse(source)
        body = _ToTree(file, lines).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, FleqError):
            raise exc.orig_exc from None
        raise
    except (LarkError, UnexpectedInput) as exc:
        raise syntax_error(exc, text, file, lines) from None
    _check_depth(body, file, lines)
    return Module(body, file, lines)


def parse_expression(text: str, file: str = "<calc>") -> Expr:
    """One expression (the subset `fleqc calc` compiles), or a located FleqError."""
    lines = [text]
    try:
        tree = _expression_parser().parse(text)
        return _ToTree(file, lines).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, FleqError):
            raise exc.orig_exc from None
        raise
    except (LarkError, UnexpectedInput) as exc:
        raise syntax_error(exc, text, file, lines) from None
