"""Flow's shape rules: what each expression's shape is (checked at compile time, a mismatch a
located error) and, for a part made of numbers only, its value (Python's floats: a domain error
such as ``1/0`` is found at compile time, and products pick their order from the values, as
`fleqc calc` always did). Walked in post-order without recursion.

:class:`ShapeRules` is a part of :class:`fleqc.lang.compiler.Compiler`: it reads the compiler's
variables and functions (``lookup``, ``functions``, ``instance``).
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from fleqc.errors import ErrorCode, FleqError, Span
from fleqc.lang import syntax as ast
from fleqc.lang.stdlib import Shape
from fleqc.machines.fleq.functions import FLEQ_FUNCTIONS, VALUE_LIMIT
from fleqc.machines.fleq.rows import EXP_MAX

MAX_DIM = 8  # the machine's cell: 8 x 8 (the stdlib's linalg routines take 8 x 8 cells)

ELEMENTWISE_ROUTINES = ("sqrt", "exp", "log", "sigmoid", "rsqrt")
CONSTRUCTORS = ("zeros", "ones", "eye")
BUILTINS = (*ELEMENTWISE_ROUTINES, "abs", "min", "max", "pow", "mulw", "relu", "transpose", *CONSTRUCTORS,
            "inv", "inverse", "solve", "norm", "norm1", "norminf", "power_iteration", "backprop_mlp2",
            "sgd_linear")
KEYWORDS = ("if", "elif", "else", "while", "for", "in", "def", "return", "pass", "break", "continue", "and",
            "or", "not", "range")

# tuple-valued calls: how many values each returns
TUPLE_CALLS = {"inverse": 2, "power_iteration": 3, "backprop_mlp2": 5, "sgd_linear": 2}


def describe(shape: Shape) -> str:
    if shape == ():
        return "a scalar"
    if len(shape) == 1:
        return f"a vector of {shape[0]}"
    return f"a {shape[0]} x {shape[1]} matrix"


def powering(x: float, n: int) -> list[tuple[str, float, float]]:
    """The products of stdlib pow's binary powering of x^n (``r *= b`` for each set bit of |n|,
    ``b *= b`` between bits), in order: ("r", r, b) or ("b", b, b) with the factors' values."""
    products, r, b, m = [], 1.0, x, abs(n)
    while m:
        if m & 1:
            products.append(("r", r, b))
            r *= b
        m >>= 1
        if m:
            products.append(("b", b, b))
            b *= b
    return products


def mul_refusal(a: float, b: float) -> Optional[str]:
    """Why ``mul a, b`` would not compute a * b (a product beyond the machine's value limit); None
    if it would (IEEE's product for every other pair of factors)."""
    with np.errstate(over="ignore", under="ignore"):
        return FLEQ_FUNCTIONS["mul"].refusal(np.float64(a), np.float64(b))


def far_from_one(a: float, b: float) -> bool:
    """True when |a| is further from 1 (in binary orders of magnitude) than |b| (0 counts as 1)."""

    def distance(x: float) -> float:
        return abs(math.log2(abs(x))) if x else 0.0

    return distance(a) > distance(b)


