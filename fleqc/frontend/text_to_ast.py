"""Text to AST: parse one file with the Lark grammar and build the typed syntax tree.

Guarantees of :func:`parse_source`: it returns a :class:`SourceFile` whose statements are typed
(:mod:`fleqc.frontend.syntax`), whose directives are known directives with arguments of the right
form and number, and whose identifiers are legal user identifiers; or it raises :class:`FleqError`
with the file name, line, column and source line of the offending text. Every exception Lark raises
(``VisitError`` included) is converted; nothing else escapes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Union

from lark import Token, Transformer_NonRecursive
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedToken, VisitError

from fleqc.errors import ErrorCode, FleqError, Span
from fleqc.frontend import syntax as ast
from fleqc.frontend.diagnostics import did_you_mean, expected, line_text, unexpected_character, without_bom
from fleqc.frontend.grammar import parser
from fleqc.program import HIDDEN_PREFIX


def parse_source(text: str, name: str, language: Any = None) -> ast.SourceFile:
    """Parse ``text`` (the contents of the file called ``name``) into a :class:`SourceFile`.
    ``language`` (:class:`fleqc.frontend.dialect.Language`, the machines it may name) makes the
    messages name the machines and recognise their mnemonics."""
    text = without_bom(text)
    lines = text.split("\n")
    try:
        tree = parser().parse(text if text.endswith("\n") else text + "\n")
        statements = _ToAst(name, lines, language).transform(tree)
    except VisitError as exc:
        raise _from_visit_error(exc, name, lines) from None
    except LarkError as exc:
        raise _syntax_error(exc, name, lines, language) from None
    return ast.SourceFile(name, text, tuple(statements))


# Building the AST ----------------------------------------------------------------------------------


class _Text:
    """A string argument of a directive (only ``.include`` takes one)."""

    def __init__(self, value: str, span: Span) -> None:
        self.value, self.span = value, span


class _Assign:
    """A ``NAME = expr`` argument of a directive (only ``.const`` takes one)."""

    def __init__(self, name: str, name_span: Span, value: ast.Expr, span: Span) -> None:
        self.name, self.name_span, self.value, self.span = name, name_span, value, span


_Arg = Union[ast.Expr, _Text, _Assign]
_EXPR_TYPES = (ast.Integer, ast.Real, ast.Name, ast.Negate, ast.BinaryOp)
_REAL_SYNTAX = re.compile(r"[.eE]")


def _join(first: Span, last: Span) -> Span:
    """The span from the start of ``first`` to the end of ``last``."""
    return Span(first.file, first.line, first.column, last.end_line, last.end_column)


class _ToAst(Transformer_NonRecursive):
    """Lark tree to AST nodes (non-recursive, so deeply nested expressions cannot overflow)."""

    def __init__(self, file: str, lines: Sequence[str], language: Any = None) -> None:
        super().__init__(visit_tokens=True)
        self.file = file
        self.lines = lines
        self.language = language
        # a linked program written out (`.linked`, fleqc disasm) names the linker's hidden cells
        self.linked = any(_LINKED.match(line) for line in lines)

    # helpers

    def span(self, token: Token) -> Span:
        return Span(self.file, token.line, token.column, token.end_line, token.end_column)

    def fail(self, code: ErrorCode, message: str, span: Span) -> FleqError:
        return FleqError(code, message, span, line_text(self.lines, span.line))

    # tokens

    def NAME(self, token: Token) -> Token:
        if token.value.startswith(HIDDEN_PREFIX) and not self.linked:
            raise self.fail(
                ErrorCode.RESERVED_NAME,
                f"'{token.value}' is reserved: names starting with '__' belong to the linker",
                self.span(token),
            )
        return token

    def STRING(self, token: Token) -> _Text:
        return _Text(token.value[1:-1], self.span(token))

    # expressions

    def number(self, children: list) -> ast.Expr:
        (token,) = children
        return _number(token.value, self.span(token), self.fail)

    def name(self, children: list) -> ast.Name:
        (token,) = children
        return ast.Name(token.value, self.span(token))

    def neg(self, children: list) -> ast.Negate:
        sign, operand = children
        return ast.Negate(operand, _join(self.span(sign), operand.span))

    def add(self, children: list) -> ast.BinaryOp:
        left, _, right = children
        return ast.BinaryOp("+", left, right, _join(left.span, right.span))

    def sub(self, children: list) -> ast.BinaryOp:
        left, _, right = children
        return ast.BinaryOp("-", left, right, _join(left.span, right.span))

    # statements

    def assign(self, children: list) -> _Assign:
        name, value = children
        return _Assign(name.value, self.span(name), value, _join(self.span(name), value.span))

    def label(self, children: list) -> ast.Label:
        (name,) = children
        span = self.span(name)
        return ast.Label(
            name.value, Span(span.file, span.line, span.column, span.end_line, span.end_column + 1)
        )

    def instruction(self, children: list) -> ast.Instruction:
        mnemonic, *operands = children
        first = self.span(mnemonic)
        span = _join(first, operands[-1].span) if operands else first
        return ast.Instruction(mnemonic.value, tuple(operands), span, first)

    def directive(self, children: list) -> ast.Directive:
        token, *args = children
        return _DirectiveBuilder(self, token, args).build()

    def start(self, children: list) -> list:
        return children


_LINKED = re.compile(r"^\s*\.linked\b")
_PREFIXED = {"0x": ("hexadecimal", "0-9 and a-f"), "0b": ("binary", "0 and 1")}


def _glued_message(glued: str) -> str:
    """What is wrong with a value the lexer read as two glued together: a prefixed literal with a
    digit its base does not have (``0x1G``, ``0b102``), or two values without a separator."""
    base = _PREFIXED.get(glued.lstrip("+-")[:2].lower())
    if base is not None:
        name, digits = base
        return f"'{glued}' is not a valid {name} literal (its digits are {digits})"
    return f"'{glued}' is not a value: separate values with a blank or a comma"


class _DirectiveBuilder:
    """Checks one directive's name and arguments and builds its typed AST node."""

    def __init__(self, owner: _ToAst, token: Token, args: list[_Arg]) -> None:
        self.owner = owner
        self.name = token.value
        self.name_span = owner.span(token)
        self.args = args
        self.span = _join(self.name_span, args[-1].span) if args else self.name_span

    def build(self) -> ast.Directive:
        self._check_separated()
        build = _DIRECTIVES.get(self.name)
        if build is None:
            hint = did_you_mean(self.name, _DIRECTIVES)
            raise self.owner.fail(
                ErrorCode.UNKNOWN_DIRECTIVE, f"unknown directive '{self.name}'{hint}", self.name_span
            )
        return build(self)

    # argument checks

    def _check_separated(self) -> None:
        """Arguments are separated by a blank or a comma: ``1.5.5``, ``12abc`` and ``0x`` are one
        mistyped value, not two values glued together."""
        for before, after in zip(self.args, self.args[1:]):
            if before.span.end_line == after.span.line and before.span.end_column == after.span.column:
                line = line_text(self.owner.lines, after.span.line) or ""
                glued = line[before.span.column - 1:(after.span.end_column or after.span.column + 1) - 1]
                raise self.owner.fail(
                    ErrorCode.UNEXPECTED_TOKEN, _glued_message(glued),
                    Span(before.span.file, before.span.line, before.span.column, after.span.end_line,
                         after.span.end_column),
                )

    def count(self, least: int, most: int | None, what: str) -> None:
        """At least ``least`` and at most ``most`` arguments (``what`` describes them)."""
        if len(self.args) < least:
            raise self.owner.fail(ErrorCode.OPERAND_COUNT, f"'{self.name}' needs {what}", self.span)
        if most is not None and len(self.args) > most:
            extra = self.args[most]
            raise self.owner.fail(
                ErrorCode.OPERAND_COUNT, f"too many arguments: '{self.name}' takes {what}", extra.span
            )

    def expressions(self) -> list[ast.Expr]:
        for arg in self.args:
            if not isinstance(arg, _EXPR_TYPES):
                kind = "a string" if isinstance(arg, _Text) else "'NAME = value'"
                raise self.owner.fail(
                    ErrorCode.BAD_DIRECTIVE, f"'{self.name}' does not take {kind} here", arg.span
                )
        return list(self.args)

    def fold_spaced_minus(self) -> None:
        """For directives that take ONE expression, read ``x -1`` as the subtraction ``x - 1``.

        In argument lists a blank before ``-`` starts a new value (see the grammar); that reading
        only makes sense for directives that take lists.
        """
        folded: list[_Arg] = []
        for arg in self.args:
            if folded and isinstance(arg, ast.Negate) and not self._comma_between(folded[-1], arg):
                folded[-1] = _subtract(folded[-1], arg)
            else:
                folded.append(arg)
        self.args = folded

    def _comma_between(self, before: _Arg, after: _Arg) -> bool:
        line = line_text(self.owner.lines, after.span.line) or ""
        if before.span.end_line != after.span.line:
            return True
        return "," in line[(before.span.end_column or 1) - 1 : after.span.column - 1]


