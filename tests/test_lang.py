"""Flow (fleqc.lang): a table of programs against numpy twins on the reference interpreter (bit for
bit where the operations are IEEE's or correctly rounded, within the stated bound for exp, log,
sigmoid and the iterative routines), the statements, functions, the source map, the output by
name, and errors located in the user's file with stable codes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from fleqc import api
from fleqc.cli import main
from fleqc.errors import ErrorCode as E
from fleqc.errors import FleqError
from fleqc.lang import translate
from tests.support.app_twins import matmul
from tests.support.flow import run_flow, same_bits, ulps, write

A2 = np.array([[4.0, 1.0], [2.0, 3.0]])
A3 = np.array([[4.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 2.0]])
V3 = np.array([0.1, -2.5, 3.0])


def _sgd_twin(X, y, w, lr, epochs):
    """stdlib sgd_linear restated with the machine's products and pairwise sums (8 x 8 cells)."""
    X8, y8, w8 = np.zeros((8, 8)), np.zeros(8), np.zeros(8)
    X8[:len(X), :len(X[0])], y8[:len(y)], w8[:len(w)] = X, y, w
    s = lr * 0.25
    for _ in range(epochs):
        r = matmul(X8, w8) - y8
        w8 = w8 - matmul(X8.T, r) * s
    r = matmul(X8, w8) - y8
    return w8[:len(w)], matmul(r, r) * 0.125


SGD_W, SGD_LOSS = _sgd_twin([[1, 1], [1, 2], [1, 3], [1, 4]], [2.1, 3.9, 6.2, 7.8], [0, 0], 0.1, 200)

