"""`fleqc calc`: expressions compiled to FLEQ programs over the stdlib match Python's float
evaluation within 1e-9 relative (reference backend by default; the transformer is slow); bad
expressions and domain errors are FleqErrors with the column of the mistake."""

from __future__ import annotations

import math

import numpy as np
import pytest
from click.testing import CliRunner

from fleqc import api
from fleqc.calc import calculate, compile_expression
from fleqc.cli.calc import calc_command
from fleqc.cli import main
from fleqc.errors import ErrorCode as E
from fleqc.errors import FleqError
from tests.support.stdlib_support import run_on

EXPRESSIONS = {
    "1 + 2 * 3": 7.0,
    "(1 + 2) * 3": 9.0,
    "-2^2": -4.0,
    "(-2)^2": 4.0,
    "2^-1": 0.5,
    "2^3^2": 512.0,
    "10 - 4 - 3": 3.0,
    "64 / 4 / 2": 8.0,
    "--3": 3.0,
    "+5": 5.0,
    ".5 * -3": -1.5,
    "1e3 + 2.": 1002.0,
    "sqrt(2)": math.sqrt(2),
    "sqrt(0)": 0.0,
    "sqrt(1e-300) * 1e20": math.sqrt(1e-300) * 1e20,
    "exp(1)": math.e,
    "exp(-700)": math.exp(-700),
    "log(1)": 0.0,
    "log(1 + 1e-12)": math.log(1 + 1e-12),
    "log(1e300)": math.log(1e300),
    "1/3": 1 / 3,
    "22/7 - 3": 22 / 7 - 3,
    "1/1e-300": 1 / 1e-300,
    "(1.5e10*3 - 7)/(2 - 1e-5)": (1.5e10 * 3 - 7) / (2 - 1e-5),
    "sqrt(2)^3 - 1/3": math.sqrt(2) ** 3 - 1 / 3,
    "exp(log(10))": math.exp(math.log(10)),
    "(1 + 1/1000)^1000": (1 + 1 / 1000) ** 1000,
    "0^0": 1.0,
    "3^(2*2)": 81.0,
    "2^-90": 2.0 ** -90,
    "sqrt(3^2 + 4^2)": 5.0,
    "log(2)*1e-3/7": math.log(2) * 1e-3 / 7,
}


def close(got: float, want: float) -> bool:
    return got == want if want == 0 else abs(got - want) <= 1e-9 * abs(want)


@pytest.mark.parametrize("text, want", list(EXPRESSIONS.items()), ids=list(EXPRESSIONS))
def test_expressions(text, want):
    got, result, compiled = calculate(text)
    assert result.halted
    assert compiled.expected == pytest.approx(want, rel=1e-15, abs=0)
    assert close(got, compiled.expected), (got, compiled.expected)


def _ieee_only(text: str) -> bool:
    """Whether ``text`` uses only + - * / and sqrt: correctly rounded on both backends (issue 13),
    so the result is Python's float bit for bit."""
    return not any(word in text for word in ("exp", "log", "^"))


EXACT_EXPRESSIONS = [text for text in EXPRESSIONS if _ieee_only(text)] + [
    "1/3 + 2/3", "7/3", "1/10", "2/3 * 3", "sqrt(2) * sqrt(2)", "sqrt(1e-310)", "1e-300 / 3", "1 / 3e-300",
    "-1e-310 / 1e-10", "1e-310 / 3", "5e-324 / 2", "1.5e-323 / 2", "-7 / 3", "7 / -3", "1e150 / 1e-150 / 7e149", "sqrt(10) - 3.1622776601683795", "(0.1 + 0.2) / 0.3",
    "1e29 * 1e29", "1e-200 * 3e-130", "7 * 1e-320 * 3e300", "1 / 3 * 1e100 * 1e100",
]


@pytest.mark.parametrize("text", EXACT_EXPRESSIONS)
def test_division_and_sqrt_print_pythons_float(text):
    """div and sqrt are correctly rounded (stdlib/arith_div.fleq, arith_sqrt.fleq), + - * single IEEE
    operations: the printed result is Python's float value, bit for bit."""
    got, result, compiled = calculate(text)
    assert result.halted
    assert got == compiled.expected, (text, got, compiled.expected)


