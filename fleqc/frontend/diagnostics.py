"""Shared helpers for front-end diagnostics: source lines for errors, suggestions, number display;
and the pieces of a syntax error's message that every parser of fleqc shares (the FLEQ language's,
fleqc.frontend.text_to_ast, and Flow's, fleqc.lang.syntax): one home, so both say the same."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from fleqc.errors import ErrorCode, FleqError, Span
from fleqc.frontend import syntax as ast


class Sources:
    """Every file read so far, by display name, to give errors their source line; and the
    ``language`` (:class:`fleqc.frontend.dialect.Language`) they are written in."""

    def __init__(self, language: Any = None) -> None:
        self.files: dict[str, ast.SourceFile] = {}
        self.language = language

    def add(self, source: ast.SourceFile) -> None:
        self.files.setdefault(source.name, source)

    def error(self, code: ErrorCode, message: str, span: Span | None) -> FleqError:
        """A FleqError at ``span`` whose source line comes from the file the span names."""
        source = self.files.get(span.file) if span else None
        line = source.line(span.line) if source and span else None
        return FleqError(code, message, span, line)


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or an empty string."""
    import difflib  # here: only a misspelling's hint needs it (start-up: 6 ms)

    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def show_number(number: int | float) -> str:
    """A number for a message (Python refuses to print ints of more than 4300 digits)."""
    if isinstance(number, int) and number.bit_length() > 64:
        return f"a {number.bit_length()}-bit number"
    return repr(number)


def without_bom(text: str) -> str:
    """``text`` without a leading UTF-8 byte-order mark (not part of the program)."""
    return text[1:] if text.startswith("\ufeff") else text


def line_text(lines: Sequence[str], number: int) -> str | None:
    """Line ``number`` (1-based) of ``lines``, or None past either end."""
    return lines[number - 1] if 1 <= number <= len(lines) else None


def unexpected_character(file: str, lines: Sequence[str], line: int, column: int, strings: bool = True) -> FleqError:
    """UNEXPECTED_CHARACTER at ``line``, ``column``: the character shown (U+XXXX if it does not
    print), text that is not UTF-8 said as such, and (``strings``: a language with strings) a
    quote as an unterminated string."""
    row = line_text(lines, line) or ""
    char = row[column - 1] if 0 < column <= len(row) else "?"
    if char == '"' and strings:
        message = "unterminated string (a string ends with '\"' on the same line)"
    elif char == "\ufffd":
        message = "unexpected character (the file is not valid UTF-8 text)"
    elif char.isprintable():
        message = f"unexpected character '{char}'"
    else:
        message = f"unexpected character U+{ord(char):04X}"
    return FleqError(ErrorCode.UNEXPECTED_CHARACTER, message, Span(file, line, column, line, column + 1),
                     line_text(lines, line))


def expected(names: Iterable[str], words: dict[str, str]) -> str:
    """``; expected a, b or c`` for the terminals ``names`` the parser would have accepted, in
    the order of ``words`` (terminal -> how a message says it); "" if none has a word."""
    order = list(words.values())
    said = sorted({words[name] for name in names if name in words}, key=order.index)
    if not said:
        return ""
    if len(said) == 1:
        return f"; expected {said[0]}"
    return f"; expected {', '.join(said[:-1])} or {said[-1]}"
