"""Helpers for the stdlib and application tests: run a program on a backend by name.

Backends: ``reference`` (exact numpy), ``noisy`` (the reference with the seeds perturbed: recip, sqrt,
log and exp by 1e-6, sigmoid by its table's 6.6e-8, tests/support/noisy.py) and ``transformer`` (the FLEQ
looped transformer, through fleqc.runner.run).
"""

from __future__ import annotations

import pytest

import fleqc
from tests.support.noisy import noisy_functions

BACKENDS = [
    "reference",
    "noisy",
    pytest.param("transformer", marks=pytest.mark.slow),
]


def run_on(program, backend: str, max_steps: int = 1_000_000, seed: int = 0):
    """Run ``program`` (a LinkedProgram) on ``backend``; the transformer skips if it cannot run FLEQ."""
    if backend == "noisy":
        with noisy_functions(seed):
            return fleqc.run(program, backend="reference", max_steps=max_steps)
    return fleqc.run(program, backend=backend, max_steps=max_steps)
