"""recip, sqrt, log, exp and sigmoid as exact tables (fleqc.machines.fleq.tables): the facts their
exactness rests on, their accuracy, and the machine's bits on the dense pass and on the sparse path
at the edges."""

from __future__ import annotations

import decimal
import math
from fractions import Fraction

import numpy as np
import pytest

from fleqc.machines.fleq import tables as fleq_tables
from fleqc.machines.fleq.functions import FLEQ_FUNCTIONS
from fleqc.machines import program_to_card
from fleqc.machines import weights_for
from fleqc.transformer import forward
from tests.support.fleq_checks import assert_fleq_lockstep
from fleqc.transformer.executor import stepper
from tests.test_fleq_machine import program, unary_case

TABLES = list(fleq_tables.REDUCED)
RNG = np.random.default_rng(20261130)


@pytest.mark.parametrize("name,kink_grid,top,bound", [*((name, 2.0**-20, 2.0, 7.0) for name in TABLES),
                                                      ("exp", 2.0**-19, float(fleq_tables.quantise(fleq_tables.LN2)), 3.0)])
def test_every_sum_the_layers_make_is_exact(name, kink_grid, top, bound):
    """``top``: the largest argument (recip, sqrt, log: q = 2; exp: LN2 rounded to 2^-29). The
    units' terms kink_j ReLU(q - t_j) are multiples of 2^-29 times the kinks' grid (2^-49;
    exp: 2^-48) below 2^52 of them, and the positive and the negative terms (with v_0) each add up
    to less than ``bound`` at the largest q: every partial sum, in any order, is an integer number
    of that unit below 2^53."""
    tab = fleq_tables.table(name)
    unit = 2.0**-29 * kink_grid
    kinks = tab.kinks
    assert np.array_equal(np.round(kinks / kink_grid), kinks / kink_grid)
    assert np.array_equal(np.round(tab.v / 2.0**-30), tab.v / 2.0**-30)  # multiples of 2^-30
    assert tab.t[-1] >= top  # the table covers every argument
    terms = np.append(kinks * np.maximum(top - tab.t[:-1], 0.0), tab.v[0])
    assert np.all(np.abs(terms) / unit < 2.0**52)
    assert max(terms[terms > 0].sum(), -terms[terms < 0].sum()) < bound < 2.0**53 * unit


@pytest.mark.parametrize("name", [*TABLES, "exp"])
def test_the_line_is_the_layers_sum(name):
    """interpolate's v_j + k_j (q - t_j) is exactly the layers' v_0 + sum_j kink_j ReLU(q - t_j)."""
    tab = fleq_tables.table(name)
    lo, hi = (0.5, 2.0) if name != "exp" else (0.0, fleq_tables.LN2)
    q = fleq_tables.quantise(np.concatenate([RNG.uniform(lo, hi, 40), tab.t[::97], [lo, hi, (lo + hi) / 2]]))
    got = fleq_tables.interpolate(name, q)
    for qq, g in zip(q, got):
        exact = Fraction(tab.v[0]) + sum(Fraction(k) * max(Fraction(qq) - Fraction(t), 0)
                                         for k, t in zip(tab.kinks, tab.t[:-1]))
        assert Fraction(g) == exact


def test_the_reduction_is_exact():
    x = np.concatenate([np.ldexp(RNG.uniform(1, 2, 5000), RNG.integers(-81, 81, 5000)),
                        [2.0**k for k in range(-80, 82)], [2.0**k * (1 + 2**-52) for k in range(-80, 81)]])
    xr, s = fleq_tables.reduce(x)
    assert np.all((xr > 0.5) & (xr <= 2.0)) and np.array_equal(np.ldexp(xr, 2 * s), x)


def midpoints(name: str) -> np.ndarray:
    """The middle of every interval of the table, where a line is furthest from the function."""
    t = fleq_tables.knots(name)
    return (t[:-1] + t[1:]) / 2


