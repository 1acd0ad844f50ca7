"""An assembler for Mazonka's sqasm dialect of SUBLEQ (``.sq``, ``.asq``): text to a SubleqImage.

The dialect is that of Oleg Mazonka's ``sqasm`` (2006/2009; the same assembler sits in his Higher
Subleq compiler), and the corpus's ``*.sqasm_image.dec`` files, made by sqasm, are reproduced word
for word. The grammar is ``grammar/sqasm.lark``; what it means:

* A program is a list of instructions, each ended by a newline or ``;``. An instruction is a list of
  items, each one or more words placed at consecutive addresses from 0. An instruction line of one
  item ``a`` assembles as ``a a ?``, of two items ``a b`` as ``a b ?``, of three or more as written.
  A line starting with ``.`` is data: its items are placed as written.
* An item is an expression or a string. A string ``"..."`` is one word per byte of its UTF-8 text,
  with the escapes ``\\n \\\\ \\" \\' \\0``. An expression is built from decimal numbers, labels,
  character constants (``'a'``, same escapes), ``?``, ``+``, ``-`` (binary and unary) and
  parentheses. ``?`` is the address after the item's own word: in the A slot it is the address of
  B, in the C slot that of the next instruction. The copy that completes ``a`` to ``a a ?`` is a
  copy of the word: its ``?`` is the first word's (``?+11`` on its own line is ``x x ?`` with both
  ``x`` = the address of the second word + 11, as sqasm has it).
* Blanks around ``+`` and ``-`` are skipped: ``a -1`` is the one item a-1; ``(-1)`` is a literal.
* ``name:`` before an item labels its (first) word; labels on a line of their own label the next
  item written in the text, on whatever line; labels after the last item label the address just past
  the image. A label defined twice is an error.
* ``#`` starts a comment that runs to the end of the line.

Every value is computed exactly, with all labels known (a second pass), and must fit the caller's
word width (:func:`fleqc.machines.classic.image.word_range`); every mistake is a FleqError with the file,
line, column and source line.

Where this assembler and sqasm differ, on purpose:

* sqasm loses a unary minus and parentheses applied to a label defined further down (``x:-y y:5``
  gives ``1 5``, not ``-1 5``: it keeps a forward reference as text, without the sign). Here ``-y``
  is minus y wherever ``y`` is defined. No corpus program needs the quirk: every ``-`` in the corpus
  sources is applied to ``?``, a number or a label already defined (``sp:-sp`` in 09), and all
  their images are reproduced with the mathematical meaning.
* sqasm warns about an undefined label and writes ``#name`` into its output; here it is an error
  (with the closest defined label as a suggestion). So is an unknown escape, which sqasm warns about.
* sqasm cuts every line at its first ``#``, even inside a string (``"#1"``); here a ``#`` between
  quotes is text.
* Numbers are decimal only, as in sqasm, and ``0x1F`` or ``12ab`` are refused rather than read as
  two items.
* The Higher Subleq extensions (``[N]`` for N zero words, ``@`` in names) are not read.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput

from fleqc.errors import ErrorCode, FleqError, Span
from fleqc.frontend.diagnostics import did_you_mean
from fleqc.frontend.grammar import cached_lark
from fleqc.machines.classic.image import MAX_DIGITS, SubleqImage, check_word, word_range
from fleqc.resources import grammar_path

ESCAPES = {"n": "\n", "\\": "\\", '"': '"', "'": "'", "0": "\0"}
_ESCAPE = re.compile(r"\\(.)|[^\\]")


@functools.cache
def parser() -> Lark:
    """The LALR(1) parser of ``grammar/sqasm.lark`` (which sits next to the assembly grammar)."""
    return cached_lark(grammar_path().with_name("sqasm.lark").read_text(encoding="utf-8"), "sqasm",
                       lexer="contextual", propagate_positions=True, maybe_placeholders=False)


@dataclass(frozen=True)
class Expr:
    """An item's expression in the only form ``+`` and ``-`` can give it:
    ``constant + here * ? + sum(coefficient * label)``, with where each label was named."""

    constant: int
    here: int
    labels: tuple[tuple[str, int, Span], ...]


@dataclass(frozen=True)
class Word:
    """One word of the image before labels are known: ``expr``, in which ``?`` stands for
    ``question`` (the item's own address + 1; a completing copy keeps its original's). ``span`` is
    the item that wrote it; for the ``?`` that completes ``a b``, which no text wrote (``written``
    is False), the span of ``b``, for messages."""

    expr: Expr
    question: int
    span: Span
    written: bool = True


def assemble(text: str, *, name: str = "<sqasm>", bits: int) -> SubleqImage:
    """Assemble sqasm ``text`` (the file called ``name`` in messages) for ``bits``-bit words."""
    word_range(bits)  # refuse a bad width before reading anything
    text = text.removeprefix("\ufeff")
    lines = text.split("\n")
    try:
        tree = parser().parse(text + "\n")
    except LarkError as exc:
        raise _syntax_error(exc, name, lines) from None
    layout = _Layout(name, lines)
    for instruction in tree.children:
        layout.place(instruction)
    layout.end()
    if not layout.words:
        raise FleqError(ErrorCode.EMPTY_PROGRAM, "the program assembles to no words", Span(name, 1, 1), lines[0])
    values = tuple(layout.value(word, bits) for word in layout.words)
    origins = tuple(word.span if word.written else None for word in layout.words)
    return SubleqImage(values, dict(layout.labels), name, origins)


class _Layout:
    """Both passes: :meth:`place` gives every word its address and expression and every label its
    address (the first pass); :meth:`value` evaluates a word once all labels are known (the second)."""

    def __init__(self, file: str, lines: Sequence[str]) -> None:
        self.file, self.lines = file, lines
        self.words: list[Word] = []
        self.labels: dict[str, int] = {}
        self.label_spans: dict[str, Span] = {}
        self.pending: list[Token] = []  # labels waiting for the next item

    def place(self, instruction: Tree) -> None:
        """Place one instruction's items, then complete a non-data instruction of one or two words."""
        start = len(self.words)
        elements = instruction.children
        data = bool(elements) and isinstance(elements[0], Token) and elements[0].type == "DOT"
        for element in elements[1:] if data else elements:
            if isinstance(element, Token) and element.type == "LABEL":
                self.pending.append(element)
            elif isinstance(element, Token) and element.type == "STRING":
                for value, span in _string_bytes(element, self.file, self.lines):
                    self._add(Word(Expr(value, 0, ()), 0, span))
            else:
                span = _span(element, self.file)
                self._add(Word(_expression(element, self.file, self.lines), len(self.words) + 1, span))
        count = len(self.words) - start
        if not data and count == 1:
            self.words.append(self.words[-1])
        if not data and count in (1, 2):
            self.words.append(Word(Expr(len(self.words) + 1, 0, ()), 0, self.words[-1].span, written=False))

    def end(self) -> None:
        """Labels after the last item name the address just past the image."""
        self._define_pending()

    def _add(self, word: Word) -> None:
        self._define_pending()
        self.words.append(word)

    def _define_pending(self) -> None:
        for token in self.pending:
            label, span = token.value[:-1], _span(token, self.file, width=len(token.value) - 1)
            if label in self.labels:
                first = self.label_spans[label]
                raise self._error(ErrorCode.DUPLICATE_LABEL,
                                  f"label '{label}' is already defined (line {first.line})", span)
            self.labels[label], self.label_spans[label] = len(self.words), span
        self.pending.clear()

    def value(self, word: Word, bits: int) -> int:
        """The second pass: the word's value, all labels known, checked to fit a word."""
        total = word.expr.constant + word.expr.here * word.question
        for label, coefficient, span in word.expr.labels:
            if label not in self.labels:
                raise self._error(ErrorCode.UNDEFINED_LABEL,
                                  f"undefined label '{label}'{did_you_mean(label, self.labels)}", span)
            total += coefficient * self.labels[label]
        return check_word(total, bits, word.span, _line(self.lines, word.span))

    def _error(self, code: ErrorCode, message: str, span: Span) -> FleqError:
        return FleqError(code, message, span, _line(self.lines, span))


