"""Seeds perturbed, to test on the fast reference interpreter that the stdlib's results do not depend
on the bits of the functions they start from: the tables recip, sqrt, log and exp, which the machine
computes bit for bit, by ``SEED_NOISE`` = 1e-6 relative (4x recip's table error, 2.4e-7): a routine
that refines its seed must give the same result from any seed that close; sigmoid, which the
backprop routines use as it is, by 6.6e-8 (its table's stated accuracy). The exact
functions (add, sub, mul, mulerr, matmul, mov, transpose, relu) are left exact.

Use it as a context manager; inside, ``fleqc.machines.fleq.reference`` runs with the noisy functions::

    with noisy_functions(seed=0):
        result = fleqc.run(program, backend="reference")
"""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np

from fleqc.machines.fleq import reference as fleq
from fleqc.machines.fleq.functions import FLEQ_FUNCTIONS


SEED_NOISE = {"recip": 1e-6, "sqrt": 1e-6, "log": 1e-6, "exp": 1e-6, "sigmoid": 6.6e-8}


def _noisy(function, rng: np.random.Generator):
    error, apply = SEED_NOISE.get(function.name, function.bound.relative), function.apply
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