@pytest.mark.parametrize("name,worst", [("recip", 2.4e-7), ("sqrt", 3.1e-8), ("log", 1.21e-7)])
def test_accuracy(name, worst):
    """recip and sqrt relative, log absolute: the figures fleq_tables and the docs state, over the
    window and at every interval's midpoint (scaled by 4^s)."""
    x = np.ldexp(RNG.uniform(1, 2, 100_000), RNG.integers(-81, 81, 100_000))
    m = midpoints(name)
    x = np.concatenate([x, m * 4.0 ** RNG.integers(-40, 41, m.shape), m, m * 2.0**-1 * (1 + 2.0**-40)])
    x = x * RNG.choice([-1.0, 1.0], x.shape) if name == "recip" else x
    got, true = fleq_tables.evaluate(name, x), {"recip": np.reciprocal, "sqrt": np.sqrt, "log": np.log}[name](x)
    error = np.abs(got - true) / (np.abs(true) if name != "log" else 1.0)
    assert error.max() <= worst


def test_the_records_are_the_tables():
    x = np.array([0.75, 3.0, 1e10, 2.0**-80])
    for name in TABLES:
        assert np.array_equal(FLEQ_FUNCTIONS[name].apply(x, None), fleq_tables.evaluate(name, x))
        assert FLEQ_FUNCTIONS[name].bound.exact
    e = np.array([-800.0, -700.0, 0.0, 1.5, 600.0])
    assert np.array_equal(FLEQ_FUNCTIONS["exp"].apply(e, None), fleq_tables.exp(e)) and FLEQ_FUNCTIONS["exp"].bound.exact
    assert fleq_tables.evaluate("log", np.array([1.0]))[0] == 0.0


def edges(stride: int = 37) -> np.ndarray:
    """Operands at the ladder's edges, at and beside the knots (every ``stride``-th, a different
    subset at each of five scales), at ties of x's rounding to 2^-29, and where q rounds up to 2."""
    knots = fleq_tables.knots()
    grid = fleq_tables.QUANTUM
    ties = 0.5 + grid * np.concatenate([RNG.integers(0, 3 * 2**28, 40), [0, 1, 2, 3, 2**28, 2**28 + 1]]) + grid / 2
    inside = np.concatenate([knots[1:], knots[1:-1] * (1 + 2.0**-52), knots[1:] * (1 - 2.0**-52), ties,
                             [2.0 - 2.0**-40, 0.5 + 2.0**-52, 1.0 + 2.0**-30, 2.0 - grid / 2]])
    scaled = np.concatenate([inside[s % stride::stride] * 4.0**s for s in (-40, -7, 0, 3, 40)])
    scaled = np.concatenate([scaled, ties * 4.0 ** RNG.integers(-40, 41, ties.shape)])
    return np.concatenate([scaled, [2.0**-81 * (1 + 2.0**-52), 2.0**81, 2.0**80, 2.0**-80]])


def assert_machine_gives_the_references_bits(name: str, x: np.ndarray, dense: int, per_program: int = 12) -> None:
    """``name`` on the operands ``x`` (padded with 1.0 to whole 8 x 8 cells, one instruction each;
    recip with random signs), every step in lockstep with the reference, bit for bit: the first
    ``dense`` cells on the dense forward pass, then all of them on the sparse path, in programs of at
    most ``per_program`` instructions (small machines: a pass's cost grows with the columns)."""
    cells = np.concatenate([x, np.full(-len(x) % 64, 1.0)]).reshape(-1, 8, 8)
    if name == "recip":
        cells = cells * RNG.choice([-1.0, 1.0], cells.shape)
    if dense:
        prog = unary_case(name, list(cells[:dense]))
        card = program_to_card(prog)
        model = weights_for(card.config)
        assert assert_fleq_lockstep(prog, card, dense + 2, machine_pass=lambda X: forward(model, X)) == (dense, True)
    for start in range(0, len(cells), per_program):
        chunk = list(cells[start:start + per_program])
        prog = unary_case(name, chunk)
        assert assert_fleq_lockstep(prog, program_to_card(prog), len(chunk) + 2) == (len(chunk), True)