# (Flow program, {variable: numpy twin}, bound): bound "bits" (the same float64 bits), or a
# number of ulps, or ("rel", r) a relative bound
TABLE = [
    ("x = 0.1\ny = 0.2\nz = x + y", {"z": 0.1 + 0.2}, "bits"),
    ("x = 1e300\ny = x * 1e-310", {"y": 1e300 * 1e-310}, "bits"),
    ("a = 7\nb = 3\nq = a / b", {"q": 7 / 3}, "bits"),
    ("a = 2\nr = sqrt(a)", {"r": math.sqrt(2)}, "bits"),
    ("a = 2\nr = sqrt(a) ** 3 - 1 / 3", {"r": math.sqrt(2) * (math.sqrt(2) * math.sqrt(2)) - 1 / 3}, "bits"),
    ("x = 1.1\ny = x ** 5", {"y": 1.1 * ((1.1 * 1.1) * (1.1 * 1.1))}, "bits"),
    ("x = 3\ny = x ** -2", {"y": 1 / 9}, "bits"),
    ("x = -2\ny = -x ** 2", {"y": -4.0}, "bits"),
    ("x = 1.5\nn = 3\ny = x ** n", {"y": 1.5 ** 3}, "bits"),
    ("x = 0.7\ny = exp(x)\nz = log(x)\ns = sigmoid(x)",
     {"y": math.exp(0.7), "z": math.log(0.7), "s": 1 / (1 + math.exp(-0.7))}, 1),
    ("A = [[4, 1], [2, 3]]\nx = [1, 2]\ny = A @ x\nB = A @ A.T\nd = x @ x",
     {"y": matmul(A2, [1, 2]), "B": matmul(A2, A2.T), "d": 5.0}, "bits"),
    ("v = [0.1, -2.5, 3]\nw = v * 3 + 1\nu = 2 - v\nn = -v", {"w": V3 * 3 + 1, "u": 2 - V3, "n": -V3}, "bits"),
    ("v = [0.1, -2.5, 3]\nw = v / 7\nr = 1 / v", {"w": V3 / 7, "r": 1 / V3}, "bits"),
    ("v = [1, 2, 3]\ns = sqrt(v)\na = abs([-1.5, 2, -0.25])\nr = relu([-1, 2])",
     {"s": np.sqrt([1.0, 2, 3]), "a": [1.5, 2, 0.25], "r": [0.0, 2]}, "bits"),
    ("A = [[4, 1, 0], [1, 3, 1], [0, 1, 2]]\nx = A[1]\ne = A[2, 1]\nl = x[-1]\nt = transpose(A)",
     {"x": A3[1], "e": 1.0, "l": 1.0, "t": A3.T}, "bits"),
    ("a = 2\nb = 3\nv = [a, b * 2, a - b]\nM = [[a, 0], [0, b]]", {"v": [2.0, 6, -1], "M": [[2.0, 0], [0, 3]]}, "bits"),
    ("v = [1, 2, 3]\nv[1] = 7\nA = zeros(2, 2)\nA[0, 1] = 5", {"v": [1.0, 7, 3], "A": [[0.0, 5], [0, 0]]}, "bits"),
    ("a = 3\nb = -2\nhi = max(a, b)\nlo = min(a, b)\nm = max(-0.5, a * 0)", {"hi": 3.0, "lo": -2.0, "m": 0.0}, "bits"),
    ("z = zeros(3)\no = ones(2, 3)\ni = eye(2)", {"z": np.zeros(3), "o": np.ones((2, 3)), "i": np.eye(2)}, "bits"),
    ("a = 1e200\nb = 1e200\nc = mulw(a, b * 1e-150)", {"c": 1e200 * (1e200 * 1e-150)}, "bits"),
    ("A = [[4, 1, 0], [1, 3, 1], [0, 1, 2]]\nX = inv(A)", {"X": np.linalg.inv(A3)}, ("rel", 1e-13)),
    ("A = [[4, 1, 0], [1, 3, 1], [0, 1, 2]]\nx = solve(A, [1, 2, 3])", {"x": np.linalg.solve(A3, [1, 2, 3])},
     ("rel", 1e-13)),
    ("v = [3, 4]\nn = norm(v)\nA = [[1, 2], [3, 4]]\nf = norm(A)\no = norm1(A)\ni = norminf(A)",
     {"n": 5.0, "f": np.linalg.norm([[1, 2], [3, 4]]), "o": 6.0, "i": 7.0}, 2),
    ("A = [[4, 1, 0], [1, 3, 1], [0, 1, 2]]\nlam, v, k = power_iteration(A)", {"lam": max(np.linalg.eigvalsh(A3))},
     ("rel", 1e-9)),
    ("A = [[2, 0], [0, 1]]\nX, k = inverse(A)", {"X": [[0.5, 0], [0, 1]]}, ("rel", 1e-15)),
    ("X = [[1, 1], [1, 2], [1, 3], [1, 4]]\ny = [2.1, 3.9, 6.2, 7.8, 0, 0, 0, 0]\n"
     "w, loss = sgd_linear(X, y, [0, 0], 0.1, 200)", {"w": SGD_W, "loss": SGD_LOSS}, "bits"),
    ("total = 0\nfor i in range(1, 11):\n    total += i * i", {"total": 385.0, "i": 10.0}, "bits"),
    ("total = 0\nn = 4\nfor i in range(n):\n    total = total * 10 + i", {"total": 123.0, "i": 3.0}, "bits"),
    ("c = 0\nfor _ in range(5):\n    c += 2", {"c": 10.0}, "bits"),
    ("x = 1\nk = 0\nwhile abs(x * x - 2) > 1e-15 and k < 20:\n    x = (x + 2 / x) / 2\n    k += 1",
     {"x": math.sqrt(2)}, 1),
]


def _check(got, want, bound):
    if bound == "bits":
        assert same_bits(got, want), (got, want)
    elif isinstance(bound, tuple):
        want = np.asarray(want, dtype=np.float64)
        assert np.allclose(got, want, rtol=bound[1], atol=0), (got, want)
    else:
        assert ulps(got, want) <= bound, (got, want, ulps(got, want))


@pytest.mark.parametrize("source, twins, bound", TABLE, ids=[t[0].splitlines()[-1][:40] for t in TABLE])
def test_programs_against_numpy_twins(source, twins, bound, tmp_path):
    result, _ = run_flow(tmp_path, source)
    assert result.halted
    for name, want in twins.items():
        _check(result.memory[name], want, bound)


TESTS = [
    ("a < b", lambda a, b: a < b), ("a <= b", lambda a, b: a <= b), ("a > b", lambda a, b: a > b),
    ("a >= b", lambda a, b: a >= b), ("a == b", lambda a, b: a == b), ("a != b", lambda a, b: a != b),
    ("not a < b", lambda a, b: not a < b), ("a < b and b < 3", lambda a, b: a < b and b < 3),
    ("a > b or b == 2", lambda a, b: a > b or b == 2), ("not (a == b or a > 1)", lambda a, b: not (a == b or a > 1)),
    ("a", lambda a, b: a != 0),
]