def _expression(node: Tree | Token, file: str, lines: Sequence[str]) -> Expr:
    """The linear form of an expression tree, walked with an explicit stack (no recursion, so any
    nesting depth is fine): each leaf adds its value times the product of the signs above it."""
    constant = here = 0
    labels: list[tuple[str, int, Span]] = []
    stack: list[tuple[Tree | Token, int]] = [(node, 1)]
    while stack:
        item, sign = stack.pop()
        if isinstance(item, Tree):
            if item.data == "neg":
                stack.append((item.children[1], -sign))
            else:  # add, sub: [left, operator, right]
                left, _, right = item.children
                stack.append((right, -sign if item.data == "sub" else sign))
                stack.append((left, sign))
        elif item.type == "NAME":
            labels.append((item.value, sign, _span(item, file)))
        elif item.type == "HERE":
            here += sign
        elif item.type == "CHAR":
            (value, _), *more = _string_bytes(item, file, lines)
            if more:
                raise FleqError(ErrorCode.UNEXPECTED_TOKEN,
                                f"the character constant {item.value} is more than one byte", _span(item, file),
                                _line(lines, _span(item, file)))
            constant += sign * value
        else:
            constant += sign * _number(item, file, lines)
    return Expr(constant, here, tuple(labels))


def _number(token: Token, file: str, lines: Sequence[str]) -> int:
    span = _span(token, file)
    if not token.value.isdigit():
        raise FleqError(ErrorCode.UNEXPECTED_TOKEN,
                        f"'{token.value}' is not a number: sqasm numbers are decimal digits only", span,
                        _line(lines, span))
    if len(token.value) > MAX_DIGITS:
        raise FleqError(ErrorCode.LITERAL_RANGE, f"a number of {len(token.value)} digits does not fit a word",
                        span, _line(lines, span))
    return int(token.value)