@pytest.mark.slow
@pytest.mark.parametrize("name", TABLES)
def test_the_machine_gives_the_tables_bits_at_every_knot(name):
    assert_machine_gives_the_references_bits(name, edges(stride=1), dense=0)


@pytest.mark.parametrize("name", TABLES)
def test_the_machine_gives_the_tables_bits_at_the_edges(name):
    assert_machine_gives_the_references_bits(name, edges(), dense=3)



# -- exp ---------------------------------------------------------------------------------------------


def test_exps_reduction_is_exact():
    """q = (64 A + 8 B + C) LN2 + r exactly, r in [0, LN2), the selectors in their ranges."""
    x = np.concatenate([RNG.uniform(fleq_tables.EXP_FLOOR, fleq_tables.EXP_MAX, 20_000), exp_edges()])
    r, (A, B, C) = fleq_tables.exp_reduce(x)
    q = (x + fleq_tables.EXP_ROUNDER) - fleq_tables.EXP_ROUNDER
    assert np.all((r >= 0) & (r < fleq_tables.LN2))
    assert np.all((A >= -18) & (A <= 15) & (B >= 0) & (B <= 7) & (C >= 0) & (C <= 7))
    for qq, n, rr in zip(q, 64 * A + 8 * B + C, r):
        assert Fraction(qq) == int(n) * Fraction(fleq_tables.LN2) + Fraction(rr)


def test_exps_accuracy():
    """3.2e-8 relative (the figure stated), and within that plus 2^-1074 where the result is
    subnormal; 0 below -768 (where e^x rounds to 0 anyway). Also at every interval's midpoint r, for
    several n."""
    m = midpoints("exp")
    n = RNG.integers(-1100, 1000, m.shape)
    at_midpoints = n * fleq_tables.LN2 + m
    x = np.concatenate([RNG.uniform(-800, fleq_tables.EXP_MAX, 100_000), RNG.uniform(-1, 1, 10_000),
                        at_midpoints[(at_midpoints >= -800) & (at_midpoints <= fleq_tables.EXP_MAX)]])
    got, true = fleq_tables.exp(x), np.exp(x)
    assert np.all(np.abs(got - true) <= 3.2e-8 * true + 2.0**-1074)
    assert np.all(got[x < fleq_tables.EXP_FLOOR] == 0.0) and fleq_tables.exp(np.array([0.0]))[0] == 1.0


def exp_edges() -> np.ndarray:
    """At and beside every threshold of the three levels (as far as the grid of q goes), at ties of
    x's rounding to 2^-40 and of r's rounding to 2^-29, at the ends of the window, where results turn
    subnormal and round to 0: those inside the window [EXP_FLOOR, EXP_MAX]."""
    L, step = fleq_tables.LN2, 2.0**-40
    taus = [level.tau(j) for level in fleq_tables.EXP_LEVELS for j in level.thresholds]
    taus += [64 * a * L + 8 * b * L + c * L for a in (-17, -12, 0, 9) for b in range(8) for c in range(8)]
    near = np.concatenate([np.array(taus) + d for d in (-step, 0.0, step, 0.5 * step, 1.5 * step)])
    k = np.concatenate([RNG.integers(0, int(L / 2.0**-29), 60), [0, 1, 2, 3]])
    n = RNG.integers(-1100, 1000, k.shape)
    r_ties = n * L + k * 2.0**-29 + 2.0**-30  # exact: multiples of 2^-40 below 2^11
    ends = [fleq_tables.EXP_FLOOR, np.nextafter(fleq_tables.EXP_FLOOR, 0), -745.1332191019412, -745.2, -708.4,
            -709.8, fleq_tables.EXP_MAX, 0.0, 5e-324, -5e-324, 2.0**-41, -(2.0**-41), 1e-300]
    x = np.concatenate([near, r_ties, ends])
    return x[(x >= fleq_tables.EXP_FLOOR) & (x <= fleq_tables.EXP_MAX)]


def test_the_machine_gives_exps_bits_at_the_edges():
    assert_machine_gives_the_references_bits("exp", exp_edges(), dense=2)