def test_random_division_and_sqrt_expressions_are_pythons_float():
    for text in random_cases(200, seed=12, ieee_only=True):
        got, _, compiled = calculate(text)
        assert got == compiled.expected, (text, got, compiled.expected)


def random_expression(rng: np.random.Generator, depth: int) -> str:
    if depth == 0 or rng.random() < 0.25:
        value = rng.choice([rng.uniform(0, 10), rng.uniform(0, 1e6), 10 ** rng.uniform(-8, 8), rng.integers(1, 20)])
        return repr(float(value)) if rng.random() < 0.7 else str(int(rng.integers(0, 100)))
    kind = rng.integers(0, 9)
    a = random_expression(rng, depth - 1)
    if kind < 4:
        return f"({a} {'+-*/'[kind]} {random_expression(rng, depth - 1)})"
    if kind == 4:
        return f"-{a}"
    if kind == 5:
        return f"({a})^{int(rng.integers(-4, 5))}"
    return f"{['sqrt', 'exp', 'log'][kind - 6]}({a})"


def random_cases(count: int, seed: int, ieee_only: bool = False) -> list[str]:
    rng, out = np.random.default_rng(seed), []
    while len(out) < count:
        text = random_expression(rng, 3)
        if ieee_only and not _ieee_only(text):
            continue
        try:
            compile_expression(text)
        except FleqError:
            continue  # outside some routine's domain: the error tests cover that
        out.append(text)
    return out


def test_random_expressions_match_python():
    worst = 0.0
    for text in random_cases(40, seed=11):
        got, _, compiled = calculate(text)
        want = compiled.expected
        # cancellation: the ulp-level differences of the routines' results may be amplified by a
        # later subtraction, so compare against the size of the terms as well
        scale = max(abs(want), _magnitude(text))
        error = abs(got - want) / scale if scale else abs(got)
        worst = max(worst, error)
        assert error <= 1e-9, (text, got, want)
    assert worst < 1e-12


def _magnitude(text: str) -> float:
    """|terms| of the outermost sum (a bound for what cancellation can amplify)."""
    from fleqc.calc import Bin, evaluate, parse

    tree = parse(text)
    if isinstance(tree, Bin) and tree.op in "+-":
        return abs(evaluate(tree.left, text)) + abs(evaluate(tree.right, text))
    return 0.0


@pytest.mark.parametrize(
    "text, code, column",
    [
        ("1/0", E.DOMAIN_ERROR, 2),
        ("2 * 1/(3-3)", E.DOMAIN_ERROR, 6),
        ("sqrt(-1)", E.DOMAIN_ERROR, 1),
        ("1 + sqrt(2 - 3)", E.DOMAIN_ERROR, 5),
        ("log(0)", E.DOMAIN_ERROR, 1),
        ("log(-2)", E.DOMAIN_ERROR, 1),
        ("exp(1000)", E.DOMAIN_ERROR, 1),
        ("0^-1", E.DOMAIN_ERROR, 2),
        ("2^0.5", E.DOMAIN_ERROR, 3),
        ("1e300 * 1e300", E.DOMAIN_ERROR, 7),
        ("10^400", E.DOMAIN_ERROR, 3),
        ("1e400", E.LITERAL_RANGE, 1),
        ("1 +", E.UNEXPECTED_END, 4),
        ("(1 + 2", E.UNEXPECTED_END, 7),
        ("", E.UNEXPECTED_END, 1),
        ("2 3", E.UNEXPECTED_TOKEN, 3),
        ("1 + * 2", E.UNEXPECTED_TOKEN, 5),
        ("sqrt 2", E.UNEXPECTED_TOKEN, 6),
        ("tan(1)", E.UNKNOWN_FUNCTION, 1),
        ("1 $ 2", E.UNEXPECTED_CHARACTER, 3),
        ("2 ** 3", E.UNEXPECTED_TOKEN, 4),
    ],
)
def test_errors_have_a_column(text, code, column):
    with pytest.raises(FleqError) as info:
        compile_expression(text)
    error = info.value
    assert error.code == code, error.render()
    assert (error.span.file, error.span.line, error.span.column) == ("<calc>", 1, column), error.render()
    assert error.render().splitlines()[1].strip() == text.strip()