def _string_bytes(token: Token, file: str, lines: Sequence[str]) -> list[tuple[int, Span]]:
    """The bytes between the quotes of a string or character token, escapes decoded, each with the
    span of the character it comes from."""
    result = []
    for match in _ESCAPE.finditer(token.value, 1, len(token.value) - 1):
        column = token.column + match.start()
        span = Span(file, token.line, column, token.line, column + len(match.group()))
        escaped = match.group(1)
        if escaped is not None and escaped not in ESCAPES:
            known = " ".join("\\" + key for key in ESCAPES)
            raise FleqError(ErrorCode.UNEXPECTED_CHARACTER,
                            f"unknown escape '\\{escaped}' (the escapes are {known})", span, _line(lines, span))
        char = ESCAPES[escaped] if escaped is not None else match.group()
        result.extend((byte, span) for byte in char.encode("utf-8"))
    return result


def _span(node: Tree | Token, file: str, width: int | None = None) -> Span:
    where = node.meta if isinstance(node, Tree) else node
    if width is not None:
        return Span(file, where.line, where.column, where.line, where.column + width)
    return Span(file, where.line, where.column, where.end_line, where.end_column)


def _line(lines: Sequence[str], span: Span) -> str | None:
    return lines[span.line - 1] if 1 <= span.line <= len(lines) else None


# Syntax errors -------------------------------------------------------------------------------------

_WORDS = {"NUMBER": "a number", "NAME": "a label", "HERE": "'?'", "CHAR": "a character constant",
          "STRING": "a string", "LABEL": "a label definition", "MINUS": "'-'", "_LPAR": "'('", "_RPAR": "')'"}


def _syntax_error(exc: LarkError, file: str, lines: Sequence[str]) -> FleqError:
    """A located FleqError for a lexer or parser error."""
    if not isinstance(exc, UnexpectedInput):  # not raised for any text; handled all the same
        return FleqError(ErrorCode.UNEXPECTED_TOKEN, f"cannot read the program ({exc})", Span(file, 1, 1))
    line = min(max(exc.line, 1), len(lines))
    column = max(exc.column, 1)
    span = Span(file, line, column, line, column + 1)
    if isinstance(exc, UnexpectedCharacters):
        return FleqError(ErrorCode.UNEXPECTED_CHARACTER, _character_message(lines[line - 1], column), span,
                         lines[line - 1])
    token = getattr(exc, "token", None)
    expected = sorted({_WORDS[name] for name in getattr(exc, "expected", ()) or () if name in _WORDS})
    wanted = f"; expected {', '.join(expected)}" if expected else ""
    if token is None or token.type in ("_SEP", "$END"):
        where = "';'" if token is not None and token.value == ";" else "end of line"
        return FleqError(ErrorCode.UNEXPECTED_END, f"unexpected {where}{wanted}", span, lines[line - 1])
    message = f"unexpected '{token.value}'{wanted}"
    if token.type == "DOT":
        message = "'.' marks a data line: it may only start an instruction"
    return FleqError(ErrorCode.UNEXPECTED_TOKEN, message, Span(file, line, column, token.end_line, token.end_column),
                     lines[line - 1])


def _character_message(line: str, column: int) -> str:
    char = line[column - 1] if column - 1 < len(line) else "?"
    if char == '"':
        return "unterminated string (a string ends with '\"' on the same line)"
    if char == "'":
        return "bad character constant (one character or escape between single quotes, as in 'a' or '\\n')"
    if char == ":":
        return "':' must follow a label's name directly (as in 'loop:')"
    return f"unexpected character '{char}'" if char.isprintable() else f"unexpected character U+{ord(char):04X}"