def test_exp_below_its_table_is_zero_on_the_machine():
    prog = unary_case("exp", [np.array([-768.0000000000001, -1e300, -800.0, -1e4])])
    assert assert_fleq_lockstep(prog, program_to_card(prog), 5) == (1, True)


def test_exp_max_is_the_largest_argument_whose_exp_stays_within_2_to_the_1000():
    """e^x itself (Python's decimal at 60 digits) and the table's value both stay within 2^1000 up to
    EXP_MAX, and e^x does not beyond it."""
    top = fleq_tables.EXP_MAX
    with decimal.localcontext() as context:
        context.prec = 60
        limit = 1000 * decimal.Decimal(2).ln()
        assert decimal.Decimal(top) <= limit < decimal.Decimal(np.nextafter(top, 1e3))
    below = top - np.arange(0, 2000) * math.ulp(top)  # the table too, and nothing just below it goes over
    assert np.all(fleq_tables.exp(below) <= 2.0**1000)


def test_exp_is_monotone_and_at_most_1_below_0():
    """The last knot's value is lowered so the line never passes 2 (fleq_tables._exp_last_value):
    2^n T(r) stays below 2^(n+1) as r approaches LN2, so exp does not step down at a power of two."""
    L = fleq_tables.LN2
    x = np.sort(np.concatenate([np.arange(-40, 40) * L + d for d in (-2.0**-40, 0.0, 2.0**-40, -2.0**-30)]))
    x = np.sort(np.concatenate([x, RNG.uniform(-700, 700, 50_000), -(2.0 ** -np.arange(1, 60))]))
    got = fleq_tables.exp(x)
    assert np.all(np.diff(got) >= 0) and np.all(got[x <= 0] <= 1.0)


# -- sigmoid -----------------------------------------------------------------------------------------


def test_every_sum_of_sigmoids_table_is_exact():
    """The softplus table's units c_j ReLU(t_j - y) (kinks from the right): knots on 2^-10, spacing at
    most 2^-3 so slopes and kinks on 2^-27, y on 2^-26: every term a multiple of 2^-53; the positive
    terms and v_N add up to less than 1 at y = 0 (their largest), the negative ones too: every
    partial sum, in any order, is an integer number of 2^-53 below 2^53."""
    tab = fleq_tables.table("softplus")
    c = tab.kinks_from_the_right
    assert tab.t[0] == 0.0 and tab.t[-1] == fleq_tables.SIGMOID_Y
    assert np.all(np.diff(tab.t) <= fleq_tables.SIGMOID_COARSEST) and np.all(np.mod(tab.t / 2.0**-10, 1) == 0)
    assert np.all(np.mod(tab.v / 2.0**-30, 1) == 0) and np.all(np.mod(c / 2.0**-27, 1) == 0)
    assert np.all(np.abs(c) < 2.0**-11)  # at most 16 bits above 2^-27: c (t - y), 47 bits, is exact
    terms = c * tab.t[1:]  # at y = 0, where every ReLU(t_j - y) is largest
    assert terms[terms > 0].sum() + tab.v[-1] < 1.0 and -terms[terms < 0].sum() < 1.0
    assert len(tab.t) == 4375 and np.count_nonzero(c) == 4352 and tab.v[-1] == 0.0  # docs/fleq-machine.md


def test_the_softplus_line_is_the_layers_sum():
    tab = fleq_tables.table("softplus")
    y = (np.concatenate([RNG.uniform(0, 22, 30), tab.t[::211], [0.0, 20.0, 22.0]]) + fleq_tables.SIGMOID_ROUNDER
         ) - fleq_tables.SIGMOID_ROUNDER
    for yy, g in zip(y, fleq_tables.interpolate("softplus", y)):
        exact = Fraction(tab.v[-1]) + sum(Fraction(c) * max(Fraction(t) - Fraction(yy), 0)
                                          for c, t in zip(tab.kinks_from_the_right, tab.t[1:]))
        assert Fraction(g) == exact


