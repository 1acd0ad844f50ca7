"""User-facing errors.

Every mistake in a user's input (source text, command-line values, punch-card files) is raised as a
:class:`FleqError` carrying a stable :class:`ErrorCode` and, where one exists, the source
:class:`Span`. The CLI renders it as ``file:line:col: error[code]: message`` followed by the source
line and a caret, and exits with status 1. Tests assert on ``error.code`` and ``error.span``, never on
the message text.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """A region of a source file; lines and columns are 1-based, ``end_*`` is exclusive."""

    file: str
    line: int
    column: int
    end_line: int | None = None
    end_column: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class ErrorCode(enum.Enum):
    """Stable identifiers of every kind of user error (the value is what users and tests see)."""

    # lexical and syntactic
    UNEXPECTED_CHARACTER = "unexpected-character"
    UNEXPECTED_TOKEN = "unexpected-token"
    UNEXPECTED_END = "unexpected-end"
    # directives
    UNKNOWN_DIRECTIVE = "unknown-directive"
    BAD_DIRECTIVE = "bad-directive"
    UNKNOWN_MACHINE = "unknown-machine"
    BAD_BITS = "bad-bits"
    # instructions and operands
    UNKNOWN_INSTRUCTION = "unknown-instruction"
    UNKNOWN_FUNCTION = "unknown-function"
    OPERAND_COUNT = "operand-count"
    WRONG_SECTION = "wrong-section"
    NOT_IN_MACHINE = "not-in-machine"
    BAD_ROUTINE = "bad-routine"  # .routine/.endroutine/call/ret misused (FLEQ routines)
    # names and values
    UNDEFINED_LABEL = "undefined-label"
    UNDEFINED_NAME = "undefined-name"  # Flow: a variable used above its first assignment
    RECURSION = "recursion"  # Flow: a function that reaches itself (the machine has no stack)
    DUPLICATE_LABEL = "duplicate-label"
    RESERVED_NAME = "reserved-name"  # a user identifier starting with '__' (linker-only names)
    WRONG_KIND = "wrong-kind"
    ADDRESS_RANGE = "address-range"
    LITERAL_RANGE = "literal-range"
    SHAPE_MISMATCH = "shape-mismatch"
    # files and programs
    INCLUDE_NOT_FOUND = "include-not-found"
    INCLUDE_CYCLE = "include-cycle"
    FILE_NOT_FOUND = "file-not-found"
    UNKNOWN_FORMAT = "unknown-format"  # a program file whose suffix names no format fleqc reads
    EMPTY_PROGRAM = "empty-program"
    PROGRAM_TOO_LARGE = "program-too-large"
    BAD_CONFIG = "bad-config"
    # punch cards and weight files
    BAD_CARD = "bad-card"
    BAD_WEIGHTS = "bad-weights"
    BAD_OUTPUT = "bad-output"  # an output path fleqc will not write (fleqc.safe_io)
    MACHINE_MISMATCH = "machine-mismatch"
    # running
    DOMAIN_ERROR = "domain-error"
    OUT_OF_MEMORY = "out-of-memory"  # the machine would need more memory than there is
    ADDRESS_FAULT = "address-fault"  # a classic SUBLEQ program used an address outside its memory


class FleqError(Exception):
    """A user's mistake: a code, a message, and where it happened (when known).

    ``source_line`` is the text of the offending line (without newline) used to draw the caret.
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        span: Span | None = None,
        source_line: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.span = span
        self.source_line = source_line

    def render(self) -> str:
        """The message as the CLI prints it: location, code, message, source line and caret."""
        where = f"{self.span}: " if self.span else ""
        text = f"{where}error[{self.code.value}]: {self.message}"
        if self.span and self.source_line is not None:
            line = _printable(self.source_line.rstrip("\n").expandtabs(1))
            start, width = self.span.column, 1
            if self.span.end_line == self.span.line and self.span.end_column:
                width = max(1, self.span.end_column - self.span.column)
            elif self.span.end_line is None and start == 1:  # only the line is known: underline its statement
                statement = line.split(";")[0].split("#")[0]
                start = len(statement) - len(statement.lstrip()) + 1
                width = max(1, len(statement.strip()))
            caret = " " * (start - 1) + "^" * width
            text += f"\n    {line}\n    {caret}"
        return text

    def __str__(self) -> str:
        return self.render()


def _printable(text: str) -> str:
    """``text`` with every control character (escape sequences included) shown as '?', one column
    each, so a source line cannot drive the terminal and the caret stays aligned."""
    return "".join(c if c.isprintable() else "?" for c in text)


def shown(value) -> str:
    """A number as a user reads it (1.0, -3, nan), never numpy's repr (``np.float64(1.0)``)."""
    try:
        import numpy as np  # already loaded wherever a numpy value can reach a message

        if isinstance(value, np.generic):
            value = value.item()
    except ImportError:  # pragma: no cover
        pass
    return repr(value)
