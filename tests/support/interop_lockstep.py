"""Lockstep drivers for a pass computed by another engine (torch, ONNX Runtime, TransformerLens).

``engine_pass(X) -> Y`` is one pass of that engine on a card (d, n). After every pass:

- SUBLEQ (:func:`subleq_engine_lockstep`): the decoded pc and memory equal the reference
  interpreter's exactly, X equals numpy's :func:`fleqc.transformer.forward` of the same X exactly,
  and every entry is -1, 0 or +1.
- FLEQ (:func:`fleq_engine_lockstep`): Y equals numpy's dense pass exactly (every sum the machine
  makes is exact in any order or has two nonzero terms, and its softmax weights are exactly 0, 1 or
  1/2^k: no engine's exp or order of addition shows), and the decoded state is checked against the
  reference interpreter's step from the engine's own state, bit for bit (tests/support/fleq_checks.py).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from fleqc.machines.subleq import reference as subleq
from fleqc.card.card import Card
from fleqc.machines import weights_for
from fleqc.program import LinkedProgram
from fleqc.transformer import forward
from tests.support.fleq_checks import assert_fleq_lockstep

EnginePass = Callable[[np.ndarray], np.ndarray]


def subleq_engine_lockstep(program: LinkedProgram, card: Card, engine_pass: EnginePass, mode: str,
                           max_steps: int) -> int:
    """Step the engine and the reference together; return the number of steps. Exact equality."""
    model = weights_for(card.config)
    check = card.machine.health_check(model, card)
    X = card.X
    steps = 0
    for steps, state in enumerate(subleq.trace(program, max_steps), start=1):
        Y = engine_pass(X)
        assert np.array_equal(Y, forward(model, X, mode)), f"step {steps}: the engine's X differs from numpy's"
        check(Y, steps)
        assert card.read_pc(Y) == state.pc, f"pc differs after step {steps}"
        assert card.read_memory(Y) == list(state.memory), f"memory differs after step {steps}"
        assert np.array_equal(Y, np.rint(Y))
        X = Y
    halted = subleq.run(program, max_steps).halted
    assert np.array_equal(engine_pass(X), X) == halted
    return steps


def fleq_engine_lockstep(program: LinkedProgram, card: Card, engine_pass: EnginePass, max_steps: int) -> tuple[int, bool]:
    """Run the engine, checking every pass against numpy's dense pass and the reference; (steps, halted)."""
    model = weights_for(card.config)

    def checked_pass(X: np.ndarray) -> np.ndarray:
        Y = engine_pass(X)
        assert np.array_equal(Y, forward(model, X)), "the engine's X differs from numpy's dense pass"
        return Y

    return assert_fleq_lockstep(program, card, max_steps, machine_pass=checked_pass)
