"""div, sqrt and mulw of the stdlib (stdlib/arith_div.fleq, arith_sqrt.fleq, arith_mulw.fleq) are
correctly rounded: bit for bit numpy's x / y, sqrt(x) and x * y, on random operands over the whole
accepted range (subnormal and extreme operands, quotients next to a rounding midpoint, perfect
squares and their neighbours, products of any two factors, subnormal products at rounding ties).
exp, log and sigmoid (arith_exp.fleq, arith_log.fleq, arith_sigmoid.fleq) are within 1 ulp of the
exact value (Python's decimal at 60 digits), over their whole ranges and near 1 (log) or 0.

They run on the reference interpreter, one compiled program per routine with its operands replaced
per run. The transformer computes the same bits: every function the routines use is bit-exact on it
(mul, mulerr, add, sub, relu; recip and sqrt only seed Newton's iteration, and the routines'
result does not depend on that seed beyond faithfulness, which the Newton steps reach from the
tables' 2.4e-7 or from any seed within 1e-6, tests/support/noisy.py), the branch is exact for every flag, and
test_calc runs divisions and square roots on the transformer and prints Python's float.

Subnormal quotients are correctly rounded too (the routine rounds to the subnormal grid and settles
its ties by the exact remainder). 10^3 operands per routine in the default suite, 10^5 in the slow
one.
"""

from __future__ import annotations

import dataclasses
import math
from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np
import pytest

import fleqc
from fleqc.machines.fleq import reference as fleq
from fleqc.machines.fleq.rows import EXP_MAX
from fleqc.machines import program_to_card
from tests.support.fleq_checks import assert_fleq_lockstep
from tests.support.noisy import noisy_functions
from tests.test_stdlib import arguments, program

TINY = 2.0**-1022


class Routine:
    """One routine compiled once; ``__call__`` runs it on new operands (the cells in_x, in_y)."""

    def __init__(self, name: str) -> None:
        names = arguments(name)
        self.program = program(name, *(1.0 for _ in names))
        self.inputs = [self.program.symbols[f"in_{n}"].address for n in names]
        self.result = self.program.symbols["res"].address

    def __call__(self, *args: float) -> float:
        return self.run(*args)[0]

    def run(self, *args: float) -> tuple[float, int]:
        """(result, steps) for the operands ``args``."""
        cells = list(self.program.cells)
        for address, value in zip(self.inputs, args):
            cells[address] = dataclasses.replace(cells[address], value=np.float64(value))
        run = fleq.run(dataclasses.replace(self.program, cells=tuple(cells)))
        assert run.halted
        return float(run.state.memory[self.result]), run.steps


def _bits(x: float) -> int:
    return int(np.float64(x + 0.0).view(np.int64))


def division_operands(rng: np.random.Generator, n: int) -> list[tuple[float, float]]:
    """(x, y) with |x| <= 2^1000, 0 < |y| <= 2^1000 and |x / y| <= 2^1000: a third random over the
    whole range (subnormals included), a third with quotients at 53-bit values plus or minus a
    little (next to a midpoint or on a representable value), a third of small integers and
    decimal fractions."""
    out = []
    while len(out) < n:
        kind = len(out) % 3
        if kind == 0:
            x = float(np.ldexp(rng.uniform(1, 2), rng.integers(-1074, 1000)) * rng.choice([-1, 1]))
            y = float(np.ldexp(rng.uniform(1, 2), rng.integers(-1074, 1000)) * rng.choice([-1, 1]))
        elif kind == 1:
            y = float(np.ldexp(rng.uniform(1, 2), rng.integers(-900, 900)))
            m = (2.0 * rng.integers(2**51, 2**52) + rng.choice([0.0, 1.0])) * 2.0 ** float(rng.integers(-80, 40))
            x = float(m * y) * (1 + float(rng.choice([0, 1, -1])) * 2.0**-52)
        else:
            x, y = float(rng.integers(-1000, 1000)) / 10.0, float(rng.integers(1, 1000)) / float(rng.choice([1, 10, 7]))
        with np.errstate(all="ignore"):
            q = np.float64(x) / np.float64(y)
        if y != 0 and abs(q) <= 2.0**1000 and abs(x) <= 2.0**1000 and abs(y) <= 2.0**1000:
            out.append((x, y))
    return out


def sqrt_operands(rng: np.random.Generator, n: int) -> list[float]:
    """x in {0} and [2^-1074, 2^1000]: random, perfect squares, and their neighbours."""
    out = [0.0, 2.0**-1074, 2.0**1000, TINY, 2.0, 4.0]
    while len(out) < n:
        kind = len(out) % 3
        if kind == 0:
            out.append(float(np.ldexp(rng.uniform(1, 2), rng.integers(-1074, 1001))))
        else:
            root = float(rng.integers(1, 2**26)) * 2.0 ** float(rng.integers(-530, 470))
            out.append(root * root * (1 + float(rng.integers(-2, 3)) * 2.0**-52 * (kind == 2)))
    return [x for x in out if x <= 2.0**1000][:n]