def _subtract(left: _Arg, negated: ast.Negate) -> _Arg:
    """``left - operand`` where ``negated`` is ``-operand``; ``left`` may be ``NAME = expr``."""
    if isinstance(left, _Assign):
        value = _subtract(left.value, negated)
        return _Assign(left.name, left.name_span, value, _join(left.span, negated.span))
    if not isinstance(left, _EXPR_TYPES):
        return left  # a string: left alone, the argument check reports it
    return ast.BinaryOp("-", left, negated.operand, _join(left.span, negated.span))


def _machine(b: _DirectiveBuilder) -> ast.MachineDirective:
    language = b.owner.language
    names = " or ".join(language.names) if language is not None else "its name"
    b.count(1, 1, f"one machine name ({names})")
    (arg,) = b.args
    if not isinstance(arg, ast.Name):
        raise b.owner.fail(ErrorCode.BAD_DIRECTIVE, f"'.machine' takes a machine name: {names}", arg.span)
    return ast.MachineDirective(arg.name, b.span, arg.span)


def _bits(b: _DirectiveBuilder) -> ast.BitsDirective:
    b.fold_spaced_minus()
    b.count(1, 1, "one value (the word width, 2 to 32)")
    (value,) = b.expressions()
    return ast.BitsDirective(value, b.span)


