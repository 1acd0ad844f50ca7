"""The abstract syntax tree of one source file: frozen dataclasses, each carrying its :class:`Span`.

The tree says what the text *wrote*, already checked for form: every directive is a known one with
the right kind and number of arguments, every identifier is a legal user identifier. Meaning
(which machine, which section, what a name refers to, whether a value fits) is checked by the linker
in :mod:`fleqc.frontend.ast_to_program`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Union

from fleqc.errors import Span

# Expressions ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Integer:
    """An integer literal (`42`, `0x2A`, `0b101010`); ``value`` is never negative."""

    value: int
    span: Span


@dataclass(frozen=True)
class Real:
    """A real literal (`1.5`, `2.`, `.5`, `1e-3`); FLEQ programs only."""

    value: float
    text: str
    span: Span


@dataclass(frozen=True)
class Name:
    """A reference to a label or a constant."""

    name: str
    span: Span


@dataclass(frozen=True)
class Negate:
    """Unary minus."""

    operand: Expr
    span: Span


@dataclass(frozen=True)
class BinaryOp:
    """``left + right`` or ``left - right``."""

    op: Literal["+", "-"]
    left: Expr
    right: Expr
    span: Span


Expr = Union[Integer, Real, Name, Negate, BinaryOp]

# Statements ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Label:
    """``name:``; it names the next data directive or instruction."""

    name: str
    span: Span


@dataclass(frozen=True)
class Instruction:
    """A mnemonic (``subleq``, ``jmp``, a FLEQ function, ...) and its operands, unchecked."""

    mnemonic: str
    operands: tuple[Expr, ...]
    span: Span  # the whole instruction
    mnemonic_span: Span


@dataclass(frozen=True)
class MachineDirective:
    """``.machine NAME``; the name is checked by the linker."""

    machine: str
    span: Span
    machine_span: Span


@dataclass(frozen=True)
class BitsDirective:
    """``.bits N``."""

    bits: Expr
    span: Span


@dataclass(frozen=True)
class IncludeDirective:
    """``.include "path"``."""

    path: str
    span: Span
    path_span: Span


@dataclass(frozen=True)
class ConstDirective:
    """``.const NAME = expr``."""

    name: str
    value: Expr
    span: Span
    name_span: Span


@dataclass(frozen=True)
class SectionDirective:
    """``.data`` or ``.text``."""

    section: Literal["data", "text"]
    span: Span


@dataclass(frozen=True)
class WordDirective:
    """``.word v, ...``: one scalar cell per value."""

    values: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True)
class ZeroDirective:
    """``.zero n``: n scalar cells holding 0."""

    count: Expr
    span: Span


@dataclass(frozen=True)
class VectorDirective:
    """``.vector n v1 ... vn``: one cell holding a vector (no values: a zero vector)."""

    length: Expr
    values: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True)
class MatrixDirective:
    """``.matrix r c v11 v12 ...`` (row-major): one cell holding a matrix (no values: zeros)."""

    rows: Expr
    columns: Expr
    values: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True)
class RoutineDirective:
    """``.routine NAME``: a routine starts; NAME labels its first instruction (FLEQ ``call``/``ret``)."""

    name: str
    span: Span
    name_span: Span


@dataclass(frozen=True)
class EndRoutineDirective:
    """``.endroutine``: the routine opened last ends."""

    span: Span


@dataclass(frozen=True)
class LinkedDirective:
    """``.linked COLUMNS[, CELL]``: the text is a linked program written out (``fleqc disasm``):
    its hidden ``__`` cells are defined in it, nothing is added, and its card has this size."""

    sizes: tuple[Expr, ...]
    span: Span


DataDirective = Union[WordDirective, ZeroDirective, VectorDirective, MatrixDirective]
Directive = Union[
    LinkedDirective,
    MachineDirective,
    BitsDirective,
    IncludeDirective,
    ConstDirective,
    SectionDirective,
    DataDirective,
    RoutineDirective,
    EndRoutineDirective,
]
Statement = Union[Label, Instruction, Directive]

DATA_DIRECTIVES = (WordDirective, ZeroDirective, VectorDirective, MatrixDirective)


@dataclass(frozen=True)
class SourceFile:
    """One parsed file: its display name (used in spans), its text and its statements in order."""

    name: str
    text: str
    statements: tuple[Statement, ...]

    def line(self, number: int) -> str | None:
        """The text of 1-based line ``number`` without its newline, or None past the end."""
        lines = self.text.split("\n")
        return lines[number - 1] if 1 <= number <= len(lines) else None
