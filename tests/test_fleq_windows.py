"""One table of value windows for both FLEQ backends (issue 13): the reference interpreter raises a
domain error exactly when the transformer run does, for every function record, on operands drawn
across the float64 range and at every window edge (results at the value limit included).

Each example is one instruction run on the real machine (weights looped over a punch card) and on
the reference; the health check's verdict comes from the operands, the fault row from the weights,
so the test fails if the weights refuse inside a window, or if the table misses a refusal.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck as Health
from hypothesis import given, settings
from hypothesis import strategies as st

import fleqc
from fleqc.errors import ErrorCode, FleqError
from fleqc.machines.fleq.functions import FLEQ_FUNCTIONS, VALUE_LIMIT, window_table
from fleqc.machines.fleq.rows import EXP_MAX, TABLE_LADDER, PRODUCT_LADDER
from fleqc.machines import program_to_card
from fleqc.machines import weights_for
from fleqc.transformer import forward

DOCS = Path(__file__).resolve().parents[1] / "docs" / "fleq-machine.md"
EDGES = [2.0**e for e in (TABLE_LADDER.thresholds[0], TABLE_LADDER.thresholds[-1], PRODUCT_LADDER.thresholds[0],
                          PRODUCT_LADDER.thresholds[-1], -500, -448, 448, 500, 1000)] + [EXP_MAX, 1.0, 5e-324]


@st.composite
def operand(draw) -> float:
    """A value with |x| <= 2^1000: a window edge or one ulp beside it, 0, or any magnitude."""
    kind = draw(st.sampled_from(["edge", "edge", "zero", "any"]))
    if kind == "zero":
        return 0.0
    if kind == "edge":
        x = draw(st.sampled_from(EDGES))
        x = [math.nextafter(x, 0.0), x, math.nextafter(x, math.inf)][draw(st.integers(0, 2))]
    else:
        x = math.ldexp(draw(st.floats(1.0, 2.0, exclude_max=True)), draw(st.integers(-1074, 999)))
    x = min(x, VALUE_LIMIT)
    return -x if draw(st.booleans()) else x


@st.composite
def operands(draw, arity: int) -> tuple[float, float]:
    """(a, b); for a product, often a = 2^1000 / b nudged by a few ulps: a result at the limit."""
    a, b = draw(operand()), draw(operand())
    if arity == 2 and b != 0 and draw(st.booleans()):
        a = math.copysign(min(VALUE_LIMIT, VALUE_LIMIT / abs(b) * (1 + draw(st.integers(-3, 3)) * 2.0**-52)), a)
    return a, b


def outcome(func: str, a: float, b: float, backend: str) -> str:
    """'refused' (a domain error) or 'ran', for ``func`` on scalars a, b (matmul: 1-vectors, and
    a 2-vector [a, b] @ [b, a] whose sum may reach the limit)."""
    if func == "matmul":
        cells = [f"x: .vector 2 {a!r}, {b!r}", f"z: .vector 2 {b!r}, {a!r}", "y: .word 0.0"]
    else:
        cells = [f"x: .word {a!r}", f"z: .word {b!r}", "y: .word 0.0"]
    operands_text = "x, z" if FLEQ_FUNCTIONS[func].arity == 2 else "x"
    prog = fleqc.compile("\n".join([".machine fleq", ".data", *cells, ".text", f"{func} y, {operands_text}", "halt"]))
    try:
        fleqc.run(prog, backend=backend)
    except FleqError as error:
        assert error.code is ErrorCode.DOMAIN_ERROR, error
        return "refused"
    return "ran"


def same_refusals(func: str, data) -> None:
    a, b = data.draw(operands(FLEQ_FUNCTIONS[func].arity))
    assert outcome(func, a, b, "reference") == outcome(func, a, b, "transformer"), (func, a, b)


@pytest.mark.parametrize("func", sorted(FLEQ_FUNCTIONS))
@settings(max_examples=15, deadline=None, suppress_health_check=[Health.too_slow])
@given(data=st.data())
def test_reference_refuses_exactly_what_the_machine_refuses(func, data):
    same_refusals(func, data)  # each example runs the transformer (~0.2 s): more in the slow suite


@pytest.mark.slow
@pytest.mark.parametrize("func", sorted(FLEQ_FUNCTIONS))
@settings(max_examples=150, deadline=None, suppress_health_check=[Health.too_slow])
@given(data=st.data())
def test_reference_refuses_exactly_what_the_machine_refuses_many(func, data):
    same_refusals(func, data)


@pytest.mark.parametrize("func", sorted(FLEQ_FUNCTIONS))
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_results_inside_the_window_are_finite_and_within_the_limit(func, data):
    """The reference's results of accepted operands stay within 2^1000 (no separate result check)."""
    a, b = data.draw(operands(FLEQ_FUNCTIONS[func].arity))
    function = FLEQ_FUNCTIONS[func]
    x, y = (np.array([a, b]), np.array([b, a])) if func == "matmul" else (np.float64(a), np.float64(b))
    y = y if function.arity == 2 else None
    if function.refusal(x, y) is None:
        assert np.all(np.abs(function.apply(x, y)) <= VALUE_LIMIT)


@pytest.mark.parametrize("func, a, b", [("recip", 2.0**-82, 0.0),
                                        ("recip", -2.0**82, 0.0), ("sqrt", -1e-20, 0.0), ("sqrt", 2.0**82, 0.0),
                                        ("exp", 700.0, 0.0), ("log", -1.0, 0.0), ("log", 2.0**82, 0.0)])
def test_the_weights_refuse_the_limits_marked_by_weights(func, a, b):
    """The limits marked ``by_weights`` are the machine's own: one pass raises its fault row."""
    function = FLEQ_FUNCTIONS[func]
    assert any(limit.by_weights and not limit.inside(np.float64(a), np.float64(b)) for limit in function.limits)
    operands_text = "x, z" if function.arity == 2 else "x"
    vector = func == "matmul"
    cells = [f"x: .vector 1 {a!r}" if vector else f"x: .word {a!r}", f"z: .vector 1 {b!r}" if vector else f"z: .word {b!r}"]
    prog = fleqc.compile("\n".join([".machine fleq", ".data", *cells, "y: .word 0.0", ".text",
                                     f"{func} y, {operands_text}", "halt"]))
    card = program_to_card(prog)
    model = weights_for(card.config)
    with np.errstate(all="ignore"):
        Y = forward(model, card.X)
    assert np.any(Y[model.metadata["fault_rows"]] != 0.0)


@pytest.mark.parametrize("func, a, b", [("mul", 2.0**1000, -2.0**97), ("mulerr", 2.0**1000, 2.0**97),
                                        ("mul", 2.0**1000, 2.0**1000), ("matmul", 2.0**500, 2.0**503)])
def test_products_beyond_the_limit_are_refused_and_no_fault_row_inside(func, a, b):
    """A product has no limit of its own factors (issue 26): beyond |a b| = 2^1000 the health check
    refuses it from the operands (tests/test_tiny_products.py and test_exact_product.py: every pair
    inside runs, and the fault row never fires inside)."""
    for backend in ("reference", "transformer"):
        assert outcome(func, a, b, backend) == "refused"


def test_the_docs_state_the_code_table():
    """docs/fleq-machine.md, 'Domains and faults', holds exactly the records' table."""
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index("## Domains and faults"):]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    assert "\n".join(rows[: len(window_table())]) == "\n".join(window_table())