def test_emit_prints_a_program_that_compiles():
    runner = CliRunner()
    out = runner.invoke(main, ["calc", "--emit", "sqrt(2) / 3"])
    assert out.exit_code == 0
    assert "call sqrt" in out.output and "call div" in out.output
    includes = [line for line in out.output.splitlines() if line.startswith(".include")]
    assert includes == ['.include "arith_sqrt.fleq"', '.include "arith_div.fleq"']  # only what it calls
    result = api.run(api.compile(out.output), backend="reference")
    assert close(float(result.memory["result"]), math.sqrt(2) / 3)


@pytest.mark.parametrize("text, includes", [
    ("1 + 2 * 3", []), ("7 / 3", ["arith_div.fleq"]), ("exp(1) - log(2)", ["arith_exp.fleq", "arith_log.fleq"]),
    ("2^-3 / 5", ["arith_pow.fleq", "arith_div.fleq"]),
])
def test_a_program_includes_only_what_it_calls(text, includes):
    compiled = compile_expression(text)
    assert [line.split('"')[1] for line in compiled.source.splitlines() if line.startswith(".include")] == includes
    program = api.compile(compiled.source)
    assert close(float(api.run(program, backend="reference").memory["result"]), compiled.expected)


def test_a_division_fits_a_256_column_machine():
    program = api.compile(compile_expression("7/3").source)
    assert 1 + 64 + len(program.cells) + len(program.instructions) <= 256
    assert api.build(program).config.columns == 256


def test_command_prints_the_result_and_reports_errors():
    runner = CliRunner()
    out = runner.invoke(calc_command, ["1/3 + 1", "--backend", "reference"])
    assert out.exit_code == 0, out.output
    assert float(out.stdout.strip()) == pytest.approx(4 / 3, rel=1e-15)
    bad = runner.invoke(calc_command, ["sqrt(-4)", "--backend", "reference"])
    assert bad.exit_code == 1
    assert "<calc>:1:1: error[domain-error]" in bad.output


@pytest.mark.slow
def test_on_the_transformer():
    compiled = compile_expression("sqrt(2) * 3 - 1/7")
    result = run_on(api.compile(compiled.source), "transformer")
    assert close(float(result.memory["result"]), compiled.expected)


@pytest.mark.parametrize("backend", ["noisy"])
def test_transformer_errors_stay_within_1e_9(backend):
    for text in ["sqrt(2)^3 - 1/3", "exp(log(10)) / 7", "log(1 + 1e-9)", "(1 + 1/1000)^8", "sqrt(1e-300) * 3"]:
        compiled = compile_expression(text)
        result = run_on(api.compile(compiled.source), backend)
        assert close(float(result.memory["result"]), compiled.expected), text


EXACT_ON_THE_TRANSFORMER = ["(1 + 2) * 7 / 3", "-2^2", "2^52 + 1", "0.1 * 3", "(0.1 + 0.2) * 10 - 3",
                            "1.1^5", "3 * 4 - 12", "1/3", "sqrt(2)", "(0.1 + 0.2) / 0.3", "1e29 * 1e29", "2^150"]


def test_products_and_sums_print_pythons_float_on_the_transformer():
    """+, -, * and whole powers are single IEEE operations on the machine (exact products; mulw for
    factors beyond mul's window), and div and sqrt are correctly rounded, so the transformer prints
    Python's float value bit for bit (issue 13's (1 + 2) * 7 / 3 included)."""
    for text in EXACT_ON_THE_TRANSFORMER:
        compiled = compile_expression(text)
        result = run_on(api.compile(compiled.source), "transformer")
        assert float(result.memory["result"]) == compiled.expected, text


def test_exp_and_log_on_the_transformer_are_the_references_bits():
    """exp and log (within 1 ulp) compute with exact functions; the machine's tables only seed
    them (pow2 rounds the exp table to an exact power of two, log's Newton step corrects its seed), so the transformer prints the reference's bits (and here Python's too)."""
    for text in ["exp(1)", "log(10)", "log(1 + 1e-12)"]:
        program = api.compile(compile_expression(text).source)
        on_the_machine = float(run_on(program, "transformer").memory["result"])
        assert on_the_machine == float(api.run(program, backend="reference").memory["result"]), text