@pytest.mark.parametrize("test, python", TESTS, ids=[t[0] for t in TESTS])
def test_if_elif_else_and_while_follow_pythons_tests(test, python, tmp_path):
    pairs = [(1.0, 2.0), (2.0, 2.0), (3.0, 2.0), (0.0, -1e-300), (-0.0, 0.0), (5e-324, 0.0)]
    lines = []
    for k, (a, b) in enumerate(pairs):
        lines += [f"a = {a!r}", f"b = {b!r}", f"if {test}:", f"    r{k} = 1", "elif a == 12345:",
                  f"    r{k} = 2", "else:", f"    r{k} = 0", f"w{k} = 0", f"while ({test}) and w{k} < 3:",
                  f"    w{k} += 1"]
    result, _ = run_flow(tmp_path, "\n".join(lines))
    for k, (a, b) in enumerate(pairs):
        assert result.memory[f"r{k}"] == (1.0 if python(a, b) else 0.0), (test, a, b)
        assert result.memory[f"w{k}"] == (3.0 if python(a, b) else 0.0), (test, a, b)


def test_break_continue_and_nested_loops(tmp_path):
    source = """
s = 0
for i in range(10):
    if i == 2:
        continue
    if i >= 6:
        break
    for j in range(i):
        s += j
k = 0
while 1:
    k += 1
    if k > 4:
        break
"""
    result, _ = run_flow(tmp_path, source)
    want = sum(j for i in range(6) if i != 2 for j in range(i))
    assert result.memory["s"] == want and result.memory["k"] == 5.0


def test_functions_calls_copies_and_locals(tmp_path):
    source = """
def hypot(a, b):
    return sqrt(a * a + b * b)

def unit(v):
    return v / sqrt(v @ v)

def both(a, b):
    t = hypot(a, b)
    return t + hypot(b, a)

def reset():
    q = 0

h = hypot(3, 4)
u = unit([3, 4])
w = unit([1, 2, 2])
d = both(5, 12) + hypot(8, 15)
reset()
"""
    result, program = run_flow(tmp_path, source)
    m = result.memory
    assert m["h"] == 5.0 and same_bits(m["u"], [0.6, 0.8]) and same_bits(m["w"], np.array([1, 2, 2]) / 3.0)
    assert m["d"] == 43.0
    assert "unit__v" in m and "unit_2__v" in m and "both__t" in m
    mine = [s.name for s in program.data_labels() if s.span.file == program.source_name]
    assert "unit__v" in mine and not any(name.startswith("_") for name in mine)  # temporaries hidden


