"""Shared helpers for front-end diagnostics: source lines for errors, suggestions, number display."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
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
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def show_number(number: int | float) -> str:
    """A number for a message (Python refuses to print ints of more than 4300 digits)."""
    if isinstance(number, int) and number.bit_length() > 64:
        return f"a {number.bit_length()}-bit number"
    return repr(number)