def small_ties(rng: np.random.Generator) -> tuple[float, float]:
    """Two factors below 2^-95 whose product is subnormal and lies just below a midpoint of the
    subnormal grid: (2^52 + 2^c + q 2^(c+1)) (2^53 - 1) is X 2^53 - X with X 2^53 on a midpoint
    (a routine that rounds the scaled-down factor before its last scale would round it the wrong
    way); both factors are then shifted by 2^+-s, which leaves the product unchanged."""
    q = float(rng.integers(0, 2**20))
    if rng.integers(0, 2):
        x, y = (2.0**52 + 2.0**31 + q * 2.0**32) * 2.0**-148, (2.0**53 - 1) * 2.0**-1011
    else:
        x, y = (2.0**52 + 2.0**36 + q * 2.0**37) * 2.0**-597, (2.0**53 - 1) * 2.0**-567
    shift = 2.0 ** float(rng.integers(0, 40))  # y 2^39 < 2^-475: both stay small
    return x / shift * float(rng.choice([-1, 1])), y * shift


def product_operands(rng: np.random.Generator, n: int) -> list[tuple[float, float]]:
    """(x, y) with |x y| <= 2^1000: a fifth with both factors anywhere in the float range
    (subnormals included), a fifth with one factor beyond mul's window (|b| > 2^96 or <= 2^-96)
    and the other anywhere, a fifth with both small, a fifth with subnormal products at or next to
    a rounding tie of the subnormal grid, and a fifth with both factors small and their product
    next to such a tie (:func:`small_ties`); zeros and signs."""
    out = [(0.0, 0.0), (0.0, 1e300), (1e-300, 0.0), (1e29, 1e29), (1.0, 1e-30), (2.0**-1074, 0.5),
           (2.0**-1074, 1.5), (-(2.0**500), 2.0**500), (2.0**-600, -(2.0**-400)),
           (1.2621792539129418e-29, 4.104536801298376e-289), (8.683048825413137e-165, 1.8645851828000515e-155)]
    while len(out) < n:
        kind = len(out) % 5
        exponents = {0: (-1074, 1000), 1: (-1074, 1000), 2: (-1074, -96)}.get(kind, (-1074, -96))
        x, y = (float(np.ldexp(rng.uniform(1, 2), rng.integers(*exponents)) * rng.choice([-1, 1])) for _ in range(2))
        if kind == 1:
            y = float(np.ldexp(rng.uniform(1, 2), rng.choice([rng.integers(97, 1000), rng.integers(-1074, -96)])))
        elif kind == 3:  # x = k 2^e, x y at or next to (m + 1/2) 2^-1074
            k, e = float(2 * rng.integers(1, 2**20) + 1), int(rng.integers(-1074, -1040))
            x = k * 2.0**e
            y = (float(rng.integers(0, 2**30)) + 0.5 + float(rng.integers(-2, 3)) * 2.0**-40) / k * 2.0 ** (-1074 - e)
        elif kind == 4:
            x, y = small_ties(rng)
        with np.errstate(all="ignore"):
            if abs(np.float64(x) * np.float64(y)) <= 2.0**1000:
                out.append((x, y) if rng.integers(0, 2) else (y, x))
    return out[:n]


IEEE = {"div": lambda x, y: np.float64(x) / np.float64(y), "sqrt": lambda x: np.sqrt(np.float64(x)),
        "mulw": lambda x, y: np.float64(x) * np.float64(y)}


def check_correctly_rounded(name: str, operands: list) -> None:
    """``name`` gives numpy's IEEE result, bit for bit, on every operand (a tuple or one value)."""
    routine = Routine(name)
    for args in operands:
        args = args if isinstance(args, tuple) else (args,)
        assert _bits(routine(*args)) == _bits(IEEE[name](*args)), (name, args)


def check_division(count: int, seed: int) -> None:
    check_correctly_rounded("div", division_operands(np.random.default_rng(seed), count))


def check_sqrt(count: int, seed: int) -> None:
    check_correctly_rounded("sqrt", sqrt_operands(np.random.default_rng(seed), count))


def check_products(count: int, seed: int) -> None:
    with np.errstate(under="ignore"):
        check_correctly_rounded("mulw", product_operands(np.random.default_rng(seed), count))


def test_division_is_correctly_rounded_on_a_thousand_operands():
    check_division(1000, seed=1)


def test_sqrt_is_correctly_rounded_on_a_thousand_operands():
    check_sqrt(1000, seed=2)


def test_mulw_is_correctly_rounded_on_a_thousand_operands():
    check_products(1000, seed=7)


