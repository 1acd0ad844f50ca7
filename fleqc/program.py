"""The linked program: what the linker hands to the layout and to the reference interpreters.

Address spaces follow the paper's Harvard layout. Memory cells are numbered 0..m-1 in the order
they appear in ``.data`` sections (included files first, in include order); instructions are
numbered 0..k-1 in ``.text`` order. SUBLEQ operands ``a``, ``b`` and FLEQ operands ``dst``, ``src_a``,
``src_b``, ``flag`` are memory addresses; branch targets are instruction indices.

Values: SUBLEQ cells hold Python ints already reduced to the signed N-bit range
[-2^(N-1), 2^(N-1)-1]. FLEQ cells hold float64 numpy arrays of the cell's shape (() for a scalar,
(k,) for a vector, (r, c) for a matrix).

Names starting with ``__`` are hidden cells the linker creates (the zero cell used by ``halt``,
the constants and dummy cells behind FLEQ sugar); they never clash with user labels (identifiers
cannot start with two underscores) and are not printed as results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Union

import numpy as np

from fleqc.errors import Span

SymbolKind = Literal["data", "code"]

HIDDEN_PREFIX = "__"


@dataclass(frozen=True)
class Cell:
    """One memory cell: its address, initial value and shape."""

    address: int
    value: Union[int, np.ndarray]
    shape: tuple[int, ...] = ()
    span: Span | None = None


@dataclass(frozen=True)
class SubleqInstruction:
    """``mem[b] -= mem[a]; if mem[b] <= 0: pc = target else pc += 1``."""

    index: int
    a: int
    b: int
    target: int
    span: Span | None = None


@dataclass(frozen=True)
class FleqInstruction:
    """``mem[dst] = func(mem[src_a], mem[src_b]); if mem[flag] <= 0: pc = target else pc += 1``.

    Unary functions ignore ``src_b`` (the linker sets it equal to ``src_a``).
    """

    index: int
    func: str
    dst: int
    src_a: int
    src_b: int
    flag: int
    target: int
    span: Span | None = None


Instruction = Union[SubleqInstruction, FleqInstruction]


@dataclass(frozen=True)
class Symbol:
    """A label: data labels name a memory address, code labels an instruction index."""

    name: str
    kind: SymbolKind
    address: int
    shape: tuple[int, ...] = ()
    span: Span | None = None
    length: int = 1  # data labels: how many consecutive cells the label's directives define

    @property
    def hidden(self) -> bool:
        return self.name.startswith(HIDDEN_PREFIX)


def same_value(a: Any, b: Any) -> bool:
    """Exact equality of two cell values: ints, floats, lists of them, numpy vectors and matrices
    (the same shape and every entry equal; a NaN equals a NaN in the same place)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            return False
        if a.dtype.kind in "fc" or b.dtype.kind in "fc":
            return bool(np.array_equal(a, b, equal_nan=True))
        return bool(np.array_equal(a, b))
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b)
                and all(same_value(x, y) for x, y in zip(a, b)))
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    return bool(a == b)


class Memory(dict):
    """Data labels -> values, comparable with ``==``: equal when they have the same labels and every
    value is exactly equal (numpy vectors and matrices too: same shape, every entry), where a plain
    dict of numpy arrays would raise "the truth value of an array is ambiguous"."""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, dict):
            return NotImplemented
        return self.keys() == other.keys() and all(same_value(v, other[k]) for k, v in self.items())

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None  # type: ignore[assignment]  # mutable, as a dict


def values_by_label(symbols: dict[str, "Symbol"], memory) -> Memory:
    """The user-visible data labels (address order) and their values read from ``memory``.

    A label whose ``length`` is 1 maps to its cell's value; a longer one to the list of its cells.
    The mapping compares with ``==`` exactly (:class:`Memory`).
    """
    values = Memory()
    for s in sorted(symbols.values(), key=lambda s: (s.address, s.name)):
        if s.kind == "data" and not s.hidden:
            cells = [memory[s.address + i] for i in range(s.length)]
            values[s.name] = cells[0] if s.length == 1 else cells
    return values


def aliases(symbols: dict[str, "Symbol"]) -> dict[str, str]:
    """Data labels that name a cell another label owns -> that label (``list_end:`` on a line of its
    own before ``n: .word 3`` is another name for ``n``): of the labels at one address, the one
    whose directives define cells owns them (a label of no cells never does); among several, the
    one written last (nearest the directive). The same from a card, whose symbols have no lines."""
    at: dict[int, list[Symbol]] = {}
    for s in symbols.values():
        if s.kind == "data" and not s.hidden:
            at.setdefault(s.address, []).append(s)
    out: dict[str, str] = {}
    for labels in at.values():
        if len(labels) < 2:
            continue
        def place(s: Symbol) -> tuple:
            return (s.span.line, s.span.column) if s.span is not None else (0, 0)
        owner = max(labels, key=lambda s: (s.length > 0, place(s)))
        out.update({s.name: owner.name for s in labels if s is not owner})
    return out


def included_labels(symbols: dict[str, "Symbol"], source_name: str) -> set[str]:
    """Data labels defined in an included file (the stdlib's cells), not in the program itself."""
    return {
        name for name, s in symbols.items()
        if s.kind == "data" and s.span is not None and s.span.file != source_name
    }


# The word widths a program may ask for with ``.bits`` (the SUBLEQ machine's integers), and the default.
MIN_BITS, MAX_BITS = 2, 32
DEFAULT_BITS = 16


@dataclass(frozen=True)
class LinkedProgram:
    """A whole program with includes expanded, labels resolved and addresses checked."""

    machine: str  # the name of a registered machine (fleqc.machines)
    bits: int
    cells: tuple[Cell, ...]
    instructions: tuple[Instruction, ...]
    symbols: dict[str, Symbol] = field(default_factory=dict)
    source_name: str = "<source>"
    # the size of the card it was read from (``.linked``: "columns", FLEQ "cell"), honoured by build
    card_size: dict = field(default_factory=dict, compare=False)

    @property
    def memory_size(self) -> int:
        return len(self.cells)

    def initial_memory(self) -> list:
        """Initial values in address order (ints for SUBLEQ, float64 arrays for FLEQ)."""
        return [cell.value for cell in self.cells]

    def data_labels(self) -> list[Symbol]:
        """User-visible data labels, in address order (the values ``fleqc run`` prints)."""
        labels = [s for s in self.symbols.values() if s.kind == "data" and not s.hidden]
        return sorted(labels, key=lambda s: (s.address, s.name))


def source_files(subject) -> list[str]:
    """The files a program or card was made from (the program and the files it included), as
    recorded in its source name and spans: the inputs that an output of fleqc must never replace."""
    files = {getattr(subject, "source_name", None)}
    files.update(getattr(subject, "instruction_files", None) or ())
    for group in (getattr(subject, "symbols", {}).values(), getattr(subject, "instructions", ()),
                  getattr(subject, "cells", ())):
        files.update(getattr(getattr(item, "span", None), "file", None) for item in group)
    return sorted(f for f in files if isinstance(f, str) and f and not f.startswith("<"))
