"""Each FLEQ function's error in ulps on the transformer, against the bound its record states
(``ErrorBound.ulps``), on random operands across the whole window (fleqc.machines.fleq.ulps): 1,024 per
function in the default suite, 100,352 in the slow suite. bench/fleq_accuracy.py prints the same
measurement; README "Measured figures" states its results.
"""

from __future__ import annotations

import numpy as np
import pytest

from fleqc.machines.fleq.functions import FLEQ_FUNCTIONS
from tests.support.fleq_checks import measure_ulps

def worst_ulps(func: str, runs: int, seed: int) -> float:
    """The worst error in ulps over ``runs`` x 1,024 random operands on the machine."""
    return float(measure_ulps(func, runs, np.random.default_rng(seed))[0].max())


@pytest.mark.parametrize("func", sorted(FLEQ_FUNCTIONS))
def test_ulp_bound_on_a_thousand_operands(func):
    assert worst_ulps(func, runs=1, seed=13) <= FLEQ_FUNCTIONS[func].bound.ulps


@pytest.mark.slow
@pytest.mark.parametrize("func", sorted(FLEQ_FUNCTIONS))
def test_ulp_bound_on_a_hundred_thousand_operands(func):
    assert worst_ulps(func, runs=98, seed=1300) <= FLEQ_FUNCTIONS[func].bound.ulps