def sigmoid_edges() -> np.ndarray:
    """At, beside and halfway between the knots (both signs), at ties of y's rounding to 2^-26, at
    22 (where y is clamped), at the ends of exp's range and at the extremes of float64."""
    t = fleq_tables.knots("softplus")
    pick = RNG.choice(len(t) - 1, 150, replace=False)
    near = np.concatenate([t[pick] + d for d in (0.0, 2.0**-27, -(2.0**-27), 2.0**-40, 2.0**-12)])
    top = fleq_tables.SIGMOID_Y
    x = np.concatenate([near, -near, [top, np.nextafter(top, 0), np.nextafter(top, 99), top + 1, 20.0]])
    x = np.concatenate([x, -x[-4:], [0.0, 5e-324, -5e-324, 1e-300, -1e-300, 2.0**1000, -(2.0**1000), -767.9,
                                     -768.0, np.nextafter(-768.0, 0), np.nextafter(-768.0, -800), -745.13, -709.0]])
    return x


def test_sigmoids_accuracy():
    """6.6e-8 relative (the figure stated; 2^-1074 where the result is subnormal), at the knots'
    midpoints too; never above 1; exactly 1 from x = 22 on, exactly the exp block below -22."""
    m = midpoints("softplus")
    x = np.concatenate([RNG.uniform(-40, 40, 100_000), RNG.uniform(-750, 0, 10_000), m, -m, sigmoid_edges()])
    got = fleq_tables.sigmoid(x)
    e = np.exp(-np.abs(x))
    true = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    assert np.all(np.abs(got - true) <= 6.6e-8 * true + 2.0**-1074)
    assert np.all(got <= 1.0) and fleq_tables.sigmoid(np.array([-800.0]))[0] == 0.0
    far = np.array([22.0, 22.5, 40.0, 1e300])
    assert np.all(fleq_tables.sigmoid(far) == 1.0) and np.array_equal(fleq_tables.sigmoid(-far), fleq_tables.exp(-far))
    assert FLEQ_FUNCTIONS["sigmoid"].bound.exact
    assert np.array_equal(FLEQ_FUNCTIONS["sigmoid"].apply(x, None), got)


def test_the_machine_gives_sigmoids_bits_at_the_edges():
    assert_machine_gives_the_references_bits("sigmoid", sigmoid_edges(), dense=2)


@pytest.mark.slow
def test_the_machine_gives_sigmoids_bits_at_every_knot():
    """Every knot of the softplus table and its rounding tie, both signs (17,436 operands)."""
    t = fleq_tables.knots("softplus")
    x = np.concatenate([t, t + 2.0**-27])
    assert_machine_gives_the_references_bits("sigmoid", np.concatenate([x, -x]), dense=0)


def tables_program():
    """recip, sqrt, log, exp and sigmoid, each on 64 edge operands (one instruction each)."""
    def pick(values: np.ndarray) -> np.ndarray:  # 64 of them, spread over the list, as an 8 x 8 cell
        return RNG.choice(values, 64, replace=False).reshape(8, 8)

    x, e = edges(), exp_edges()
    cells = {"r": pick(x) * RNG.choice([-1.0, 1.0], (8, 8)), "s": pick(x), "l": pick(x), "e": pick(e),
             "g": pick(sigmoid_edges())}
    out = {f"{k}_out": np.zeros((8, 8)) for k in cells}
    names = {"r": "recip", "s": "sqrt", "l": "log", "e": "exp", "g": "sigmoid"}
    return program({**cells, **out}, [f"{names[k]} {k}_out, {k}" for k in names])


def test_the_incremental_engine_gives_the_tables_bits():
    """The default engine for long runs (the lockstep tests above run the sparse and dense passes)."""
    prog = tables_program()
    card = program_to_card(prog)
    loop = stepper(weights_for(card.config), card.X, "softmax", "incremental")

    def incremental_pass(X):
        assert np.array_equal(X, loop.X)
        loop.step()
        return loop.X.copy()

    assert assert_fleq_lockstep(prog, card, 10, machine_pass=incremental_pass) == (5, True)
