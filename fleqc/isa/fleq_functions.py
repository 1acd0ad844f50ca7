"""The FLEQ function set: name, arity, shape rule and reference semantics of each function.

This table is shared by the linker (operand counts and shape checks at link time), the reference
interpreter (semantics), the card builder (the lowering onto a function block and operand views),
the health check (the machine's windows) and the tests (the error bounds): adding a function is
adding one record, plus its block in fleqc.construct.fleq_machine if no block computes it yet.

Shapes: ``()`` scalar, ``(k,)`` vector, ``(r, c)`` matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from fleqc.machine.fleq_layout import EXP_MAX, FIT_LADDER, PRODUCT_LADDER

Shape = tuple[int, ...]

# Every FLEQ value satisfies |x| <= VALUE_LIMIT: a result beyond it (or inf, NaN) is a domain error,
# on the reference interpreter and on the transformer alike (whose exact gates need the headroom).
VALUE_LIMIT = 2.0**1000


class ShapeError(ValueError):
    """Operand shapes a function cannot take; the linker turns it into a located FleqError."""


class DomainError(ValueError):
    """An operand outside a function's domain (e.g. sqrt of a negative) at run time."""


@dataclass(frozen=True)
class Window:
    """The entries of one operand a machine block accepts; outside, the block raises its fault row
    and the run stops with a ``domain-error`` (fleqc.machine.fleq_domains explains it)."""

    operand: str  # "a" or "b"
    inside: Callable[[np.ndarray], np.ndarray]  # elementwise: True where the entry is accepted
    words: str  # the window as the message states it


@dataclass(frozen=True)
class ErrorBound:
    """How far the machine's result may lie from the reference's, entry by entry:
    ``|got - expected| <= relative * scale + absolute`` with ``scale = |expected|`` (or, with
    ``componentwise``, ``|a| @ |b|``: a sum of products may cancel). All zero: bit-exact."""

    relative: float = 0.0
    absolute: float = 0.0
    componentwise: bool = False

    @property
    def exact(self) -> bool:
        return self.relative == 0.0 and self.absolute == 0.0


EXACT = ErrorBound()
TINY = 1e-300  # results below this in magnitude (subnormals) are compared absolutely


@dataclass(frozen=True)
class FleqFunction:
    """Everything fleqc knows about one FLEQ function, in one record.

    Reference semantics (``arity``, ``result_shape``, ``apply``); the lowering onto the machine
    (``block``: the function block of the FLEQ machine it runs on, one of
    fleqc.machine.fleq_layout.OPS; ``views(a, b)``: the operand views chosen from the operand
    shapes, all within ``view_set``); the machine's domain (``window``, None: every value up to
    2^1000) and its ``bound`` against the reference. The FLEQ machine refuses to register a table
    whose blocks it does not build (fleqc.machines.fleq).
    """

    name: str
    arity: int  # 1: mem[dst] = f(mem[a]); 2: mem[dst] = f(mem[a], mem[b])
    result_shape: Callable[[Shape, Optional[Shape]], Shape]
    apply: Callable[[np.ndarray, Optional[np.ndarray]], np.ndarray]
    doc: str
    block: str
    views: Callable[[Shape, Shape], tuple[str, ...]]
    view_set: frozenset[str]
    bound: ErrorBound = EXACT
    window: Optional[Window] = None
    resizes: bool = False  # mov: the destination may be another size of the same rank (see fit_shape)

    def gives(self, result: Shape, dst: Shape) -> bool:
        """Whether a result of shape ``result`` may be stored in a destination of shape ``dst``."""
        return result == dst or (self.resizes and len(result) == len(dst))


def fit_shape(value: np.ndarray, shape: Shape) -> np.ndarray:
    """``value`` cut to ``shape`` (same rank) or padded with zeros: its top-left block is kept. This
    is how a small vector or matrix is passed to a routine written for the machine's whole cell."""
    out = np.zeros(shape, dtype=np.float64)
    block = tuple(slice(0, min(n, m)) for n, m in zip(value.shape, shape))
    out[block] = value[block]
    return out


def _same_shape(a: Shape, b: Optional[Shape]) -> Shape:
    if a != b:
        raise ShapeError(f"operands must have the same shape, got {a} and {b}")
    return a


def _broadcast_scalar(a: Shape, b: Optional[Shape]) -> Shape:
    if a == b or b == ():
        return a
    if a == ():
        return b  # type: ignore[return-value]
    raise ShapeError(f"operands must have the same shape or one must be a scalar, got {a} and {b}")


def _elementwise(a: Shape, b: Optional[Shape]) -> Shape:
    return a


def _matmul_shape(a: Shape, b: Optional[Shape]) -> Shape:
    assert b is not None
    if len(a) == 0 or len(b) == 0:
        raise ShapeError(f"matmul needs vectors or matrices, got {a} and {b}")
    if a[-1] != b[0]:
        raise ShapeError(f"matmul inner dimensions differ: {a} @ {b}")
    return a[:-1] + b[1:]


def _transpose_shape(a: Shape, b: Optional[Shape]) -> Shape:
    return tuple(reversed(a))


def _checked(name: str, ok: Callable[[np.ndarray], np.ndarray], f: Callable[[np.ndarray], np.ndarray]):
    def apply(x: np.ndarray, _unused: Optional[np.ndarray]) -> np.ndarray:
        if not np.all(ok(x)):
            raise DomainError(f"{name} of a value outside its domain: {x.tolist()}")
        return f(x)

    return apply


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-x) with full relative precision in both tails (e^x / (1 + e^x) for x < 0)."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _entrywise(a: Shape, b: Shape) -> tuple[str, ...]:
    return ("a_entry", "b_entry")


