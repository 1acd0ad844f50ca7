"""The FLEQ function set: name, arity, shape rule and reference semantics of each function.

This table is shared by the linker (operand counts and shape checks at link time) and the reference
interpreter (semantics). The FLEQ transformer builds one function block per entry.

Shapes: ``()`` scalar, ``(k,)`` vector, ``(r, c)`` matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

Shape = tuple[int, ...]

# Every FLEQ value satisfies |x| <= VALUE_LIMIT: a result beyond it (or inf, NaN) is a domain error,
# on the reference interpreter and on the transformer alike (whose exact gates need the headroom).
VALUE_LIMIT = 2.0**1000


class ShapeError(ValueError):
    """Operand shapes a function cannot take; the linker turns it into a located FleqError."""


class DomainError(ValueError):
    """An operand outside a function's domain (e.g. sqrt of a negative) at run time."""


@dataclass(frozen=True)
class FleqFunction:
    name: str
    arity: int  # 1: mem[dst] = f(mem[a]); 2: mem[dst] = f(mem[a], mem[b])
    result_shape: Callable[[Shape, Optional[Shape]], Shape]
    apply: Callable[[np.ndarray, Optional[np.ndarray]], np.ndarray]
    doc: str
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


FLEQ_FUNCTIONS: dict[str, FleqFunction] = {
    f.name: f
    for f in [
        FleqFunction("add", 2, _same_shape, lambda a, b: a + b, "a + b (same shapes)"),
        FleqFunction("sub", 2, _same_shape, lambda a, b: a - b, "a - b (same shapes)"),
        FleqFunction("mul", 2, _broadcast_scalar, lambda a, b: a * b, "elementwise a * b; a scalar broadcasts"),
        FleqFunction("matmul", 2, _matmul_shape, lambda a, b: np.matmul(a, b), "matrix product a @ b"),
        FleqFunction("transpose", 1, _transpose_shape, lambda a, _: a.T.copy(), "transpose of a"),
        FleqFunction("mov", 1, _elementwise, lambda a, _: a.copy(),
                     "copy of a (into a cell of another size of the same rank: cut or padded with zeros)",
                     resizes=True),
        FleqFunction("relu", 1, _elementwise, lambda a, _: np.maximum(a, 0.0), "max(a, 0) elementwise"),
        FleqFunction("sigmoid", 1, _elementwise, lambda a, _: _sigmoid(a), "1 / (1 + exp(-a)) elementwise"),
        FleqFunction("recip", 1, _elementwise, _checked("recip", lambda x: x != 0, lambda x: 1.0 / x), "1 / a elementwise"),
        FleqFunction("sqrt", 1, _elementwise, _checked("sqrt", lambda x: x >= 0, np.sqrt), "square root elementwise"),
        FleqFunction("exp", 1, _elementwise, lambda a, _: np.exp(a), "e ** a elementwise"),
        FleqFunction("log", 1, _elementwise, _checked("log", lambda x: x > 0, np.log), "natural logarithm elementwise"),
    ]
}
