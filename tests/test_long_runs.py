"""Long runs in lockstep with the reference (slow: `make test-slow`).

The program (tests/support/long_programs.py) mixes two 24-bit cells with wrapping subtractions and takes
both sides of its branch; every pass of the transformer is compared with the reference state.
"""

from __future__ import annotations

import pytest

import fleqc
from tests.support.long_programs import long_program
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
; 10 instructions per iteration: a rotation applied to a vector, the tables (recip, sqrt, log, exp), sigmoid.
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
    from tests.support.fleq_checks import assert_fleq_lockstep

    program = fleqc.compile(FLEQ_LOOP.format(iterations=910))
    steps, halted = assert_fleq_lockstep(program, fleqc.build(program), max_steps=20_000)
    assert halted and steps >= 10_000
    print(f"fleq: {steps} steps in lockstep")


def test_ten_million_engine_steps_in_lockstep_with_the_reference():
    """10^7 passes of the incremental engine, each decoded and compared with the reference
    interpreter's state; at sampled passes the dense definition recomputes the pass from the engine's
    state and must give the engine's next X exactly."""
    from fleqc.machines import weights_for
    from fleqc.machines.subleq import reference as subleq
    from fleqc.transformer import forward
    from fleqc.transformer.incremental import IncrementalEngine

    import numpy as np

    program = fleqc.compile(long_program(2_300_000))
    card = fleqc.build(program)
    model = weights_for(card.config)
    engine = IncrementalEngine(model, card.X)
    sampled = 0
    steps = 0
    for steps, state in enumerate(subleq.trace(program, 10_000_000), start=1):
        before = np.array(engine.X) if steps % 250_000 == 1 else None
        engine.step()
        assert card.read_pc(engine.X) == state.pc, f"pc differs after step {steps}"
        mem = card.read_memory(engine.X)
        assert mem == list(state.memory), f"memory differs after step {steps}"
        if before is not None:
            assert np.array_equal(forward(model, before), engine.X), f"dense pass differs at step {steps}"
            sampled += 1
    assert steps == 10_000_000 and sampled == 40
    print(f"engine: {steps} steps in lockstep, {sampled} passes checked against the dense definition")
