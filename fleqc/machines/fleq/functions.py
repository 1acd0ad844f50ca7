"""The FLEQ function set: name, arity, shape rule and reference semantics of each function.

This table is shared by the linker (operand counts and shape checks at link time), the reference
interpreter (semantics), the card builder (the lowering onto a function block and operand views),
the health check, the calculator and the docs (the value windows: ``limits``) and the tests (the
error bounds): adding a function is
adding one record, plus its block in fleqc.machines.fleq.weights if no block computes it yet.

Shapes: ``()`` scalar, ``(k,)`` vector, ``(r, c)`` matrix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Optional

import numpy as np

from fleqc.machines.fleq import tables as fleq_tables
from fleqc.machines.fleq.windows import EXP_MAX, MULERR_B, SMALL_X, TABLE_LADDER

Shape = tuple[int, ...]

# Every FLEQ value satisfies |x| <= VALUE_LIMIT: the result limits below keep results inside it on
# both backends (the transformer's exact gates need the headroom up to 2^1020).
VALUE_LIMIT = 2.0**1000


class ShapeError(ValueError):
    """Operand shapes a function cannot take; the linker turns it into a located FleqError."""


@dataclass(frozen=True)
class Limit:
    """One condition a function's operands must meet, on both backends alike: outside it the step is
    a ``domain-error`` in the reference interpreter and in the transformer run.

    ``inside(a, b)`` is elementwise over ``checks``: operand "a", operand "b" or the "result" (a
    result limit is stated on the operands, e.g. |a * b| <= 2^1000, so both backends decide it on
    the same bits: the machine's own product may round to the other side of the limit).
    ``by_weights``: the machine's fault row (set in the select layer) refuses every value outside
    this limit by itself; otherwise the health check after the pass refuses it from the operands it
    read (fleqc.machines.fleq.runs), because no exact gate of the weights can tell those values apart.
    """

    checks: str  # "a", "b" or "result"
    inside: Callable[[np.ndarray, Optional[np.ndarray]], np.ndarray]
    words: str  # the limit as messages and docs state it
    by_weights: bool


@dataclass(frozen=True)
class ErrorBound:
    """How far the machine's result may lie from the reference's, entry by entry:
    ``|got - expected| <= relative * scale + absolute`` with ``scale = |expected|`` (or, with
    ``componentwise``, ``|a| @ |b|``: a sum of products may cancel). All zero: bit-exact.
    ``ulps``: how far the reference's (and so the machine's) result may lie from the correctly
    rounded value of the exact function, in ulps over the whole window (measured by
    bench/fleq_accuracy.py, asserted on random operands by tests/test_fleq_ulps.py; componentwise
    for matmul)."""

    relative: float = 0.0
    absolute: float = 0.0
    componentwise: bool = False
    ulps: float = 0.0  # the worst error in ulps of the correctly rounded result (fleqc.machines.fleq.ulps),
    # about twice the worst measured over 100,352 operands (README "Measured figures")

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
    fleqc.machines.fleq.rows.OPS; ``views(a, b)``: the operand views chosen from the operand
    shapes, all within ``view_set``); the value windows of both backends (``limits``: every one
    must hold) and the machine's ``bound`` against the reference. The FLEQ machine refuses to
    register a table whose blocks it does not build (fleqc.machines.fleq).
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
    limits: tuple[Limit, ...] = ()
    resizes: bool = False  # mov: the destination may be another size of the same rank (see fit_shape)
    # how operands inside the window are drawn for the accuracy checks: (rng, shape) -> (a, b or None)
    sample: Optional[Callable[[np.random.Generator, tuple], tuple[np.ndarray, Optional[np.ndarray]]]] = None
    # the exact value at one entry where it is rational (Fraction a, Fraction b -> Fraction) ...
    exact: Optional[Callable[[Fraction, Fraction], Fraction]] = None
    # ... else what stands for the correctly rounded value (IEEE sqrt, numpy's exp and log: within 1 ulp)
    stand_in: Optional[Callable[[np.ndarray], np.ndarray]] = None

    def gives(self, result: Shape, dst: Shape) -> bool:
        """Whether a result of shape ``result`` may be stored in a destination of shape ``dst``."""
        return result == dst or (self.resizes and len(result) == len(dst))

    def refusal(self, a: np.ndarray, b: Optional[np.ndarray]) -> Optional[str]:
        """Why the operands (a, b) are outside this function's window, naming the first offending
        entry and its value; None when every limit holds."""
        for limit in self.limits:
            with np.errstate(over="ignore", invalid="ignore"):
                inside = np.asarray(limit.inside(a, b))
            if inside.all():
                continue
            index = tuple(int(i) for i in np.argwhere(~inside)[0])
            if limit.checks == "result":
                where = f"result{list(index)}" if index else "the result"
                return f"{where} would be outside the window {limit.words}"
            value = np.asarray(a if limit.checks == "a" else b)[index]
            where = f"{limit.checks}{list(index)}" if index else limit.checks
            return f"operand {where} = {float(value)!r} is outside the window {limit.words}"
        return None


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


def product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a * b`` (broadcast) as the FLEQ machine's product block computes it, bit for bit
    (fleqc.machines.fleq.product): IEEE's correctly rounded product for every pair of finite
    factors, subnormal results included. Zeros are +0.0 (the machine's gates drop the sign of a
    zero).
    """
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        out = a * b
    return out + 0.0