@pytest.mark.slow
def test_mulw_is_correctly_rounded_on_a_hundred_thousand_operands():
    check_products(100_000, seed=1303)


@pytest.mark.slow
def test_division_is_correctly_rounded_on_a_hundred_thousand_operands():
    check_division(100_000, seed=1300)


@pytest.mark.slow
def test_sqrt_is_correctly_rounded_on_a_hundred_thousand_operands():
    check_sqrt(100_000, seed=1301)


def test_subnormal_quotients_are_correctly_rounded_at_and_next_to_ties():
    """Quotients on the subnormal grid, half-way between two of its points (a tie: rounded to
    even) and next to such a tie (where rounding first to 53 bits would round twice), and
    quotients that round to 0."""
    rng = np.random.default_rng(6)
    cases = [(2.0**-1000, 3.0 * 2.0**60), (-(2.0**-1070), 3.0), (1e-300, 7e15), (5e-324, 1.5), (5e-324, 2.0),
             (1.5e-323, 2.0), (2.0**-1073, 3.0 * 2.0**60), (2.0**-1074, 2.0**1000), (-(2.0**-1074), 2.0**60),
             (2.0**-1000, 2.0**75), (2.0**-1000, 2.0**74), (1e-300, -1e300)]
    for _ in range(500):
        y = float(np.ldexp(rng.uniform(1, 2), rng.integers(-40, 40)))
        grid = (float(rng.integers(1, 2**20)) + float(rng.choice([0.0, 0.5]))) * 2.0**-1074
        cases.append((grid * y * (1 + float(rng.integers(-2, 3)) * 2.0**-52), y))
    check_correctly_rounded("div", cases)


def test_the_result_does_not_depend_on_the_seed():
    """With recip and sqrt perturbed by 1e-6 relative (tests/support/noisy.py: 4x the tables' error), every
    result is still the correctly rounded one."""
    rng = np.random.default_rng(3)
    for seed in range(3):
        with noisy_functions(seed):
            check_correctly_rounded("div", division_operands(rng, 100))
            check_correctly_rounded("sqrt", sqrt_operands(rng, 100))


def _ulps(got: float, exact: Decimal) -> float:
    """|got - exact| in ulps of the correctly rounded value (0 where that rounds to 0 and got is 0)."""
    rounded = float(exact)
    if rounded == 0.0:
        return 0.0 if got == 0.0 else math.inf
    return float(abs(Fraction(got) - Fraction(exact)) / Fraction(math.ulp(rounded)))


def exp_operands(rng: np.random.Generator, n: int) -> list[float]:
    """x over [-746, EXP_MAX] uniformly, and x of every binary order of magnitude up to 2^9."""
    out = [0.0, 1.0, -1.0, EXP_MAX, -745.1, -708.5, 2.0**-1074, -(2.0**-600), 1e-17]
    while len(out) < n:
        if len(out) % 2:
            out.append(float(rng.uniform(-746.0, EXP_MAX)))
        else:
            x = float(np.ldexp(rng.uniform(1, 2), rng.integers(-1074, 10)) * rng.choice([-1, 1]))
            out.append(x if x <= EXP_MAX else -x)
    return out[:n]


def log_operands(rng: np.random.Generator, n: int) -> list[float]:
    """x over every binary order of magnitude in [2^-1074, 2^1000], near 1 and next to 1."""
    out = [1.0, 2.0**-1074, 2.0**1000, 0.75, 1.25, 0.75 - 2.0**-53, 1.25 + 2.0**-52, 2.0, math.e, 1 - 2.0**-53]
    while len(out) < n:
        kind = len(out) % 3
        if kind == 0:
            out.append(float(np.ldexp(rng.uniform(1, 2), rng.integers(-1074, 1000))))
        elif kind == 1:
            out.append(float(rng.uniform(0.7, 1.3)))
        else:
            out.append(1 + float(rng.uniform(-1, 1)) * 2.0 ** -float(rng.integers(1, 53)))
    return out[:n]


def sigmoid_operands(rng: np.random.Generator, n: int) -> list[float]:
    """x over [-40, 40] (the curved part), over [-800, 800], and of every binary order of magnitude."""
    out = [0.0, 40.0, -40.0, 2.0**-40, -(2.0**-40), 1e300, -1e300, -746.0, 745.0, 2.0**-1074]
    while len(out) < n:
        kind = len(out) % 3
        if kind == 0:
            out.append(float(rng.uniform(-40, 40)))
        elif kind == 1:
            out.append(float(rng.uniform(-800, 800)))
        else:
            out.append(float(np.ldexp(rng.uniform(1, 2), rng.integers(-1074, 10)) * rng.choice([-1, 1])))
    return out[:n]