def _unary(a: Shape, b: Shape) -> tuple[str, ...]:
    return ("a_entry",)


def _transpose_views(a: Shape, b: Shape) -> tuple[str, ...]:
    return ("a_transposed",) if len(a) == 2 else ("a_entry",)  # a vector is its own transpose


def _mul_views(a: Shape, b: Shape) -> tuple[str, ...]:
    if a == () and b != ():
        return ("a_scalar", "b_entry")
    if b == () and a != ():
        return ("a_entry", "b_scalar")
    return ("a_entry", "b_entry")


def _matmul_views(a: Shape, b: Shape) -> tuple[str, ...]:
    """Lane (i, j) sums over k: M @ M and v @ M read A[i, k] B[k, j]; M @ v reads A[j, k] B[i, k]
    and v @ v A[i, k] B[i, k] (vectors are stored as row 0)."""
    if len(a) == 2 and len(b) == 1:
        return ("m_a_row_j", "m_b_row_i")
    return ("m_a_row_i", "m_b_col_j" if len(b) == 2 else "m_b_row_i")


# The machine's windows (docs/fleq-machine.md, "Domains and faults"): the fitted blocks take
# 2^-81 < |x| <= 2^81, the products a factor |b| <= 2^96, exp x <= EXP_MAX (e^x <= 2^1000).
_FIT_LO, _FIT_HI = FIT_LADDER.tau(FIT_LADDER.lo), FIT_LADDER.tau(FIT_LADDER.hi)
_PROD_HI = PRODUCT_LADDER.tau(PRODUCT_LADDER.hi)
_PRODUCT_WINDOW = Window("b", lambda x: np.abs(x) <= _PROD_HI, "|b| <= 2^96 (the factor that enters the score)")

_ENTRY, _A = frozenset({"a_entry", "b_entry"}), frozenset({"a_entry"})
FLEQ_FUNCTIONS: dict[str, FleqFunction] = {
    f.name: f
    for f in [
        FleqFunction("add", 2, _same_shape, lambda a, b: a + b, "a + b (same shapes)", "add", _entrywise, _ENTRY),
        FleqFunction("sub", 2, _same_shape, lambda a, b: a - b, "a - b (same shapes)", "sub", _entrywise, _ENTRY),
        FleqFunction("mul", 2, _broadcast_scalar, lambda a, b: a * b, "elementwise a * b; a scalar broadcasts",
                     "prod", _mul_views, frozenset({"a_entry", "a_scalar", "b_entry", "b_scalar"}),
                     ErrorBound(1e-9, TINY), _PRODUCT_WINDOW),
        FleqFunction("matmul", 2, _matmul_shape, lambda a, b: np.matmul(a, b), "matrix product a @ b",
                     "prod", _matmul_views, frozenset({"m_a_row_i", "m_a_row_j", "m_b_col_j", "m_b_row_i"}),
                     ErrorBound(1e-9, TINY, componentwise=True), _PRODUCT_WINDOW),
        FleqFunction("transpose", 1, _transpose_shape, lambda a, _: a.T.copy(), "transpose of a",
                     "copy", _transpose_views, frozenset({"a_entry", "a_transposed"})),
        FleqFunction("mov", 1, _elementwise, lambda a, _: a.copy(),
                     "copy of a (into a cell of another size of the same rank: cut or padded with zeros)",
                     "copy", _unary, _A, resizes=True),
        FleqFunction("relu", 1, _elementwise, lambda a, _: np.maximum(a, 0.0), "max(a, 0) elementwise",
                     "relu", _unary, _A),
        FleqFunction("sigmoid", 1, _elementwise, lambda a, _: _sigmoid(a), "1 / (1 + exp(-a)) elementwise",
                     "sigmoid", _unary, _A, ErrorBound(1e-13, TINY)),
        FleqFunction("recip", 1, _elementwise, _checked("recip", lambda x: x != 0, lambda x: 1.0 / x),
                     "1 / a elementwise", "recip", _unary, _A, ErrorBound(1e-6, TINY),
                     Window("a", lambda x: (np.abs(x) > _FIT_LO) & (np.abs(x) <= _FIT_HI), "2^-81 < |x| <= 2^81")),
        FleqFunction("sqrt", 1, _elementwise, _checked("sqrt", lambda x: x >= 0, np.sqrt), "square root elementwise",
                     "sqrt", _unary, _A, ErrorBound(1e-6, TINY),
                     Window("a", lambda x: (x == 0) | ((x > _FIT_LO) & (x <= _FIT_HI)), "x = 0 or 2^-81 < x <= 2^81")),
        FleqFunction("exp", 1, _elementwise, lambda a, _: np.exp(a), "e ** a elementwise",
                     "exp", _unary, _A, ErrorBound(1e-12, TINY),
                     Window("a", lambda x: x <= EXP_MAX, f"x <= {EXP_MAX:.6g}")),
        FleqFunction("log", 1, _elementwise, _checked("log", lambda x: x > 0, np.log), "natural logarithm elementwise",
                     "log", _unary, _A, ErrorBound(1e-6, 1e-13),
                     Window("a", lambda x: (x > _FIT_LO) & (x <= _FIT_HI), "2^-81 < x <= 2^81")),
    ]
}
