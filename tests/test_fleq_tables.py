"""recip, sqrt and log as exact tables (fleqc.isa.fleq_tables): the facts their exactness rests on,
their accuracy, and the machine's bits on the dense pass and on the engines at the edges."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from fleqc.isa import fleq_tables
from fleqc.isa.fleq_functions import FLEQ_FUNCTIONS
from fleqc.machine.program_to_card import program_to_card
from fleqc.machines import weights_for
from fleqc.transformer import forward
from tests.fleq_checks import assert_fleq_lockstep
from tests.test_fleq_machine import unary_case

TABLES = sorted(fleq_tables.FUNCTIONS)
RNG = np.random.default_rng(20261130)


@pytest.mark.parametrize("name", TABLES)
def test_every_sum_the_layers_make_is_exact(name):
    """The units' terms kink_j ReLU(q - t_j) are multiples of 2^-49 below 2^52 of them, and the
    positive and the negative terms (with v_0) each add up to less than 7 at the largest q: every
    partial sum, in any order, is an integer number of 2^-49 below 2^53."""
    tab = fleq_tables.table(name)
    unit = 2.0**-49
    kinks = tab.kinks
    assert np.array_equal(np.round(kinks / 2.0**-20), kinks / 2.0**-20)  # multiples of 2^-20
    assert np.array_equal(np.round(tab.v / 2.0**-30), tab.v / 2.0**-30)  # multiples of 2^-30
    top = 2.0  # the largest q
    terms = np.append(kinks * np.maximum(top - tab.t[:-1], 0.0), tab.v[0])
    assert np.all(np.abs(terms) / unit < 2.0**52)
    assert max(terms[terms > 0].sum(), -terms[terms < 0].sum()) < 7.0


@pytest.mark.parametrize("name", TABLES)
def test_the_line_is_the_layers_sum(name):
    """interpolate's v_j + k_j (q - t_j) is exactly the layers' v_0 + sum_j kink_j ReLU(q - t_j)."""
    tab = fleq_tables.table(name)
    q = fleq_tables.quantise(np.concatenate([RNG.uniform(0.5, 2.0, 40), tab.t[::97], [0.5, 1.0, 2.0]]))
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


@pytest.mark.parametrize("name,worst", [("recip", 2.5e-7), ("sqrt", 2.0**-24.9), ("log", 2.0**-22.9)])
def test_accuracy(name, worst):
    """recip and sqrt relative, log absolute (the figures fleq_tables states), over the window."""
    x = np.ldexp(RNG.uniform(1, 2, 100_000), RNG.integers(-81, 81, 100_000))
    x = x * RNG.choice([-1.0, 1.0], x.shape) if name == "recip" else x
    got, true = fleq_tables.evaluate(name, x), {"recip": np.reciprocal, "sqrt": np.sqrt, "log": np.log}[name](x)
    error = np.abs(got - true) / (np.abs(true) if name != "log" else 1.0)
    assert error.max() <= worst


def test_the_records_are_the_tables():
    x = np.array([0.75, 3.0, 1e10, 2.0**-80])
    for name in TABLES:
        assert np.array_equal(FLEQ_FUNCTIONS[name].apply(x, None), fleq_tables.evaluate(name, x))
        assert FLEQ_FUNCTIONS[name].bound.exact
    assert fleq_tables.evaluate("log", np.array([1.0]))[0] == 0.0


def edges() -> np.ndarray:
    """Operands at the ladder's edges, at and beside the knots, and where q rounds up to 2."""
    knots = fleq_tables.knots()
    inside = np.concatenate([knots[1:], knots[1:-1] * (1 + 2.0**-52), knots[1:] * (1 - 2.0**-52),
                             [2.0 - 2.0**-40, 0.5 + 2.0**-52, 1.0 + 2.0**-30]])
    scaled = np.concatenate([inside[::37] * 4.0**s for s in (-40, -7, 0, 3, 40)])
    return np.concatenate([scaled, [2.0**-81 * (1 + 2.0**-52), 2.0**81, 2.0**80, 2.0**-80]])


@pytest.mark.parametrize("name", TABLES)
def test_the_machine_gives_the_tables_bits_at_the_edges(name):
    """On the dense forward pass (every step compared with the reference, bit for bit) and on the
    sparse path: 64 operands per instruction."""
    x = edges()
    x = x[: len(x) // 64 * 64].reshape(-1, 8, 8)
    if name == "recip":
        x = x * RNG.choice([-1.0, 1.0], x.shape)
    prog = unary_case(name, list(x[:3]))
    card = program_to_card(prog)
    model = weights_for(card.config)
    steps, halted = assert_fleq_lockstep(prog, card, 10, machine_pass=lambda X: forward(model, X))
    assert halted and steps == 3
    prog = unary_case(name, list(x))
    steps, halted = assert_fleq_lockstep(prog, program_to_card(prog), len(x) + 2)
    assert halted and steps == len(x)