class ShapeRules:
    """Shapes and known values of expressions (a part of the Compiler)."""

    def children(self, node) -> list:
        if isinstance(node, ast.Bin):
            return [node.left, node.right]
        if isinstance(node, ast.Neg):
            return [node.operand]
        if isinstance(node, ast.Pow):
            return [node.base, node.exponent]
        if isinstance(node, ast.Call):
            return [] if node.function in CONSTRUCTORS else list(node.args)
        if isinstance(node, ast.Array):
            return [x for row in node.elements for x in (row.elements if isinstance(row, ast.Array) else [row])]
        if isinstance(node, (ast.Index, ast.Attribute)):
            return [node.base]
        return []

    def postorder(self, root) -> list:
        order, stack = [], [root]
        while stack:
            node = stack.pop()
            order.append(node)
            stack.extend(self.children(node))
        order.reverse()
        return order

    def check(self, root) -> tuple[dict, dict]:
        """Every node's shape (by id), and the value of each scalar node made of literals only."""
        shapes: dict[int, Shape] = {}
        values: dict[int, float] = {}
        for node in self.postorder(root):
            kids = self.children(node)
            shapes[id(node)] = self.shape_of(node, [shapes[id(k)] for k in kids], values)
            if kids or isinstance(node, ast.Num):
                known = [values.get(id(k)) for k in kids]
                if all(v is not None for v in known):
                    value = self.value_of(node, known)
                    if value is not None:
                        values[id(node)] = value
        return shapes, values

    def shape_of(self, node, kids: list, values: dict) -> Shape:
        def mismatch(message: str, span: Span) -> FleqError:
            return self.error(ErrorCode.SHAPE_MISMATCH, message, span)

        if isinstance(node, ast.Num):
            return ()
        if isinstance(node, ast.Name):
            return self.lookup(node.id, node.span).shape
        if isinstance(node, ast.Array):
            return self.array_shape(node, kids)
        if isinstance(node, ast.Neg):
            return kids[0]
        if isinstance(node, ast.Bin):
            a, b = kids
            if node.op == "@":
                if a == () or b == ():
                    raise mismatch(f"@ multiplies vectors and matrices; this is {describe(a)} @ {describe(b)} "
                                   "(use * with a scalar)", node.at)
                if a[-1] != b[0]:
                    raise mismatch(f"{describe(a)} @ {describe(b)}: the inner sizes differ ({a[-1]} and {b[0]})",
                                   node.at)
                return a[:-1] + b[1:]
            if a == b or a == () or b == ():
                return a if b == () else b
            raise mismatch(f"{describe(a)} {node.op} {describe(b)}: the shapes differ (elementwise "
                           "operations take equal shapes, or a scalar)", node.at)
        if isinstance(node, ast.Pow):
            if kids[1] != ():
                raise mismatch(f"the exponent is a scalar, not {describe(kids[1])}", node.exponent.span)
            return kids[0]
        if isinstance(node, ast.Attribute):
            if node.name != "T":
                raise self.error(ErrorCode.UNKNOWN_FUNCTION, f"unknown attribute '.{node.name}' (the one there "
                                 "is: .T, the transpose)", node.at)
            a = kids[0]
            return (a[1], a[0]) if len(a) == 2 else a
        if isinstance(node, ast.Index):
            a = kids[0]
            index = self.constant_indices(node.indices, a, node.at)
            return a[len(index):]
        if isinstance(node, (ast.Compare, ast.BoolOp, ast.Not)):
            raise self.error(ErrorCode.WRONG_KIND, "a comparison is a test for if and while, not a value", node.at)
        if isinstance(node, ast.Call):
            return self.call_shape(node, kids)
        raise AssertionError(node)  # pragma: no cover

    def array_shape(self, node: ast.Array, kids: list) -> Shape:
        rows = node.elements
        if not rows:
            raise self.error(ErrorCode.SHAPE_MISMATCH, "an empty literal: a vector needs 1 to 8 entries", node.span)
        if all(isinstance(r, ast.Array) for r in rows):
            widths = {len(r.elements) for r in rows}
            for r in rows:
                if not r.elements or any(isinstance(x, ast.Array) for x in r.elements):
                    raise self.error(ErrorCode.SHAPE_MISMATCH, "a matrix's rows hold numbers", r.span)
            if len(widths) != 1:
                bad = next(r for r in rows if len(r.elements) != len(rows[0].elements))
                raise self.error(ErrorCode.SHAPE_MISMATCH, f"the rows of a matrix have equal lengths: this one has "
                                 f"{len(bad.elements)}, the first {len(rows[0].elements)}", bad.span)
            shape = (len(rows), len(rows[0].elements))
        elif any(isinstance(r, ast.Array) for r in rows):
            bad = next(r for r in rows if isinstance(r, ast.Array) != isinstance(rows[0], ast.Array))
            raise self.error(ErrorCode.SHAPE_MISMATCH, "a literal holds numbers (a vector) or rows (a matrix), not "
                             "both", bad.span)
        else:
            shape = (len(rows),)
        if max(shape) > MAX_DIM:
            raise self.error(ErrorCode.SHAPE_MISMATCH, f"{describe(shape)}: a cell holds at most 8 x 8 numbers",
                             node.span)
        for kid, entry in zip(kids, self.children(node)):
            if kid != ():
                raise self.error(ErrorCode.SHAPE_MISMATCH, f"an entry of a literal is a scalar, not {describe(kid)}",
                                 entry.span)
        return shape

    def constant_indices(self, indices: list, shape: Shape, span: Span) -> tuple:
        if shape == ():
            raise self.error(ErrorCode.SHAPE_MISMATCH, "a scalar has no entries to index", span)
        if len(indices) > len(shape):
            raise self.error(ErrorCode.SHAPE_MISMATCH, f"{describe(shape)} takes at most {len(shape)} index(es)",
                             span)
        out = []
        for index, size in zip(indices, shape):
            if not isinstance(index, ast.Num) or index.value != int(index.value):
                raise self.error(ErrorCode.WRONG_KIND, "an index is a whole number written in the program (the "
                                 "machine has no indirect addressing)", index.span)
            k = int(index.value)
            if not -size <= k < size:
                raise self.error(ErrorCode.ADDRESS_RANGE, f"index {k} is outside 0..{size - 1}", index.span)
            out.append(k % size)
        return tuple(out)

    def constructed(self, node: ast.Call) -> np.ndarray:
        sizes = []
        if not 1 <= len(node.args) <= (1 if node.function == "eye" else 2):
            raise self.error(ErrorCode.OPERAND_COUNT, f"{node.function} takes the size: {node.function}(n)"
                             + ("" if node.function == "eye" else f" or {node.function}(rows, columns)"), node.span)
        for arg in node.args:
            if not isinstance(arg, ast.Num) or arg.value != int(arg.value) or not 1 <= arg.value <= MAX_DIM:
                raise self.error(ErrorCode.SHAPE_MISMATCH, "a size is a whole number from 1 to 8, written as a "
                                 "number", arg.span)
            sizes.append(int(arg.value))
        if node.function == "eye":
            return np.eye(sizes[0])
        return (np.zeros if node.function == "zeros" else np.ones)(tuple(sizes))

    def call_shape(self, node: ast.Call, kids: list) -> Shape:
        name, n = node.function, len(kids)

        def arity(*allowed: int) -> None:
            if n not in allowed:
                raise self.error(ErrorCode.OPERAND_COUNT, f"{name} takes {' or '.join(map(str, allowed))} "
                                 f"argument(s), got {n}", node.span)

        def need(k: int, ok: bool, what: str) -> None:
            if not ok:
                raise self.error(ErrorCode.SHAPE_MISMATCH, f"{name}'s argument {k + 1} is {what}, not "
                                 f"{describe(kids[k])}", node.args[k].span)

        if name in self.functions:
            definition = self.functions[name]
            if n != len(definition.params):
                raise self.error(ErrorCode.OPERAND_COUNT, f"{name} takes {len(definition.params)} argument(s), "
                                 f"got {n}", node.span)
            instance = self.instance(node, definition, tuple(kids))
            if instance.ret is None:
                raise self.error(ErrorCode.WRONG_KIND, f"{name} returns no value", node.span)
            return instance.ret.shape
        if name in TUPLE_CALLS:
            raise self.error(ErrorCode.OPERAND_COUNT, f"{name} returns {TUPLE_CALLS[name]} values: assign them, "
                             f"{', '.join(['x'] * TUPLE_CALLS[name])} = {name}(...)", node.span)
        if name in CONSTRUCTORS:
            return self.constructed(node).shape
        if name in ELEMENTWISE_ROUTINES or name in ("abs", "relu"):
            arity(1)
            return kids[0]
        if name in ("min", "max", "mulw"):
            arity(2)
            need(0, kids[0] == (), "a scalar")
            need(1, kids[1] == (), "a scalar")
            return ()
        if name == "pow":
            arity(2)
            need(1, kids[1] == (), "a scalar")
            return kids[0]
        if name == "transpose":
            arity(1)
            return (kids[0][1], kids[0][0]) if len(kids[0]) == 2 else kids[0]
        if name == "inv":
            arity(1)
            need(0, len(kids[0]) == 2 and kids[0][0] == kids[0][1], "a square matrix")
            return kids[0]
        if name == "solve":
            arity(2)
            need(0, len(kids[0]) == 2 and kids[0][0] == kids[0][1], "a square matrix")
            need(1, kids[1] == (kids[0][0],), f"a vector of {kids[0][0]}")
            return kids[0][:1]
        if name == "norm":
            arity(1)
            need(0, kids[0] != (), "a vector or a matrix")
            return ()
        if name in ("norm1", "norminf"):
            arity(1)
            need(0, len(kids[0]) == 2, "a matrix")
            return ()
        raise self.error(ErrorCode.UNKNOWN_FUNCTION, f"unknown function '{name}' (the built-in ones: "
                         f"{', '.join(BUILTINS)}; or define it with def)", node.span)

    def value_of(self, node, args: list) -> Optional[float]:
        def domain(message: str, span: Span) -> FleqError:
            return self.error(ErrorCode.DOMAIN_ERROR, message, span)

        def check(value: float, span: Span) -> float:
            if not abs(value) <= VALUE_LIMIT:
                raise domain("the value is beyond the machine's range (|x| <= 2^1000)", span)
            return value

        if isinstance(node, ast.Num):
            return node.value
        if isinstance(node, ast.Neg):
            return -args[0]
        if isinstance(node, ast.Bin):
            if node.op == "@":
                return None
            left, right = args
            if node.op == "+":
                return check(left + right, node.at)
            if node.op == "-":
                return check(left - right, node.at)
            if node.op == "*":
                return check(left * right, node.at)
            if right == 0:
                raise domain("division by zero", node.at)
            return check(left / right, node.at)
        if isinstance(node, ast.Call):
            if node.function in self.functions or len(args) != 1 or node.function not in ("sqrt", "exp", "log"):
                if node.function in ("abs",) and len(args) == 1:
                    return abs(args[0])
                return None
            x = args[0]
            if node.function == "sqrt":
                if x < 0:
                    raise domain(f"sqrt of a negative number ({x!r})", node.at)
                return math.sqrt(x)
            if node.function == "log":
                if x <= 0:
                    raise domain(f"log of a number <= 0 ({x!r})", node.at)
                return math.log(x)
            if not x <= EXP_MAX:
                raise domain(f"exp of {x!r} is outside its domain x <= 693.1 (e^x <= 2^1000)", node.at)
            return math.exp(x)
        if isinstance(node, ast.Pow):
            base, exponent = args
            if exponent != int(exponent) or abs(exponent) > 2.0 ** 51:
                raise self.error(ErrorCode.DOMAIN_ERROR, f"the exponent must be a whole number (got {exponent!r})",
                                 node.exponent.span)
            if base == 0 and exponent < 0:
                raise domain("division by zero (0 to a negative power)", node.at)
            try:
                value = base ** int(exponent)
            except (OverflowError, ZeroDivisionError):
                raise domain("the value is beyond the machine's range (|x| <= 2^1000)", node.at) from None
            for kind, a, b in powering(base, int(exponent)):
                with np.errstate(over="ignore", under="ignore"):
                    product = float(np.float64(a) * np.float64(b))
                if not abs(product) <= VALUE_LIMIT:
                    what = "squares" if kind == "b" else "multiplies by"
                    raise domain(f"{base!r}^{int(exponent)}: the binary powering {what} {b!r}, a product beyond "
                                 "the machine's range (|x| <= 2^1000)", node.at)
            return check(value, node.at)
        return None

    def literal(self, node) -> Optional[np.ndarray]:
        """The value of a literal (a number, an array of numbers, zeros/ones/eye), else None."""
        if isinstance(node, ast.Num):
            return np.float64(node.value)
        if isinstance(node, ast.Array):
            rows = node.elements
            if rows and all(isinstance(r, ast.Array) for r in rows):
                if all(isinstance(x, ast.Num) for r in rows for x in r.elements):
                    return np.array([[x.value for x in r.elements] for r in rows], dtype=np.float64)
                return None
            if all(isinstance(x, ast.Num) for x in rows):
                return np.array([x.value for x in rows], dtype=np.float64)
            return None
        if isinstance(node, ast.Call) and node.function in CONSTRUCTORS:
            return self.constructed(node)
        return None
