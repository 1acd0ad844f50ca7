"""A stand-in for the FLEQ transformer's arithmetic, to test the stdlib's accuracy claims on the fast
reference interpreter: each function's result perturbed by the relative error its machine block is
specified to have (the record's ``ErrorBound.relative`` in fleqc.isa.fleq_functions: recip, sqrt,
log 1e-6, exp 1e-12, sigmoid 1e-13); the exact functions (add, sub, mul, mulerr, matmul, mov,
transpose, relu) are left exact, as the machine computes them bit for bit.

Use it as a context manager; inside, ``fleqc.isa.fleq`` runs with the noisy functions::

    with noisy_functions(seed=0):
        result = fleqc.run(program, backend="reference")
"""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np

from fleqc.isa import fleq
from fleqc.isa.fleq_functions import FLEQ_FUNCTIONS


def _noisy(function, rng: np.random.Generator):
    error, apply = function.bound.relative, function.apply
    if error == 0.0:
        return apply

    def perturbed(a, b):
        exact = apply(a, b)
        return exact * (1 + error * rng.uniform(-1, 1, np.shape(exact)))

    return perturbed


@contextlib.contextmanager
def noisy_functions(seed: int = 0):
    rng = np.random.default_rng(seed)
    table = {name: dataclasses.replace(f, apply=_noisy(f, rng)) for name, f in FLEQ_FUNCTIONS.items()}
    saved = fleq.FLEQ_FUNCTIONS
    fleq.FLEQ_FUNCTIONS = table
    try:
        yield
    finally:
        fleq.FLEQ_FUNCTIONS = saved
