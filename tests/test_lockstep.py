"""Lockstep: after every pass of the transformer, the decoded state equals the reference state.

Random programs (hypothesis) cover machines with n in 16..512 columns and N in 4..24 bits, both
attention modes, wraparound, branches taken and not taken, and halting.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleqc.machines.subleq import reference as subleq
from fleqc.card.card import Card
from fleqc.machines import program_to_card
from fleqc.machines import weights_for
from fleqc.program import LinkedProgram
from fleqc.transformer import forward
from tests.support.programs import random_subleq_programs, subleq_program


def assert_lockstep(program: LinkedProgram, card: Card, mode: str, max_steps: int) -> int:
    """Step both machines together; return the number of steps taken. Checks exact equality."""
    model = weights_for(card.config)
    check = card.machine.health_check(model, card)
    X = card.X
    reference = subleq.trace(program, max_steps)
    steps = 0
    for steps, state in enumerate(reference, start=1):
        X = forward(model, X, mode)
        check(X, steps)
        assert card.read_pc(X) == state.pc, f"pc differs after step {steps}"
        assert card.read_memory(X) == list(state.memory), f"memory differs after step {steps}"
        # between passes every entry is exactly -1, 0 or +1: temp rows are cleared exactly
        assert np.array_equal(X, np.rint(X))
    halted = subleq.run(program, max_steps).halted
    assert np.array_equal(forward(model, X, mode), X) == halted
    return steps


@settings(max_examples=60, deadline=None)
@given(random_subleq_programs(), st.sampled_from(["softmax", "hardmax"]))
def test_random_programs_run_in_lockstep(program_and_columns, mode):
    program, columns = program_and_columns
    assert_lockstep(program, program_to_card(program, columns), mode, max_steps=40)


def run_on_transformer(card: Card, mode: str) -> np.ndarray:
    from fleqc.transformer import run

    return run(weights_for(card.config), card.X, max_steps=100, mode=mode).X


@pytest.mark.parametrize("mode", ["softmax", "hardmax"])
@pytest.mark.parametrize("bits", [4, 8, 16, 24])
def test_wraparound_at_both_ends(mode, bits):
    half = 1 << (bits - 1)
    # m0 = most negative, m1 = 1, m2 = most positive, m3 = -1
    program = subleq_program(
        bits, [-half, 1, half - 1, -1, 0],
        [(1, 0, 1),   # m0 = -half - 1 wraps to +max: positive, no branch (pc 0 -> 1)
         (3, 2, 2),   # m2 = max - (-1) wraps to -half: negative, branch taken to 2
         (4, 4, 2)],  # halt (0 - 0, jump to itself)
    )
    card = program_to_card(program)
    steps = assert_lockstep(program, card, mode, max_steps=10)
    assert steps == 2
    X = run_on_transformer(card, mode)
    assert card.read_memory(X)[:3] == [half - 1, 1, -half]


@pytest.mark.parametrize("mode", ["softmax", "hardmax"])
def test_halting_at_once_is_a_fixed_point(mode):
    program = subleq_program(8, [0], [(0, 0, 0)])
    assert assert_lockstep(program, program_to_card(program), mode, max_steps=5) == 0


@pytest.mark.slow
@settings(max_examples=1000, deadline=None)
@given(random_subleq_programs(), st.sampled_from(["softmax", "hardmax"]))
def test_random_programs_run_in_lockstep_many(program_and_columns, mode):
    program, columns = program_and_columns
    assert_lockstep(program, program_to_card(program, columns), mode, max_steps=200)
