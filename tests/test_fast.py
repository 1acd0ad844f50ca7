"""The fast (sparse) pass computes the same function as the dense executor, bit for bit.

SUBLEQ: its sums are exact, so the summation order cannot matter. FLEQ: since issue 13 every sum
the machine makes is exact in any order or has at most two nonzero terms (one IEEE addition,
commutative), its products and tables included, and every softmax weight of its heads is exactly
0, 1 or 1/2^k (pointer reads, the write mark, gathers): the sparse path's other summation order
gives the dense pass's bits, every layer and every pass (before, with attention products and fitted
heads, they differed by up to 5e-11 relative). Other engines are held to the same equality
(tests/support/interop_lockstep.py, tests/test_interop_lens.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck as Health
from hypothesis import given, settings

import fleqc
from fleqc.machines import program_to_card
from fleqc.machines import weights_for
from fleqc.transformer import forward, run, run_batch
from fleqc.transformer.executor import apply_layer
from fleqc.transformer.sparse import (
    FastAttention,
    FastFeedForward,
    compile_fast,
    fast_attention,
    fast_feed_forward,
    fast_forward,
)
from tests.support.programs import random_subleq_programs, subleq_program
from tests.test_fleq_machine import random_fleq_programs

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def fast_layer(fast, index, X, mode="softmax"):
    layer = fast.layers[index]
    if isinstance(layer, FastAttention):
        return fast_attention(layer, X, mode)
    if isinstance(layer, FastFeedForward):
        return fast_feed_forward(layer, X)
    return apply_layer(layer, X, mode)  # kept dense


# -- SUBLEQ: bit for bit -----------------------------------------------------------------------


@settings(max_examples=10, deadline=None, suppress_health_check=[Health.too_slow])
@given(random_subleq_programs())
def test_subleq_fast_pass_and_run_are_bit_identical(case):
    program, columns = case
    card = program_to_card(program, columns)
    model = weights_for(card.config)
    fast = compile_fast(model)
    for mode in ("softmax", "hardmax"):
        X = card.X
        for _ in range(4):
            Y = forward(model, X, mode)
            assert np.array_equal(fast_forward(fast, X, mode), Y)
            X = Y
        dense_run = run(model, card.X, max_steps=30, mode=mode, engine="dense")
        fast_run = run(model, card.X, max_steps=30, mode=mode, engine="sparse")
        assert (fast_run.steps, fast_run.halted) == (dense_run.steps, dense_run.halted)
        assert np.array_equal(fast_run.X, dense_run.X)


def test_non_finite_input_spreads_as_in_the_dense_pass():
    """0 * inf is NaN: a layer with a non-finite input is evaluated densely, NaNs and all."""
    card = program_to_card(subleq_program(8, [3, -7, 0], [(0, 1, 2), (2, 2, 0)]), 16)
    model = weights_for(card.config)
    X = card.X.copy()
    X[0, 3] = np.inf
    with np.errstate(invalid="ignore", over="ignore"):
        assert np.array_equal(fast_forward(compile_fast(model), X), forward(model, X), equal_nan=True)


def test_compiled_once_per_model_sparse_where_it_pays():
    model = weights_for(program_to_card(subleq_program(8, [0], [(0, 0, 0)]), 16).config)
    fast = compile_fast(model)
    assert compile_fast(model) is fast
    kinds = {getattr(layer, "name", "attention"): type(f).__name__ for layer, f in zip(model.layers, fast.layers)}
    assert kinds["alu"] == "FeedForwardLayer"  # ~6% nonzero: kept dense
    assert kinds["commit"] == "FastFeedForward"
    fleq = compile_fast(weights_for(fleqc.build(str(SAMPLES / "fleq_polynomial.fleq")).config))
    assert all(isinstance(layer, (FastAttention, FastFeedForward)) for layer in fleq.layers)


# -- FLEQ: bit for bit too -------------------------------------------------------------------------


def check_fleq_passes(card, passes):
    """Dense passes from card.X; each layer and each whole pass equal to the fast form's, bit for bit.

    Returns (final X, steps, halted) of the dense passes, as ``run`` counts them.
    """
    model = weights_for(card.config)
    fast = compile_fast(model)
    X = card.X
    for step in range(passes + 1):
        inputs = [X]

        def observe(index, layer, Y, inputs=inputs):
            assert np.array_equal(fast_layer(fast, index, inputs[0]), Y), f"pass {step + 1}, layer {index + 1}"
            inputs[0] = Y

        Y = forward(model, X, "softmax", observe=observe)
        assert np.array_equal(fast_forward(fast, X), Y), f"pass {step + 1}"
        if np.array_equal(X, Y):
            return X, step, True
        if step == passes:
            return X, step, False
        X = Y


@pytest.mark.parametrize("name", ["fleq_matrix_chain", "fleq_counter_loop",  # the others in the slow suite
                                  *(pytest.param(n, marks=pytest.mark.slow) for n in ("fleq_normalize", "fleq_polynomial"))])
def test_fleq_sample_fast_passes_and_run(name):
    card = fleqc.build(str(SAMPLES / f"{name}.fleq"))
    passes = 3 if name == "fleq_counter_loop" else 10  # the others halt after 4-6 steps
    X, steps, halted = check_fleq_passes(card, passes)
    model = weights_for(card.config)
    outcome = run(model, card.X, max_steps=passes, engine="sparse")
    assert (outcome.steps, outcome.halted) == (steps, halted)
    assert halted == (name != "fleq_counter_loop")
    assert np.array_equal(X, outcome.X)


@settings(max_examples=3, deadline=None, suppress_health_check=[Health.too_slow])
@given(random_fleq_programs())
def test_fleq_random_card_fast_passes(program):
    check_fleq_passes(program_to_card(program), passes=3)


def test_fleq_batch_fast_equals_single_fast_runs():
    cards = [fleqc.build(str(SAMPLES / f"{name}.fleq")) for name in ("fleq_matrix_chain", "fleq_normalize")]
    model = weights_for(cards[0].config)
    batch = run_batch(model, np.stack([c.X for c in cards]), max_steps=10, engine="sparse")
    for i, card in enumerate(cards):
        one = run(model, card.X, max_steps=10, engine="sparse")
        assert (batch.steps[i], batch.halted[i]) == (one.steps, one.halted)
        assert np.array_equal(batch.X[i], one.X)


def test_the_run_path_takes_an_engine():
    from fleqc.runner import run as run_card

    card = fleqc.build(str(SAMPLES / "gcd.fleq"))
    results = [run_card(card, "transformer", engine=engine) for engine in ("incremental", "sparse", "dense")]
    assert results[0] == results[1] == results[2]