def _include(b: _DirectiveBuilder) -> ast.IncludeDirective:
    b.count(1, 1, 'one file name in quotes, e.g. .include "lib.fleq"')
    (arg,) = b.args
    if not isinstance(arg, _Text):
        raise b.owner.fail(ErrorCode.BAD_DIRECTIVE, "'.include' takes a file name in double quotes", arg.span)
    return ast.IncludeDirective(arg.value, b.span, arg.span)


def _const(b: _DirectiveBuilder) -> ast.ConstDirective:
    b.fold_spaced_minus()
    if b.args and not isinstance(b.args[0], _Assign):
        raise b.owner.fail(ErrorCode.BAD_DIRECTIVE, "'.const' takes 'NAME = value'", b.args[0].span)
    b.count(1, 1, "'NAME = value'")
    (arg,) = b.args
    return ast.ConstDirective(arg.name, arg.value, b.span, arg.name_span)


def _linked(b: _DirectiveBuilder) -> ast.LinkedDirective:
    b.count(0, 2, "at most the card's columns and (FLEQ) its cell size")
    return ast.LinkedDirective(tuple(b.expressions()), b.span)


def _section(b: _DirectiveBuilder) -> ast.SectionDirective:
    b.count(0, 0, "no arguments")
    return ast.SectionDirective("data" if b.name == ".data" else "text", b.span)


def _word(b: _DirectiveBuilder) -> ast.WordDirective:
    b.count(1, None, "at least one value")
    return ast.WordDirective(tuple(b.expressions()), b.span)


def _zero(b: _DirectiveBuilder) -> ast.ZeroDirective:
    b.fold_spaced_minus()
    b.count(1, 1, "one count")
    (count,) = b.expressions()
    return ast.ZeroDirective(count, b.span)


def _vector(b: _DirectiveBuilder) -> ast.VectorDirective:
    b.count(1, None, "a length and then the values")
    length, *values = b.expressions()
    return ast.VectorDirective(length, tuple(values), b.span)


def _matrix(b: _DirectiveBuilder) -> ast.MatrixDirective:
    b.count(2, None, "a row count, a column count and then the values")
    rows, columns, *values = b.expressions()
    return ast.MatrixDirective(rows, columns, tuple(values), b.span)


def _routine(b: _DirectiveBuilder) -> ast.RoutineDirective:
    b.count(1, 1, "one routine name")
    (arg,) = b.args
    if not isinstance(arg, ast.Name):
        raise b.owner.fail(ErrorCode.BAD_DIRECTIVE, "'.routine' takes a routine name", arg.span)
    return ast.RoutineDirective(arg.name, b.span, arg.span)


def _endroutine(b: _DirectiveBuilder) -> ast.EndRoutineDirective:
    b.count(0, 0, "no arguments")
    return ast.EndRoutineDirective(b.span)


_DIRECTIVES: dict[str, Callable[[_DirectiveBuilder], ast.Directive]] = {
    ".machine": _machine,
    ".bits": _bits,
    ".linked": _linked,
    ".include": _include,
    ".const": _const,
    ".data": _section,
    ".text": _section,
    ".word": _word,
    ".zero": _zero,
    ".vector": _vector,
    ".matrix": _matrix,
    ".routine": _routine,
    ".endroutine": _endroutine,
}