def product_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a * b - product(a, b)``, exactly (the FLEQ machine's ``mulerr``,
    fleqc.machines.fleq.product.ProductBlock.product_error): with it, ``product(a, b) + mulerr(a, b)``
    is the exact product, as in an error-free transformation (Dekker's TwoProduct). Inside mulerr's
    window (a = 0 or |a| > 2^-500, b = 0 or |b| > 2^-448) the error is a float: every bit of a b
    lies at or above 2^-1052. Outside it (the error is not a float in general) this gives 0.
    Zeros are +0.0.
    """
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    p = product(a, b)
    out = np.zeros(a.shape)
    for index in np.ndindex(a.shape):
        x, y, r = float(a[index]), float(b[index]), float(p[index])
        if abs(x) > SMALL_X and abs(y) > MULERR_B and math.isfinite(x * y):
            out[index] = float(Fraction(x) * Fraction(y) - Fraction(r))  # exact: the error is a float
    return out + 0.0


def pairwise_sum(terms: np.ndarray, axis: int = -1) -> np.ndarray:
    """The sum over ``axis`` in the FLEQ machine's order: pairwise, ((t0 + t1) + (t2 + t3)) + ...,
    over the terms padded with zeros to a power of two (one IEEE rounding per addition)."""
    t = np.moveaxis(np.asarray(terms, dtype=np.float64), axis, -1)
    size = 1
    while size < t.shape[-1]:
        size *= 2
    t = np.concatenate([t, np.zeros(t.shape[:-1] + (size - t.shape[-1],))], axis=-1)
    while t.shape[-1] > 1:
        t = t[..., 0::2] + t[..., 1::2]
    return t[..., 0] + 0.0


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` as the FLEQ machine computes it: every product by :func:`product`, each entry's
    products summed by :func:`pairwise_sum` in the order of the inner index."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    A = a if a.ndim == 2 else a[None, :]
    B = b if b.ndim == 2 else b[:, None]
    out = pairwise_sum(product(A[:, :, None], B[None, :, :]), axis=1)
    return out.reshape(np.matmul(a, b).shape)


def _transpose_shape(a: Shape, b: Optional[Shape]) -> Shape:
    return tuple(reversed(a))


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


# The value windows (docs/fleq-machine.md, "Domains and faults", is this table): the tables'
# ladder covers 2^-81 < |x| <= 2^81, the product takes every pair of factors (its result within
# VALUE_LIMIT), and exp's range ends at EXP_MAX (e^x <= 2^1000). Results stay within VALUE_LIMIT.
_TAB_LO, _TAB_HI = TABLE_LADDER.tau(TABLE_LADDER.lo), TABLE_LADDER.tau(TABLE_LADDER.hi)


def _operand_a(inside: Callable[[np.ndarray], np.ndarray], words: str, by_weights: bool = True) -> Limit:
    return Limit("a", lambda a, _b: inside(a), words, by_weights)


def _result(value: Callable[[np.ndarray, np.ndarray], np.ndarray], words: str) -> Limit:
    return Limit("result", lambda a, b: np.abs(value(a, b)) <= VALUE_LIMIT, words, False)


_TAB_RANGE = _operand_a(lambda x: (np.abs(x) > _TAB_LO) & (np.abs(x) <= _TAB_HI), "2^-81 < |x| <= 2^81")

# Operand samplers across each window (random binary exponents [lo, hi), 53-bit mantissas, signs):
# fleqc.machines.fleq.ulps measures every function on them.
LOWEST_EXPONENT = -1074  # 2^-1074: the smallest subnormal
_TAB_EXPONENTS = (TABLE_LADDER.thresholds[0] + 1, TABLE_LADDER.thresholds[-1])  # 2^-81 < |x| <= 2^81


def floats(rng: np.random.Generator, shape, lo: int, hi: int, signed: bool = True) -> np.ndarray:
    """Values m 2^e with e uniform in [lo, hi) and m uniform in [1, 2) (rounded to 53 bits)."""
    x = np.ldexp(rng.uniform(1.0, 2.0, shape), rng.integers(lo, hi, shape))
    return x * rng.choice([-1.0, 1.0], shape) if signed else x


def _unary_sample(lo: int, hi: int, signed: bool = True):
    return lambda rng, s: (floats(rng, s, lo, hi, signed), None)


def _sum_sample(rng, s):  # |a|, |b| < 2^999: |a +- b| < 2^1000
    return floats(rng, s, LOWEST_EXPONENT, 999), floats(rng, s, LOWEST_EXPONENT, 999)


def _product_sample(lowest_a: int, lowest_b: int):  # |a b| < 2^995: a sum of 8 below 2^998
    def sample(rng, s):
        b = floats(rng, s, lowest_b, min(1000, 994 - lowest_a))
        hi = np.minimum(1000, 994 - np.floor(np.log2(np.abs(b))).astype(int))
        a = np.ldexp(rng.uniform(1.0, 2.0, s), lowest_a + np.floor(rng.random(s) * (hi - lowest_a)).astype(int))
        return a * rng.choice([-1.0, 1.0], s), b
    return sample


def _matmul_sample(rng, s):  # any a[i, k] b[k, j] below 2^995: both factors below 2^497
    return floats(rng, s, LOWEST_EXPONENT, 497), floats(rng, s, LOWEST_EXPONENT, 497)


def _sigmoid_sample(rng, s):  # half across every exponent, half in the curved part |x| < 40 (where it errs)
    return np.where(rng.random(s) < 0.5, floats(rng, s, LOWEST_EXPONENT, 1000), rng.uniform(-40.0, 40.0, s)), None


def _sigmoid_stand_in(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-x) with full relative precision in both tails (e^x / (1 + e^x) for x < 0)."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


_ENTRY, _A = frozenset({"a_entry", "b_entry"}), frozenset({"a_entry"})
FLEQ_FUNCTIONS: dict[str, FleqFunction] = {
    f.name: f
    for f in [
        FleqFunction("add", 2, _same_shape, lambda a, b: a + b, "a + b (same shapes)", "add", _entrywise, _ENTRY,
                     limits=(_result(lambda a, b: a + b, "|a + b| <= 2^1000"),), sample=_sum_sample,
                     exact=lambda a, b: a + b),
        FleqFunction("sub", 2, _same_shape, lambda a, b: a - b, "a - b (same shapes)", "sub", _entrywise, _ENTRY,
                     limits=(_result(lambda a, b: a - b, "|a - b| <= 2^1000"),), sample=_sum_sample,
                     exact=lambda a, b: a - b),
        FleqFunction("mul", 2, _broadcast_scalar, lambda a, b: product(a, b),
                     "elementwise a * b (IEEE; see product()); a scalar broadcasts",
                     "prod", _mul_views, frozenset({"a_entry", "a_scalar", "b_entry", "b_scalar"}), EXACT,
                     (_result(lambda a, b: a * b, "|a * b| <= 2^1000"),),
                     sample=_product_sample(LOWEST_EXPONENT, LOWEST_EXPONENT), exact=lambda a, b: a * b),
        FleqFunction("mulerr", 2, _broadcast_scalar, lambda a, b: product_error(a, b),
                     "elementwise a * b - mul(a, b), exactly (the rounding error of mul; see product_error())",
                     "mulerr", _mul_views, frozenset({"a_entry", "a_scalar", "b_entry", "b_scalar"}), EXACT,
                     (_result(lambda a, b: a * b, "|a * b| <= 2^1000"),
                      _operand_a(lambda x: (x == 0) | (np.abs(x) > SMALL_X), "a = 0 or |a| > 2^-500",
                                 by_weights=False),
                      Limit("b", lambda _a, b: (b == 0) | (np.abs(b) > MULERR_B), "b = 0 or |b| > 2^-448", False)),
                     sample=_product_sample(-499, -447),  # mulerr's window
                     exact=lambda a, b: a * b - Fraction(float(a * b))),  # a float: no rounding left
        FleqFunction("matmul", 2, _matmul_shape, lambda a, b: matmul(a, b),
                     "matrix product a @ b (IEEE products, summed pairwise; see matmul())",
                     "prod", _matmul_views, frozenset({"m_a_row_i", "m_a_row_j", "m_b_col_j", "m_b_row_i"}),
                     ErrorBound(componentwise=True, ulps=8),
                     (_result(lambda a, b: np.abs(a) @ np.abs(b), "sum_k |a_ik b_kj| <= 2^1000"),),
                     sample=_matmul_sample, exact=lambda a, b: a * b),  # per term
        FleqFunction("transpose", 1, _transpose_shape, lambda a, _: a.T.copy(), "transpose of a",
                     "copy", _transpose_views, frozenset({"a_entry", "a_transposed"}),
                     sample=_unary_sample(LOWEST_EXPONENT, 1000), exact=lambda a, _b: a),
        FleqFunction("mov", 1, _elementwise, lambda a, _: a.copy(),
                     "copy of a (into a cell of another size of the same rank: cut or padded with zeros)",
                     "copy", _unary, _A, resizes=True, sample=_unary_sample(LOWEST_EXPONENT, 1000),
                     exact=lambda a, _b: a),
        FleqFunction("relu", 1, _elementwise, lambda a, _: np.maximum(a, 0.0), "max(a, 0) elementwise",
                     "relu", _unary, _A, sample=_unary_sample(LOWEST_EXPONENT, 1000),
                     exact=lambda a, _b: max(a, Fraction(0))),
        FleqFunction("sigmoid", 1, _elementwise, lambda a, _: fleq_tables.evaluate("sigmoid", a),
                     "1 / (1 + exp(-a)) elementwise, e^z with z from a table (6.6e-8 relative)",
                     "sigmoid", _unary, _A, ErrorBound(ulps=6e8), sample=_sigmoid_sample,
                     stand_in=_sigmoid_stand_in),  # numpy's formula: up to 1.8 ulps from the exact value
        FleqFunction("recip", 1, _elementwise, lambda a, _: fleq_tables.evaluate("recip", a),
                     "1 / a elementwise, from a table (2.4e-7 relative; see fleqc.machines.fleq.tables)", "recip", _unary,
                     _A, ErrorBound(ulps=4e9), (_TAB_RANGE,), sample=_unary_sample(*_TAB_EXPONENTS),
                     exact=lambda a, _b: 1 / a),
        FleqFunction("sqrt", 1, _elementwise, lambda a, _: fleq_tables.evaluate("sqrt", a),
                     "square root elementwise, from a table (3.1e-8 relative)",
                     "sqrt", _unary, _A, ErrorBound(ulps=5e8),
                     (_operand_a(lambda x: (x >= -_TAB_LO) & (x <= _TAB_HI), "-2^-81 <= x <= 2^81"),
                      _operand_a(lambda x: (x == 0) | (x > _TAB_LO), "x = 0 or x > 2^-81", by_weights=False)),
                     sample=_unary_sample(*_TAB_EXPONENTS, signed=False), stand_in=np.vectorize(math.sqrt, otypes=[float])),
        FleqFunction("exp", 1, _elementwise, lambda a, _: fleq_tables.evaluate("exp", a),
                     "e ** a elementwise, 2^n times a table (3.2e-8 relative; 0 below -768)",
                     "exp", _unary, _A, ErrorBound(ulps=6e8),
                     (_operand_a(lambda x: x <= EXP_MAX, f"x <= {EXP_MAX!r} (e^x <= 2^1000)"),),
                     sample=lambda rng, s: (rng.uniform(-745.0, EXP_MAX, s), None), stand_in=np.exp),
        FleqFunction("log", 1, _elementwise, lambda a, _: fleq_tables.evaluate("log", a),
                     "natural logarithm elementwise, from a table (1.21e-7 absolute)",
                     "log", _unary, _A, ErrorBound(ulps=2.0**53),
                     (_operand_a(lambda x: (x > _TAB_LO) & (x <= _TAB_HI), "2^-81 < x <= 2^81"),),
                     sample=_unary_sample(*_TAB_EXPONENTS, signed=False), stand_in=np.log),
    ]
}


def window_table() -> list[str]:
    """The window of every function as the markdown table of docs/fleq-machine.md ("Domains and
    faults"; a test keeps the two equal): the limits, and which part of the machine refuses each."""
    rows = ["| function | inside the window (outside: `domain-error` on both backends) | the machine refuses by |",
            "|---|---|---|"]
    for f in FLEQ_FUNCTIONS.values():
        words = "; ".join(limit.words for limit in f.limits) or "every value (|x| <= 2^1000)"
        by = "; ".join("fault row" if limit.by_weights else "health check" for limit in f.limits) or "-"
        rows.append(f"| {f.name} | {words.replace('|', chr(92) + '|')} | {by} |")
    return rows