def exact_value(name: str, x: float, y: float = 1.0) -> Decimal | Fraction:
    """The exact value at 60 digits (the caller's decimal context; a quotient or a square root is
    never within 2^-106 of a rounding midpoint, so 60 digits round to the same float); a product
    exactly, as a fraction (it may lie on a midpoint)."""
    if name == "mulw":
        return Fraction(x) * Fraction(y)
    if name == "div":
        return Decimal(x) / Decimal(y)
    if name == "sqrt":
        return Decimal(x).sqrt()
    if name == "exp":
        return Decimal(x).exp()
    if name == "log":
        return Decimal(x).ln()
    if abs(x) > 800:  # sigmoid: 1, or e^x below the smallest subnormal
        return Decimal(1) if x > 0 else Decimal(0)
    return 1 / (1 + (-Decimal(x)).exp())


def worst_ulps(name: str, operands: list[float]) -> float:
    routine = Routine(name)
    worst = 0.0
    with localcontext() as context:
        context.prec = 60
        for x in operands:
            exact = exact_value(name, x)
            error = _ulps(routine(x), exact)
            assert error <= 1.0, (name, x, error)
            worst = max(worst, error)
    return worst


ONE_ULP = [("exp", exp_operands), ("log", log_operands), ("sigmoid", sigmoid_operands)]


@pytest.mark.parametrize("name, draw", ONE_ULP)
def test_exp_log_and_sigmoid_are_within_one_ulp_on_a_thousand_operands(name, draw):
    assert worst_ulps(name, draw(np.random.default_rng(4), 1000)) <= 1.0  # over 10^5: 0.69, 0.61, 0.74


@pytest.mark.slow
@pytest.mark.parametrize("name, draw", ONE_ULP)
def test_exp_log_and_sigmoid_are_within_one_ulp_on_a_hundred_thousand_operands(name, draw):
    assert worst_ulps(name, draw(np.random.default_rng(1302), 100_000)) <= 1.0


def test_log_of_one_is_zero_and_exp_of_zero_is_one():
    assert Routine("log")(1.0) == 0.0
    assert Routine("exp")(0.0) == 1.0
    assert Routine("sigmoid")(0.0) == 0.5


def test_exp_log_and_sigmoid_do_not_depend_on_the_seeds():
    """The seeds perturbed (tests/support/noisy.py) leave every result within 1 ulp (exp uses the exp block
    only through pow2, which rounds it to a power of two; log corrects the log table's seed;
    sigmoid refines the recip table's)."""
    rng = np.random.default_rng(5)
    for seed in range(2):
        with noisy_functions(seed):
            for name, draw in ONE_ULP:
                worst_ulps(name, draw(rng, 150))


def test_the_transformer_gives_the_references_bits():
    """A routine on the transformer itself (its default engine): the same bits as on the reference
    (the calculator's tests run / sqrt exp log there too; the lockstep test below checks every
    step on the sparse evaluation)."""
    for name, args in [("sigmoid", (-1.0226544117638952,))]:
        linked = program(name, *args)
        on_the_machine = fleqc.run(linked, backend="transformer")
        assert on_the_machine.halted
        assert float(on_the_machine.memory["res"]) == float(fleqc.run(linked, backend="reference").memory["res"])


SLOW_LOCKSTEP = [
    ("mulw", (3.0 * 2.0**-1070, 2.0**-100 * (2.0**30 + 0.5) / 3.0)),  # a subnormal product at a tie
    ("mulw", (2.0**-1074, 2.0**990)),  # a factor beyond mul's window
    ("mulw", (8.683048825413137e-165, 1.8645851828000515e-155)),  # two small factors, next to a tie
    ("sqrt", (2.0,)), ("exp", (1.0,)), ("log", (10.0,)), ("sigmoid", (-1.5,)),
    ("div", (1.5e-323, -2.0)),  # a subnormal quotient at a tie
    ("sqrt", (5e-324,)), ("log", (5e-324,)), ("exp", (-745.0,)), ("sigmoid", (-700.0,)),
]
LOCKSTEP = [("div", (-7.0, 3.0)), ("mulw", (1e29, -1e29))] + [
    pytest.param(name, args, marks=pytest.mark.slow) for name, args in SLOW_LOCKSTEP]


@pytest.mark.parametrize("name, args", LOCKSTEP)
def test_the_routines_run_in_lockstep_on_the_transformer(name, args):
    """Every step of a call on the transformer (the sparse evaluation of its weights) checked
    against the reference interpreter from the machine's own state (tests/support/fleq_checks.py): the
    exact functions bit for bit, the seeds within their blocks' bounds, every branch the same."""
    linked = program(name, *args)
    steps, halted = assert_fleq_lockstep(linked, program_to_card(linked), max_steps=400)
    assert halted and steps == fleq.run(linked).steps