def _number(text: str, span: Span, fail: Callable[..., FleqError]) -> ast.Expr:
    """The literal ``text`` as an Integer or a Real node."""
    lowered = text.lower()
    if lowered.startswith(("0x", "0b")):
        return ast.Integer(int(text[2:], 16 if lowered[1] == "x" else 2), span)
    if _REAL_SYNTAX.search(text):
        return ast.Real(float(text), text, span)
    try:
        return ast.Integer(int(text), span)
    except ValueError:  # more digits than Python converts
        raise fail(ErrorCode.LITERAL_RANGE, f"number with {len(text)} digits is too large", span) from None


# Errors --------------------------------------------------------------------------------------------


def _from_visit_error(exc: VisitError, file: str, lines: Sequence[str]) -> FleqError:
    """Our own FleqError raised inside a transformer callback, or any other failure located there."""
    if isinstance(exc.orig_exc, FleqError):
        return exc.orig_exc
    node = exc.obj
    line = getattr(node, "line", None) or getattr(getattr(node, "meta", None), "line", 1)
    column = getattr(node, "column", None) or getattr(getattr(node, "meta", None), "column", 1)
    return FleqError(
        ErrorCode.UNEXPECTED_TOKEN,
        f"cannot read this statement ({exc.orig_exc})",
        Span(file, line, column),
        line_text(lines, line),
    )


def _syntax_error(exc: LarkError, file: str, lines: Sequence[str], language: Any = None) -> FleqError:
    """A located FleqError for a lexer or parser error."""
    if isinstance(exc, UnexpectedCharacters):
        return unexpected_character(file, lines, exc.line, exc.column)
    if isinstance(exc, UnexpectedToken) and exc.token.type not in ("_NL", "$END"):
        return _unexpected_token(exc, file, lines, language)
    if isinstance(exc, UnexpectedToken) and exc.token.type == "_NL":
        line, column = exc.token.line, exc.token.column
        where = "end of line"
    else:  # the end of the text: not reachable with this grammar, handled all the same
        line, column = len(lines), len(lines[-1]) + 1
        where = "end of file"
    wanted = _expected(exc) if isinstance(exc, (UnexpectedToken, UnexpectedEOF)) else ""
    return FleqError(
        ErrorCode.UNEXPECTED_END,
        f"unexpected {where}{wanted}",
        Span(file, line, column),
        line_text(lines, line),
    )


def _unexpected_token(exc: UnexpectedToken, file: str, lines: Sequence[str], language: Any = None) -> FleqError:
    token = exc.token
    row = line_text(lines, token.line) or ""
    message = f"unexpected {_describe_token(token)}{_expected(exc)}"
    words = re.fullmatch(r"\s*([A-Za-z_]\w*)\s+([A-Za-z_]\w*)\s*", row[: token.column - 1])
    if words and not _is_mnemonic(words.group(1), language) and _is_mnemonic(words.group(2), language):
        message += f" (is '{words.group(1)}' a label missing its ':'?)"
    span = Span(file, token.line, token.column, token.end_line, token.end_column)
    return FleqError(ErrorCode.UNEXPECTED_TOKEN, message, span, row)


_WORDS = {
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": "a string",
    "DIRECTIVE": "a directive",
    "_COMMA": "','",
    "_COLON": "':'",
    "_EQUAL": "'='",
    "_LPAR": "'('",
    "_RPAR": "')'",
    "PLUS": "'+'",
    "MINUS": "'-'",
    "NEG": "'-'",
    "_NL": "end of line",
}


def _is_mnemonic(name: str, language: Any) -> bool:
    """An instruction of some machine's dialect: only to recognise `loop subleq a, b` (a label
    without its colon) in messages."""
    return language is not None and language.machine_knowing(name) is not None


def _describe_token(token: Token) -> str:
    kinds = {"NAME": "name", "NUMBER": "number", "STRING": "string", "DIRECTIVE": "directive"}
    if token.type in kinds:
        return f"{kinds[token.type]} '{token.value}'" if token.type != "STRING" else f"string {token.value}"
    return f"'{token.value}'"


def _expected(exc: UnexpectedToken | UnexpectedEOF) -> str:
    """``; expected a, b or c`` from the terminals the parser would have accepted."""
    return expected(getattr(exc, "accepts", None) or exc.expected or set(), _WORDS)