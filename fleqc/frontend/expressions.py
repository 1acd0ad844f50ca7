"""Expressions: numbers, constants and labels under ``+``, ``-`` and negation.

Guarantees: constants are evaluated in dependency order (a cycle is an error at the reference that
closes it); before labels are placed (:meth:`Evaluator.set_labels`), an expression that needs a
label raises :class:`NeedsLabel` instead of a value; a value remembers whether it is a data address
or a code address, and mixing the two is an error; reals are refused outside FLEQ and must stay
finite. Evaluation is iterative, so deeply nested input cannot overflow the stack.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Optional, Union

from fleqc.errors import ErrorCode
from fleqc.frontend import syntax as ast
from fleqc.frontend.diagnostics import Sources, did_you_mean
from fleqc.frontend.dialect import Machine

Kind = Optional[Literal["data", "code"]]
Definition = Union[ast.Label, ast.ConstDirective]
KIND_WORDS = {"data": "data address", "code": "code address"}


@dataclass(frozen=True)
class Value:
    """A number and, if it came from labels, their kind (a data address or a code index)."""

    number: int | float
    kind: Kind = None


class NeedsLabel(Exception):
    """Raised while labels have no values yet (sizes, ``.bits``) by an expression that uses one."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class Evaluator:
    """Evaluates expressions: numbers, constants and labels under ``+``, ``-`` and negation."""

    def __init__(self, machine: Machine, definitions: dict[str, Definition], sources: Sources):
        self.machine = machine
        self.definitions = definitions
        self.sources = sources
        self.labels: dict[str, Value] | None = None
        self.constants: dict[str, Value | NeedsLabel] = {}
        self.order = constant_order(definitions, sources)
        self._resolve_constants()

    def set_labels(self, labels: dict[str, Value]) -> None:
        """Give labels their values and re-evaluate the constants that depend on them."""
        self.labels = labels
        self._resolve_constants()

    def _resolve_constants(self) -> None:
        for name in self.order:
            definition = self.definitions[name]
            assert isinstance(definition, ast.ConstDirective)
            try:
                self.constants[name] = self.evaluate(definition.value)
            except NeedsLabel as pending:
                self.constants[name] = pending

    def evaluate(self, expr: ast.Expr) -> Value:
        """The value of ``expr`` (iteratively, so deep nesting cannot overflow the stack)."""
        todo: list[tuple[ast.Expr, bool]] = [(expr, False)]
        done: list[Value] = []
        while todo:
            node, children_done = todo.pop()
            if isinstance(node, ast.BinaryOp):
                if children_done:
                    right, left = done.pop(), done.pop()
                    done.append(self._binary(node, left, right))
                else:
                    todo += [(node, True), (node.right, False), (node.left, False)]
            elif isinstance(node, ast.Negate):
                if children_done:
                    operand = done.pop()
                    done.append(Value(-operand.number, operand.kind))
                else:
                    todo += [(node, True), (node.operand, False)]
            else:
                done.append(self._leaf(node))
        return done.pop()

    def _leaf(self, node: ast.Expr) -> Value:
        if isinstance(node, ast.Integer):
            return Value(node.value)
        if isinstance(node, ast.Real):
            if not self.machine.language.reals:
                owner = self.sources.language.owner_of("reals")
                raise self.sources.error(
                    ErrorCode.NOT_IN_MACHINE,
                    f"real number {node.text} in a {self.machine.title} program (reals need '.machine {owner.name}')",
                    node.span,
                )
            if not math.isfinite(node.value):
                raise self.sources.error(
                    ErrorCode.LITERAL_RANGE, f"{node.text} is too large for a float64", node.span
                )
            return Value(node.value)
        assert isinstance(node, ast.Name)
        return self._name(node)

    def _name(self, node: ast.Name) -> Value:
        definition = self.definitions.get(node.name)
        if definition is None:
            hint = did_you_mean(node.name, self.definitions)
            raise self.sources.error(
                ErrorCode.UNDEFINED_LABEL, f"undefined label '{node.name}'{hint}", node.span
            )
        if isinstance(definition, ast.ConstDirective):
            value = self.constants[node.name]
            if isinstance(value, NeedsLabel):
                raise value
            return value
        if self.labels is None:
            raise NeedsLabel(node.name)
        return self.labels[node.name]

    def _binary(self, node: ast.BinaryOp, left: Value, right: Value) -> Value:
        if left.kind and right.kind and left.kind != right.kind:
            raise self.sources.error(
                ErrorCode.WRONG_KIND,
                f"cannot {'add' if node.op == '+' else 'subtract'} a {KIND_WORDS[right.kind]} "
                f"{'to' if node.op == '+' else 'from'} a {KIND_WORDS[left.kind]}",
                node.span,
            )
        try:
            number = left.number + right.number if node.op == "+" else left.number - right.number
        except OverflowError:  # a huge integer mixed with a real
            number = math.inf
        if isinstance(number, float) and not math.isfinite(number):
            raise self.sources.error(ErrorCode.LITERAL_RANGE, "value is too large for a float64", node.span)
        if node.op == "-" and left.kind and left.kind == right.kind:
            return Value(number)  # the distance between two addresses is a plain number
        return Value(number, left.kind or right.kind)


def names_in(expr: ast.Expr) -> list[ast.Name]:
    """The Name nodes of ``expr``, left to right."""
    names, todo = [], [expr]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Name):
            names.append(node)
        elif isinstance(node, ast.Negate):
            todo.append(node.operand)
        elif isinstance(node, ast.BinaryOp):
            todo += [node.right, node.left]
    return names


def constant_order(definitions: dict[str, Definition], sources: Sources) -> list[str]:
    """Constant names, each after the constants it uses; a cycle is an error at its reference."""
    constants = {n: d for n, d in definitions.items() if isinstance(d, ast.ConstDirective)}
    uses = {n: [r for r in names_in(d.value) if r.name in constants] for n, d in constants.items()}
    order: list[str] = []
    state: dict[str, str] = {}
    for root in constants:
        if root in state:
            continue
        state[root] = "open"
        stack = [(root, iter(uses[root]))]
        while stack:
            name, pending = stack[-1]
            reference = next(pending, None)
            if reference is None:
                stack.pop()
                state[name] = "done"
                order.append(name)
            elif state.get(reference.name) == "open":
                chain = [n for n, _ in stack][[n for n, _ in stack].index(reference.name) :]
                raise sources.error(
                    ErrorCode.BAD_DIRECTIVE,
                    "constant defined in terms of itself: " + " -> ".join(chain + [reference.name]),
                    reference.span,
                )
            elif reference.name not in state:
                state[reference.name] = "open"
                stack.append((reference.name, iter(uses[reference.name])))
    return order
