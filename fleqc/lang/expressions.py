"""Flow's code for expressions and tests: each node one or a few FLEQ instructions, emitted in
post-order without recursion (the last one straight into the assigned variable, or into a
routine's argument cell), the stdlib called by its calling convention (arguments moved into the
routine's cells, ``call``, the result read from its ``_out`` cell where it is used, copied only
when a later call could overwrite it), tests as branches (``fleq f, sub, a, b, f, L`` jumps when
a <= b; and/or/not jump early).

:class:`ExpressionCode` is a part of :class:`fleqc.lang.compiler.Compiler`.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from fleqc.errors import ErrorCode
from fleqc.lang import syntax as ast
from fleqc.lang.shapes import CONSTRUCTORS, ELEMENTWISE_ROUTINES, far_from_one, mul_refusal, powering, describe
from fleqc.lang.stdlib import ROUTINES, Shape

MAX_TEST_DEPTH = 200  # and/or/not inside each other in one test (compiled recursively)


class ExpressionCode:
    """Instructions for expressions and tests (a part of the Compiler)."""

    def expression(self, root, shapes: dict, values: dict, dest: Optional[str] = None, stable: bool = False) -> str:
        """Emit ``root``; the cell that holds its value (``dest`` when given: written last).
        ``stable``: the value must outlive later calls (else it may be left in a routine's cell)."""
        order = self.postorder(root)
        position = {id(n): k for k, n in enumerate(order)}
        parent: dict[int, object] = {}
        for node in order:
            for kid in self.children(node):
                parent[id(kid)] = node
        calls = [0]
        for node in order:
            calls.append(calls[-1] + (1 if self.calls(node, values) else 0))
        hints = self.hints(order, shapes, values)
        cells: dict[int, str] = {}
        for node in order:
            kids = self.children(node)
            args = [cells[id(k)] for k in kids]
            node_dest = dest if node is root else hints.get(id(node))
            cell = self.node(node, kids, args, shapes, values, node_dest)
            if self.volatile(cell) and node is not root and cell != node_dest:
                up = parent[id(node)]
                between = calls[position[id(up)]] - calls[position[id(node)] + 1]
                if between or self.repeats_calls(up, shapes, values):
                    copy = self.temp(shapes[id(node)])
                    self.emit(f"mov {copy}, {cell}")
                    cell = copy
            cells[id(node)] = cell
            for kid in kids:  # each value is read by its parent only: its temp is free again
                self.free_temp(cells[id(kid)], keep=cell)
        cell = cells[id(root)]
        if dest is not None and cell != dest:
            self.emit(f"mov {dest}, {cell}")
            cell = dest
        elif stable and dest is None and self.volatile(cell):
            copy = self.temp(shapes[id(root)])
            self.emit(f"mov {copy}, {cell}")
            cell = copy
        return cell

    def hints(self, order: list, shapes: dict, values: dict) -> dict:
        """Where a node may be computed straight into a routine's own cell instead of a temporary
        moved there: an argument of a routine (or user function) when no argument computed after
        it calls a routine (which could overwrite the cell); and, inside such an argument that calls
        nothing, the first operand of a scalar ``+ - *`` (the instruction reads it before it writes:
        ``add div_x, _k, _k_2; mul div_x, _k_3, div_x``). Fewer cells and instructions: each is a
        column of the card."""
        calls_in: dict[int, bool] = {}  # the node's code, or any below it, calls a routine
        for node in order:  # children first
            calls_in[id(node)] = self.calls(node, values) or any(calls_in[id(k)] for k in self.children(node))

        def fits(node, cell) -> bool:
            return (not isinstance(node, (ast.Name, ast.Num)) and self.literal(node) is None
                    and shapes[id(node)] == self.shapes.get(cell))

        hints: dict[int, str] = {}
        for node in reversed(order):  # parents first: a hint passes down to an operand
            later_call = False
            for arg, cell in reversed(self.routine_arguments(node, shapes)):
                if not later_call and fits(arg, cell):
                    hints[id(arg)] = cell
                later_call = later_call or calls_in[id(arg)]
            cell = hints.get(id(node))
            if cell is not None and isinstance(node, ast.Bin) and node.op in "+-*" and shapes[id(node)] == () \
                    and not calls_in[id(node)]:
                first = next((k for k in self.children(node) if fits(k, cell)), None)
                if first is not None:
                    hints[id(first)] = cell
        return hints

    def routine_arguments(self, node, shapes: dict) -> list:
        """(argument, the routine's cell it is moved to) of a scalar routine or user function call."""
        if isinstance(node, ast.Call) and node.args and shapes[id(node)] == ():
            if node.function in self.functions:
                instance = self.instances.get((node.function, tuple(shapes[id(a)] for a in node.args)))
                if instance is not None:
                    return [(arg, param.cell) for arg, param in zip(node.args, instance.params)]
            elif node.function in (*ELEMENTWISE_ROUTINES, "mulw"):
                return [(arg, ROUTINES[node.function].params[k][0]) for k, arg in enumerate(node.args)]
        elif isinstance(node, ast.Bin) and node.op == "/" and shapes[id(node)] == ():
            return [(node.left, "div_x"), (node.right, "div_y")]
        return []

    def calls(self, node, values) -> bool:
        """Whether the code of ``node`` itself calls a routine (which may overwrite routine cells)."""
        if isinstance(node, ast.Call):
            return node.function not in ("abs", "min", "max", "relu", "transpose", *CONSTRUCTORS)
        if isinstance(node, ast.Bin) and node.op == "/":
            return True
        if isinstance(node, ast.Pow):
            n = values.get(id(node.exponent))
            return n is None or n < 0
        return False

    def volatile(self, cell: str) -> bool:
        """The value is left in a routine's own cell (overwritten by the routine's next call)."""
        return cell in self.volatile_cells

    def repeats_calls(self, node, shapes, values) -> bool:
        """Whether ``node`` reads its operands after calling a routine (elementwise routines)."""
        if isinstance(node, ast.Call) and node.function in ELEMENTWISE_ROUTINES:
            return shapes[id(node)] != ()
        if isinstance(node, ast.Bin) and node.op == "/":
            return shapes[id(node)] != ()
        return False  # a power reads its base before any call (pow's, or div's for n < 0)

    def kept(self, cell: str, shape: Shape) -> str:
        """``cell``, or a copy of it where a routine's next call would overwrite it."""
        if not self.volatile(cell):
            return cell
        copy = self.temp(shape)
        self.emit(f"mov {copy}, {cell}")
        return copy

    def result(self, shape: Shape, dest: Optional[str]) -> str:
        return dest if dest is not None else self.temp(shape)

    def node(self, node, kids, args, shapes, values, dest) -> str:
        shape = shapes[id(node)]
        if isinstance(node, ast.Num):
            return self.constant(node.value)
        if isinstance(node, ast.Name):
            return self.lookup(node.id, node.span).cell
        if isinstance(node, ast.Array):
            literal = self.literal(node)
            if literal is not None:
                return self.constant(literal, shape)
            return self.build_array(shape, args, dest)
        if isinstance(node, ast.Neg):
            out = self.result(shape, dest)
            self.emit(f"mul {out}, {args[0]}, {self.constant(-1.0)}", node.span)
            return out
        if isinstance(node, ast.Bin):
            return self.binary(node, kids, args, shapes, values, dest)
        if isinstance(node, ast.Pow):
            return self.power(node, args, shapes, values, dest)
        if isinstance(node, ast.Attribute):
            if len(shapes[id(kids[0])]) < 2:
                return args[0]  # a vector is its own transpose
            out = self.result(shape, dest)
            self.emit(f"transpose {out}, {args[0]}", node.at)
            return out
        if isinstance(node, ast.Index):
            return self.extract(args[0], shapes[id(kids[0])],
                                self.constant_indices(node.indices, shapes[id(kids[0])], node.at), dest)
        if isinstance(node, ast.Call):
            return self.call(node, kids, args, shapes, values, dest)
        raise AssertionError(node)  # pragma: no cover

    def build_array(self, shape: Shape, args: list, dest) -> str:
        """[a, b, ...]: the sum of each entry times its unit vector (or matrix), exact."""
        acc = self.temp(shape) if dest is None or dest in args else dest
        term = self.temp(shape)
        for k, arg in enumerate(args):
            unit = np.zeros(shape)
            unit.flat[k] = 1.0
            self.emit(f"mul {acc if k == 0 else term}, {arg}, {self.constant(unit, shape)}")
            if k:
                self.emit(f"add {acc}, {acc}, {term}")
        if dest is not None and acc != dest:
            self.emit(f"mov {dest}, {acc}")
            return dest
        return acc

    def extract(self, cell: str, shape: Shape, index: tuple, dest) -> str:
        """An entry (or a matrix's row) by products with unit vectors: exact."""
        if len(shape) == 1:
            unit = np.zeros(shape)
            unit[index[0]] = 1.0
            out = self.result((), dest)
            self.emit(f"matmul {out}, {cell}, {self.constant(unit, shape)}")
            return out
        row = np.zeros(shape[0])
        row[index[0]] = 1.0
        if len(index) == 1:
            out = self.result((shape[1],), dest)
            self.emit(f"matmul {out}, {self.constant(row, (shape[0],))}, {cell}")
            return out
        column = np.zeros(shape[1])
        column[index[1]] = 1.0
        middle = self.temp((shape[0],))
        self.emit(f"matmul {middle}, {cell}, {self.constant(column, (shape[1],))}")
        out = self.result((), dest)
        self.emit(f"matmul {out}, {self.constant(row, (shape[0],))}, {middle}")
        return out

    def broadcast(self, cell: str, shape: Shape) -> str:
        out = self.temp(shape)
        self.emit(f"mul {out}, {cell}, {self.constant(1.0, shape)}")
        return out

    def binary(self, node: ast.Bin, kids, args, shapes, values, dest) -> str:
        shape = shapes[id(node)]
        left, right = args
        a, b = shapes[id(kids[0])], shapes[id(kids[1])]
        if node.op == "@":
            out = self.result(shape, dest)
            self.emit(f"matmul {out}, {left}, {right}", node.at)
            return out
        if node.op in "+-":
            if a != b:
                if a == ():
                    left = self.broadcast(left, shape)
                else:
                    right = self.broadcast(right, shape)
            out = self.result(shape, dest)
            self.emit(f"{'add' if node.op == '+' else 'sub'} {out}, {left}, {right}", node.at)
            return out
        if node.op == "*":
            return self.product(left, right, values.get(id(kids[0])), values.get(id(kids[1])), shape, dest,
                                node.at, a, b)
        # division
        if shape == ():
            return self.routine_call("div", [left, right], dest, node.at)
        return self.elementwise("div", [(left, a), (right, b)], shape, dest, node.at)

    def product(self, left, right, x, y, shape, dest, span, a=(), b=()) -> str:
        """left * right: one mul, the factor nearer 1 second when the values are known (or the known
        one, when only one is), mulw for scalars mul's window does not take."""
        swap = False
        if x is not None and y is not None:
            swap = far_from_one(y, x)
        elif x is not None and y is None and mul_refusal(1.0, x) is None and x != 0:
            swap = True  # the known factor second: it is inside mul's window
        if swap:
            left, right, x, y, a, b = right, left, y, x, b, a
        if x is not None and y is not None and mul_refusal(x, y) is not None:
            return self.routine_call("mulw", [left, right], dest, span)
        if shape == () and (x is not None or y is not None) and mul_refusal(1.0, y if y is not None else x):
            return self.routine_call("mulw", [left, right], dest, span)  # a known factor mul's window does not take
        out = self.result(shape, dest)
        self.emit(f"mul {out}, {left}, {right}", span)
        return out

    def power(self, node: ast.Pow, args, shapes, values, dest) -> str:
        shape = shapes[id(node)]
        n = values.get(id(node.exponent))
        x = values.get(id(node.base))
        if n is None:
            if shape != ():
                raise self.error(ErrorCode.WRONG_KIND, "an array's power needs an exponent written in the program",
                                 node.exponent.span)
            return self.routine_call("pow", args, dest, node.at)
        if n != int(n) or abs(n) > 2.0 ** 51:
            raise self.error(ErrorCode.DOMAIN_ERROR, f"the exponent must be a whole number (got {n!r})",
                             node.exponent.span)
        n = int(n)
        if n == 0:
            return self.constant(1.0, shape)
        # the binary powering of stdlib pow written out (the same IEEE products: the same bits),
        # without its first product by 1
        base = args[0]
        products = powering(x if x is not None else 2.0, n)
        r: Optional[str] = None
        rv = None
        square, sv = base, x
        last = len(products) - 1
        for k, (kind, _, _) in enumerate(products):
            target = dest if (k == last and n > 0 and dest is not None) else None
            if kind == "r":
                if r is None:
                    r, rv = square, sv
                    if k == last and target is not None:
                        self.emit(f"mov {target}, {r}", node.at)
                        r = target
                    continue
                r = self.kept(self.product(r, square, rv, sv, shape, target, node.at), shape)
                rv = None if rv is None or sv is None else rv * sv
            else:
                square = self.kept(self.product(square, square, sv, sv, shape, None, node.at), shape)
                sv = None if sv is None else sv * sv
        assert r is not None
        if n < 0:
            if shape == ():
                return self.routine_call("div", [self.constant(1.0), r], dest, node.at)
            return self.elementwise("div", [(self.constant(1.0), ()), (r, shape)], shape, dest, node.at)
        return r

    def routine_call(self, routine: str, args: list, dest, span, result_index: int = 0) -> str:
        """Move the arguments into the routine's cells, call it; its result cell (or ``dest``)."""
        info = ROUTINES[routine]
        self.include(routine)
        for (cell, _), arg in zip(info.params, args):
            if cell != arg:
                self.emit(f"mov {cell}, {arg}", span)
        self.emit(f"call {routine}", span)
        out = info.results[result_index][0]
        if dest is not None:
            self.emit(f"mov {dest}, {out}", span)
            return dest
        return out

    def elementwise(self, routine: str, operands: list, shape: Shape, dest, span) -> str:
        """A scalar routine on every entry: each entry by a product with a unit vector, the routine,
        and the result put back by a product and a sum (all exact but the routine)."""
        info = ROUTINES[routine]
        self.include(routine)
        acc = self.temp(shape)
        term = self.temp(shape)
        for k in range(int(np.prod(shape))):
            index = np.unravel_index(k, shape)
            for (param, _), (cell, operand_shape) in zip(info.params, operands):
                if operand_shape == ():
                    self.emit(f"mov {param}, {cell}", span)
                else:
                    self.extract(cell, operand_shape, index if len(operand_shape) == 2 else (index[0],), param)
            self.emit(f"call {routine}", span)
            unit = np.zeros(shape)
            unit[index] = 1.0
            self.emit(f"mul {acc if k == 0 else term}, {info.results[0][0]}, {self.constant(unit, shape)}", span)
            if k:
                last = k == int(np.prod(shape)) - 1
                self.emit(f"add {dest if last and dest is not None else acc}, {acc}, {term}", span)
        if int(np.prod(shape)) == 1 or dest is None:
            if dest is not None:
                self.emit(f"mov {dest}, {acc}", span)
                return dest
            return acc
        return dest

    def call(self, node: ast.Call, kids, args, shapes, values, dest) -> str:
        name = node.function
        shape = shapes[id(node)]
        if name in self.functions:
            definition = self.functions[name]
            instance = self.instance(node, definition, tuple(shapes[id(k)] for k in kids))
            for param, cell in zip(instance.params, args):
                if param.cell != cell:
                    self.emit(f"mov {param.cell}, {cell}", node.span)
            self.emit(f"call {instance.label}", node.span)
            if dest is not None:
                self.emit(f"mov {dest}, {instance.ret.cell}", node.span)
                return dest
            return instance.ret.cell
        if name in CONSTRUCTORS:
            return self.constant(self.constructed(node), shape)
        if name in ELEMENTWISE_ROUTINES:
            if shape == ():
                return self.routine_call(name, args, dest, node.span)
            return self.elementwise(name, [(args[0], shape)], shape, dest, node.span)
        if name == "abs":
            positive, negative = self.temp(shape), self.temp(shape)
            self.emit(f"relu {positive}, {args[0]}", node.span)
            self.emit(f"mul {negative}, {args[0]}, {self.constant(-1.0)}", node.span)
            self.emit(f"relu {negative}, {negative}", node.span)
            out = self.result(shape, dest)
            self.emit(f"add {out}, {positive}, {negative}", node.span)
            return out
        if name == "relu":
            out = self.result(shape, dest)
            self.emit(f"relu {out}, {args[0]}", node.span)
            return out
        if name in ("min", "max"):
            out = self.result(shape, dest)
            f, second, end = self.flag_cell(), self.label(), self.label()
            a, b = args
            # max: a - b <= 0 -> b, else a; min: a - b <= 0 -> a, else b (one exact subtraction)
            self.emit(f"fleq {f}, sub, {a}, {b}, {f}, {second}", node.span)
            self.emit(f"mov {out}, {a if name == 'max' else b}", node.span)
            self.emit(f"jmp {end}", node.span)
            self.place(second)
            self.emit(f"mov {out}, {b if name == 'max' else a}", node.span)
            self.place(end)
            return out
        if name == "mulw":
            return self.routine_call("mulw", args, dest, node.span)
        if name == "pow":
            power = ast.Pow(kids[0], kids[1], node.span, node.span)
            return self.power(power, args, shapes, values, dest)
        if name == "transpose":
            if len(shape) < 2:
                return args[0]
            out = self.result(shape, dest)
            self.emit(f"transpose {out}, {args[0]}", node.span)
            return out
        if name in ("inv", "solve", "norm", "norm1", "norminf"):
            routine = {"inv": "inverse", "norm": "vnorm" if len(shapes[id(kids[0])]) == 1 else "fnorm"}.get(name, name)
            out = self.routine_call(routine, args, None, node.span)
            if dest is not None:
                self.emit(f"mov {dest}, {out}", node.span)
                return dest
            if shape != ROUTINES[routine].results[0][1]:  # a corner of the 8 x 8 result
                corner = self.temp(shape)
                self.emit(f"mov {corner}, {out}", node.span)
                return corner
            return out
        raise AssertionError(name)  # pragma: no cover

    def library_call(self, call: ast.Call, tuple_values: bool) -> list[tuple[str, Shape]]:
        """A stdlib routine with several results: (cell, shape) of each, in Flow's order."""
        name = call.function
        info = ROUTINES[name]
        checked = [self.check(arg) for arg in call.args]
        shapes = [c[0][id(a)] for c, a in zip(checked, call.args)]
        params = list(info.params)
        if name == "power_iteration":
            if len(call.args) not in (1, 2):
                raise self.error(ErrorCode.OPERAND_COUNT, "power_iteration takes A, or A and a start vector",
                                 call.span)
        elif len(call.args) != len(params):
            raise self.error(ErrorCode.OPERAND_COUNT, f"{name} takes {len(params)} arguments "
                             f"({', '.join(p for p, _ in params)}), got {len(call.args)}", call.span)
        n = None
        for k, (shape, (param, wanted)) in enumerate(zip(shapes, params)):
            ok = len(shape) == len(wanted) and all(s <= w for s, w in zip(shape, wanted))
            if name in ("inverse", "power_iteration") and k == 0:
                ok = ok and shape[0] == shape[1]
                n = shape[0] if ok else None
            if name in ("backprop_mlp2",):
                ok = shape == wanted
            if name == "power_iteration" and k == 1:
                ok = ok and n is not None and shape == (n,)
            if not ok:
                raise self.error(ErrorCode.SHAPE_MISMATCH, f"{name}'s argument {param} takes "
                                 f"{describe(wanted) if name == 'backprop_mlp2' else 'up to ' + describe(wanted)}"
                                 f"{' (square)' if name in ('inverse', 'power_iteration') and k == 0 else ''}, "
                                 f"not {describe(shape)}", call.args[k].span)
        self.include(name)
        cells = []
        last = len(call.args) - 1
        for k, (arg, (sh, vals)) in enumerate(zip(call.args, checked)):
            param, wanted = params[k]
            hint = param if (k == last and shapes[k] == wanted and not isinstance(arg, (ast.Name, ast.Num))) else None
            cells.append(self.expression(arg, sh, vals, dest=hint, stable=k < last))
        for k, cell in enumerate(cells):
            if cell != params[k][0]:
                self.emit(f"mov {params[k][0]}, {cell}", call.span)
        if name == "power_iteration" and len(call.args) == 1:
            self.emit(f"mov pi_v, {self.constant(1.0, (8,))}", call.span)  # the start: all ones
        self.emit(f"call {name}", call.span)
        results = []
        for cell, shape in info.results:
            if name == "inverse" and cell == "inv_out":
                shape = (n, n)
            elif name == "power_iteration" and cell == "pi_v":
                shape = (n,)
            elif name == "sgd_linear" and cell == "lin_w":
                shape = shapes[2]
            results.append((cell, shape))
        return results

    def branch(self, node, target: str, when: bool) -> None:
        """Jump to ``target`` when ``node`` is ``when``; fall through otherwise (short-circuit)."""
        stack, deepest = [(node, 1)], 0
        while stack:
            item, depth = stack.pop()
            if depth > MAX_TEST_DEPTH:
                raise self.error(ErrorCode.UNEXPECTED_TOKEN, f"a test nests and, or and not more than "
                                 f"{MAX_TEST_DEPTH} deep", item.span)
            if isinstance(item, ast.Not):
                stack.append((item.operand, depth + 1))
            elif isinstance(item, ast.BoolOp):
                stack += [(item.left, depth + 1), (item.right, depth + 1)]
        self._branch(node, target, when)

    def _branch(self, node, target: str, when: bool) -> None:
        if isinstance(node, ast.Not):
            self._branch(node.operand, target, not when)
        elif isinstance(node, ast.BoolOp):
            if (node.op == "and") != when:  # and/False, or/True: either side decides
                self._branch(node.left, target, when)
                self._branch(node.right, target, when)
            else:
                skip = self.label()
                self._branch(node.left, skip, not when)
                self._branch(node.right, target, when)
                self.place(skip)
        elif isinstance(node, ast.Compare):
            left = self.scalar_operand(node.left, node.op, stable=True)
            right = self.scalar_operand(node.right, node.op)
            self.compare(node.op, left, right, target, when)
            self.release()
        else:
            cell = self.scalar_operand(node, "if")
            self.compare("!=", cell, self.constant(0.0), target, when)
            self.release()

    def scalar_operand(self, node, op: str, stable: bool = False) -> str:
        shapes, values = self.check(node)
        if shapes[id(node)] != ():
            what = "a test" if op == "if" else f"'{op}'"
            raise self.error(ErrorCode.SHAPE_MISMATCH, f"{what} compares scalars; this is {describe(shapes[id(node)])}",
                             node.span)
        return self.expression(node, shapes, values, stable=stable)

    def compare(self, op: str, a: str, b: str, target: str, when: bool) -> None:
        f = self.flag_cell()

        def le(x: str, y: str, to: str) -> None:  # jump when x <= y: one instruction, exact (x - y keeps the sign)
            self.emit(f"fleq {f}, sub, {x}, {y}, {f}, {to}")

        def gt(x: str, y: str, to: str) -> None:  # jump when x > y
            skip = self.label()
            le(x, y, skip)
            self.emit("jmp " + to)
            self.place(skip)

        if not when:
            op = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}[op]
        if op == "<=":
            le(a, b, target)
        elif op == ">=":
            le(b, a, target)
        elif op == ">":
            gt(a, b, target)
        elif op == "<":
            gt(b, a, target)
        elif op == "==":
            first, skip = self.label(), self.label()
            le(a, b, first)
            self.emit("jmp " + skip)
            self.place(first)
            le(b, a, target)
            self.place(skip)
        else:  # !=
            gt(a, b, target)
            gt(b, a, target)
