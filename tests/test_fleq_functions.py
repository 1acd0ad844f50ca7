"""The FLEQ function table's reference semantics where naive formulas lose precision."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fleqc.machines.fleq.functions import FLEQ_FUNCTIONS


@pytest.mark.parametrize("x", [-745.0, -700.0, -40.0, -20.0, -1.0, 0.0, 1e-300, 3.0, 40.0, 700.0])
def test_sigmoid_keeps_relative_precision_in_both_tails(x):
    """The table's 6.6e-8 relative holds in both tails (down to the subnormal results near -745)."""
    got = float(FLEQ_FUNCTIONS["sigmoid"].apply(np.array(x), None))
    exact = math.exp(x) / (1.0 + math.exp(x)) if x < 0 else 1.0 / (1.0 + math.exp(-x))
    assert got == pytest.approx(exact, rel=6.6e-8, abs=2.0**-1074)
    assert got > 0.0 if x > -745.0 else got >= 0.0


def test_transpose_keeps_the_shape_of_scalars_and_vectors():
    transpose = FLEQ_FUNCTIONS["transpose"].apply
    assert transpose(np.array(2.5), None).shape == ()
    assert transpose(np.array([1.0, 2.0]), None).shape == (2,)
    assert transpose(np.arange(6.0).reshape(2, 3), None).shape == (3, 2)
