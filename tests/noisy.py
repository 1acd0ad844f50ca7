"""A stand-in for the FLEQ transformer's arithmetic, to test the stdlib's accuracy claims before the
transformer runs FLEQ: the reference interpreter with each function's result perturbed by the
relative error its fitted block is specified to have (recip, sqrt, log 1e-6; exp 1e-13; mul 1e-10;
matmul 1e-10 relative to sum_k |a_ik b_kj|; sigmoid 1e-15; add, sub, mov, transpose, relu exact).

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

RELATIVE_ERRORS = {"recip": 1e-6, "sqrt": 1e-6, "log": 1e-6, "exp": 1e-13, "mul": 1e-10, "sigmoid": 1e-15}
MATMUL_ERROR = 1e-10


def _noisy(name: str, apply, rng: np.random.Generator):
    if name == "matmul":
        def matmul(a, b):
            exact = apply(a, b)
            scale = np.matmul(np.abs(a), np.abs(b))
            return exact + MATMUL_ERROR * scale * rng.uniform(-1, 1, np.shape(exact))
        return matmul
    error = RELATIVE_ERRORS.get(name)
    if error is None:
        return apply

    def perturbed(a, b):
        exact = apply(a, b)
        return exact * (1 + error * rng.uniform(-1, 1, np.shape(exact)))

    return perturbed


@contextlib.contextmanager
def noisy_functions(seed: int = 0):
    rng = np.random.default_rng(seed)
    table = {
        name: dataclasses.replace(f, apply=_noisy(name, f.apply, rng)) for name, f in FLEQ_FUNCTIONS.items()
    }
    saved = fleq.FLEQ_FUNCTIONS
    fleq.FLEQ_FUNCTIONS = table
    try:
        yield
    finally:
        fleq.FLEQ_FUNCTIONS = saved
