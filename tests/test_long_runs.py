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


FLEQ_LOOP = """
; 10 instructions per iteration: a rotation applied to a vector, the fitted blocks, exp, sigmoid.
.machine fleq
.data
i:      .word {iterations}
one:    .word 1.0
R:      .matrix 2 2  0.6, -0.8, 0.8, 0.6
v:      .vector 2    1.0, 0.5
x:      .word 0.75
s:      .word 0
e:      .word 0
l:      .word 0
r:      .word 0
q:      .word 0
m:      .word 0
.text
loop:   matmul v, R, v
        sigmoid s, x
        exp e, s
        log l, e
        recip r, e
        sqrt q, e
        mul m, r, q
        relu m, m
        add x, l, m
        fleq i, sub, i, one, i, done
        jmp loop
done:   halt
"""


def test_fleq_10k_steps_within_the_stated_bounds():
    """Every one of 10,000+ FLEQ steps: the destination within its block's bound, the rest exact."""
    from tests.fleq_checks import assert_fleq_lockstep

    program = fleqc.compile(FLEQ_LOOP.format(iterations=910))
    steps, halted = assert_fleq_lockstep(program, fleqc.build(program), max_steps=20_000)
    assert halted and steps >= 10_000
    print(f"fleq: {steps} steps in lockstep")
