"""Long runs in lockstep with the reference (slow: `make test-slow`).

The program (tests/long_programs.py) mixes two 24-bit cells with wrapping subtractions and takes
both sides of its branch; every pass of the transformer is compared with the reference state.
"""

from __future__ import annotations

import pytest

import fleqc
from tests.long_programs import long_program
from tests.test_lockstep import assert_lockstep

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "mode,iterations",
    [("softmax", 25_000), ("hardmax", 25_000), ("hardmax", 225_000)],
    ids=["softmax-100k", "hardmax-100k", "hardmax-1M"],
)
def test_long_run_stays_exactly_in_lockstep(mode, iterations):
    program = fleqc.compile(long_program(iterations))
    card = fleqc.build(program)
    steps = assert_lockstep(program, card, mode, max_steps=2_000_000)
    assert steps >= (100_000 if iterations < 200_000 else 1_000_000)
    print(f"{mode}: {steps} steps in lockstep")