def test_the_source_map_points_every_program_step_at_the_users_line(tmp_path):
    source = "a = 3\nb = 4\nc = sqrt(a * a + b * b)\nif c > 4:\n    d = c * 2\n"
    path = write(tmp_path, source)
    program = api.compile(path)
    for instruction in program.instructions:
        assert instruction.span is not None
        assert instruction.span.file == str(path) or "stdlib" in instruction.span.file, instruction.span
    assert not any(i.span.file.endswith(".flow.fleq") for i in program.instructions)
    result = CliRunner().invoke(main, ["run", str(path), "--backend", "reference", "--trace"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if " pc " in line]
    assert "prog.flow:3" in lines[0] and "c = sqrt(a * a + b * b)" in lines[0]
    assert all("prog.flow:" in line for line in lines) and any("(in sqrt)" in line for line in lines)
    assert "prog.flow:5" in lines[-1] and "d = c * 2" in lines[-1]


def test_run_prints_variables_by_name_and_json(tmp_path):
    path = write(tmp_path, "A = [[1, 2], [3, 4]]\nx = A @ [1, 1]\ns = x @ x\n")
    out = CliRunner().invoke(main, ["run", str(path), "--backend", "reference", "--json"])
    assert out.exit_code == 0, out.output
    memory = json.loads(out.stdout)["memory"]
    assert memory == {"A": [[1.0, 2.0], [3.0, 4.0]], "x": [3.0, 7.0], "s": 58.0}


def test_build_emit_prints_readable_assembly_that_links_only_what_it_uses(tmp_path):
    path = write(tmp_path, "x = 2\ny = sqrt(x) / 3\n")
    out = CliRunner().invoke(main, ["build", str(path), "--emit"])
    assert out.exit_code == 0, out.output
    assert "call sqrt" in out.output and "call div" in out.output and "; 2: y = sqrt(x) / 3" in out.output
    includes = [line for line in out.output.splitlines() if line.startswith(".include")]
    assert includes == ['.include "arith_sqrt.fleq"', '.include "arith_div.fleq"']
    built = CliRunner().invoke(main, ["build", str(path), "-o", str(tmp_path / "p.npz")])
    assert built.exit_code == 0 and (tmp_path / "p.npz").exists()
    card_run = CliRunner().invoke(main, ["run", str(tmp_path / "p.npz"), "--backend", "reference", "--json"])
    assert json.loads(card_run.stdout)["memory"]["y"] == math.sqrt(2) / 3


def test_emit_refuses_assembly(tmp_path):
    path = tmp_path / "p.fleq"
    path.write_text(".machine fleq\nhalt\n")
    out = CliRunner().invoke(main, ["build", str(path), "--emit"])
    assert out.exit_code == 1 and "error[unknown-format]" in out.output


ERRORS = [
    ("x = [1, 2]\ny = x + [1, 2, 3]\n", E.SHAPE_MISMATCH, 2, 7),
    ("A = [[1, 2], [3]]\n", E.SHAPE_MISMATCH, 1, 14),
    ("x = 1\nx = [1, 2]\n", E.SHAPE_MISMATCH, 2, 5),
    ("y = x\n", E.UNDEFINED_NAME, 1, 5),
    ("y = tan(1)\n", E.UNKNOWN_FUNCTION, 1, 5),
    ("y = sqrt(1, 2)\n", E.OPERAND_COUNT, 1, 5),
    ("x = 1\nif x < 2 < 3:\n    y = 1\n", E.UNEXPECTED_TOKEN, 2, 10),
    ("x = 1\ny = x < 2\n", E.WRONG_KIND, 2, 7),
    ("def f(n):\n    return f(n)\ny = f(1)\n", E.RECURSION, 2, 12),
    ("_x = 1\n", E.RESERVED_NAME, 1, 1),
    ("inv_a = 1\n", E.RESERVED_NAME, 1, 1),
    ("sqrt = 1\n", E.RESERVED_NAME, 1, 1),
    ("v = [1, 2]\ny = v[2]\n", E.ADDRESS_RANGE, 2, 7),
    ("v = [1, 2]\ni = 0\ny = v[i]\n", E.WRONG_KIND, 3, 7),
    ("x = 1 / 0\n", E.DOMAIN_ERROR, 1, 7),
    ("x = sqrt(-1)\n", E.DOMAIN_ERROR, 1, 5),
    ("x = 2 ** 0.5\n", E.DOMAIN_ERROR, 1, 10),
    ("x = 1e400\n", E.LITERAL_RANGE, 1, 5),
    ("x = 1 +\n", E.UNEXPECTED_TOKEN, 1, 8),
    ("x = (1 +\n", E.UNEXPECTED_END, 1, 9),
    ("x = 1 $ 2\n", E.UNEXPECTED_CHARACTER, 1, 7),
    ("if 1:\n        x = 1\n    y = 2\n", E.UNEXPECTED_TOKEN, 3, 1),
    ("x = 1\n    y = 2\n", E.UNEXPECTED_TOKEN, 2, 1),
    ("return 1\n", E.UNEXPECTED_TOKEN, 1, 1),
    ("break\n", E.UNEXPECTED_TOKEN, 1, 1),
    ("x = [1, 2, 3, 4, 5, 6, 7, 8, 9]\n", E.SHAPE_MISMATCH, 1, 5),
    ("A = [[1, 2], [3, 4]]\nb = solve(A, [1, 2, 3])\n", E.SHAPE_MISMATCH, 2, 14),
    ("x, y = inverse([[1, 2], [3, 4]]), 2\n", E.UNEXPECTED_TOKEN, 1, 33),
    ("x, y = power_iteration([[1, 2], [3, 4]])\n", E.OPERAND_COUNT, 1, 1),
    ("def f(a):\n    q = a\ny = f(1)\n", E.WRONG_KIND, 3, 5),
    ("def f(a, a):\n    return a\n", E.DUPLICATE_LABEL, 1, 10),
    ("x = 1\nx.y = 2\n", E.UNEXPECTED_TOKEN, 2, 5),
    ("A = [[1, 2], [3, 4]]\nB = A.U\n", E.UNKNOWN_FUNCTION, 2, 7),
    ("for i in range(0.5):\n    pass\n", E.DOMAIN_ERROR, 1, 16),
    ("for i in xrange(3):\n    pass\n", E.UNEXPECTED_TOKEN, 1, 10),
    ("x = 1\nx\n", E.UNEXPECTED_TOKEN, 2, 1),
]


@pytest.mark.parametrize("source, code, line, column", ERRORS, ids=[e[0].splitlines()[-1][:30] for e in ERRORS])
def test_errors_are_located_in_the_users_source(source, code, line, column, tmp_path):
    path = write(tmp_path, source)
    with pytest.raises(FleqError) as info:
        api.compile(path)
    error = info.value
    assert error.code == code, error.render()
    assert (error.span.file, error.span.line, error.span.column) == (str(path), line, column), error.render()
    rendered = error.render().splitlines()
    assert rendered[1].strip() == source.splitlines()[line - 1].strip() and "^" in rendered[2]


def test_an_error_through_the_command_line_exits_1_without_a_traceback(tmp_path):
    path = write(tmp_path, "x = [1, 2]\ny = x @ [[1, 2, 3]]\n")
    out = CliRunner().invoke(main, ["run", str(path), "--backend", "reference"])
    assert out.exit_code == 1 and "Traceback" not in out.output
    assert out.output.startswith(f"{path}:2:7: error[shape-mismatch]")


def test_a_run_time_domain_error_names_the_flow_line(tmp_path):
    path = write(tmp_path, "x = 0\ny = 1 / x\n")
    out = CliRunner().invoke(main, ["run", str(path), "--backend", "reference"])
    # the statement's line, with the caret under the statement (as for an assembly instruction)
    assert out.exit_code == 1 and f"{path}:2:1: error[domain-error]" in out.output, out.output
    assert "y = 1 / x" in out.output


def test_translation_is_deterministic_and_its_names_do_not_clash_with_the_stdlib(tmp_path):
    with pytest.raises(FleqError) as info:  # a built-in's name is not a function's
        translate("def sqrt(a):\n    return a\n", "p.flow")
    assert info.value.code == E.RESERVED_NAME
    source = "def ex(a):\n    r = exp(a) * 2\n    return r\ny = ex(1)\n"  # ex's cells vs exp's _ex_a, _ex_r
    assert translate(source, "p.flow").assembly == translate(source, "p.flow").assembly
    result, _ = run_flow(tmp_path, source)
    assert ulps(result.memory["y"], 2 * math.exp(1)) <= 2 and result.memory["ex__r"] == result.memory["y"]


def test_the_debugger_stops_at_a_flow_line(tmp_path):
    from fleqc.observe.debug import Debugger
    from fleqc.runner import Run

    path = write(tmp_path, "x = 0\nfor i in range(3):\n    x += sqrt(i)\ny = x * 2\n")
    debugger = Debugger(Run(api.compile(path), "reference"))
    assert debugger.location() == (str(path), 2)
    assert debugger.toggle(str(path), 4)
    debugger.cont()
    assert debugger.location() == (str(path), 4)
    assert debugger.file_lines()[3] == "y = x * 2"


def test_report_shows_the_flow_source(tmp_path):
    path = write(tmp_path, "a = 3\nb = sqrt(a * a + 16)\n")
    report = tmp_path / "r.html"
    out = CliRunner().invoke(main, ["run", str(path), "--backend", "reference", "--report", str(report)])
    assert out.exit_code == 0, out.output
    html = report.read_text(encoding="utf-8")
    assert "b = sqrt(a * a + 16)" in html and "prog.flow.fleq" not in html


def test_a_flow_card_disassembles_to_assembly_that_runs_the_same(tmp_path):
    path = write(tmp_path, "def sq(a):\n    return a * a\nz = sq(3) + sq(4)\nw = sq([1, 2])\nk = 0\nwhile k < 3:\n    k += 1\n")
    card = tmp_path / "p.npz"
    assert CliRunner().invoke(main, ["build", str(path), "-o", str(card)]).exit_code == 0
    listing = CliRunner().invoke(main, ["disasm", str(card)])
    assert listing.exit_code == 0, listing.output
    again = tmp_path / "again.fleq"
    again.write_text(listing.output, encoding="utf-8")
    first = api.run(api.compile(path), backend="reference")
    second = api.run(api.compile(again), backend="reference")
    assert first.steps == second.steps and first.memory["z"] == second.memory["z"] == 25.0


def _random_expression(rng, shape, depth):
    """A random Flow expression of ``shape`` (() or (3,) or (3, 3)) and its numpy twin's value."""
    env = {(): ("s", np.float64(0.75)), (3,): ("v", np.array([0.5, -1.25, 2.0])),
           (3, 3): ("M", np.array([[1.0, -0.5, 0.25], [0.125, 2.0, -1.0], [0.0, 1.5, -0.75]]))}
    if depth == 0 or rng.random() < 0.25:
        if rng.random() < 0.3:
            value = float(rng.integers(-8, 9)) / 4
            if shape == ():
                return repr(value), np.float64(value)
            return f"({repr(value)} + {env[shape][0]} * 0)", env[shape][1] * 0.0 + value
        return env[shape]
    kind = rng.integers(0, 5)
    if kind == 0:
        (a, x), (b, y) = _random_expression(rng, shape, depth - 1), _random_expression(rng, shape, depth - 1)
        op = str(rng.choice(["+", "-", "*"]))
        return f"({a} {op} {b})", {"+": x + y, "-": x - y, "*": x * y}[op]
    if kind == 1 and shape != ():
        (a, x), (b, y) = _random_expression(rng, (), depth - 1), _random_expression(rng, shape, depth - 1)
        return f"({a} * {b})", x * y
    if kind == 2:
        a, x = _random_expression(rng, shape, depth - 1)
        return f"(-{a})", -x
    if kind == 3 and shape != ():
        if shape == (3,):
            (a, x), (b, y) = _random_expression(rng, (3, 3), depth - 1), _random_expression(rng, (3,), depth - 1)
        else:
            (a, x), (b, y) = _random_expression(rng, (3, 3), depth - 1), _random_expression(rng, (3, 3), depth - 1)
        return f"({a} @ {b})", matmul(x, y)
    if kind == 3:
        (a, x), (b, y) = _random_expression(rng, (3,), depth - 1), _random_expression(rng, (3,), depth - 1)
        return f"({a} @ {b})", matmul(x, y)
    if kind == 4 and shape == (3, 3):
        a, x = _random_expression(rng, shape, depth - 1)
        return f"({a}).T", x.T
    return _random_expression(rng, shape, depth - 1)


def test_random_array_expressions_match_their_numpy_twins_bit_for_bit(tmp_path):
    rng = np.random.default_rng(2026)
    lines = ["s = 0.75", "v = [0.5, -1.25, 2]", "M = [[1, -0.5, 0.25], [0.125, 2, -1], [0, 1.5, -0.75]]"]
    want = {}
    for k in range(60):
        shape = [(), (3,), (3, 3)][k % 3]
        text, value = _random_expression(rng, shape, 4)
        lines.append(f"r{k} = {text}")
        want[f"r{k}"] = value
    result, _ = run_flow(tmp_path, "\n".join(lines))
    for name, value in want.items():
        assert same_bits(result.memory[name], value), (name, result.memory[name], value)


def test_a_function_reads_the_programs_variables_and_sets_entries_but_assigns_only_its_own(tmp_path):
    source = """
v = [1, 2, 3]
scale = 10
def f(a):
    scale = 2
    v[0] = a * scale
    return scale
r = f(4)
"""
    result, _ = run_flow(tmp_path, source)
    m = result.memory
    assert m["scale"] == 10.0 and m["f__scale"] == 2.0 and m["r"] == 2.0
    assert list(m["v"]) == [8.0, 2.0, 3.0]
