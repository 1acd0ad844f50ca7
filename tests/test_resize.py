"""Issue 11, section 6: routines take any size that fits the cell.

``mov`` into a cell of another size of the same rank keeps the top-left block and pads with zeros,
on the reference and on the machine alike (the machine's copy block reads entry (i, j) of the
source, which is 0 outside its shape). So a 3 x 3 matrix goes through the 8 x 8 linalg routines
without hand-written embedding matrices.
"""

from __future__ import annotations

import numpy as np
import pytest

import fleqc
from fleqc.errors import ErrorCode, FleqError

MOVES = """
.machine fleq
.data
m:   .matrix 2 3  1 2 3  4 5 6
big: .matrix 4 4
cut: .matrix 2 2
v:   .vector 3  7 8 9
vs:  .vector 2
vb:  .vector 5
.text
        mov big, m
        mov cut, m
        mov vs, v
        mov vb, v
        halt
"""

EXPECTED = {
    "big": [[1, 2, 3, 0], [4, 5, 6, 0], [0, 0, 0, 0], [0, 0, 0, 0]],
    "cut": [[1, 2], [4, 5]],
    "vs": [7, 8],
    "vb": [7, 8, 9, 0, 0],
}


@pytest.mark.parametrize("backend", ["reference", "transformer"])
def test_mov_cuts_or_pads_to_the_destination(backend):
    result = fleqc.run(fleqc.compile(MOVES), backend=backend)
    assert result.halted
    for label, want in EXPECTED.items():
        assert np.array_equal(result.memory[label], np.array(want, dtype=float)), label


@pytest.mark.parametrize("source", [
    ".machine fleq\n.data\nv: .vector 3\nm: .matrix 3 3\n.text\nmov m, v\nhalt\n",
    ".machine fleq\n.data\ns: .word 1.0\nv: .vector 3\n.text\nmov v, s\nhalt\n",
    ".machine fleq\n.data\nv: .vector 3\nw: .vector 4\n.text\nrelu w, v\nhalt\n",
])
def test_other_ranks_and_other_functions_still_need_the_same_shape(source):
    with pytest.raises(FleqError) as err:
        fleqc.compile(source)
    assert err.value.code is ErrorCode.SHAPE_MISMATCH


INVERSE_3X3 = """
.machine fleq
.include "linalg_inverse.fleq"
.data
a:   .matrix 3 3  4 1 0  1 3 1  0 1 2
ai:  .matrix 3 3
.text
        mov inv_a, a
        call inverse
        mov ai, inv_out
        halt
"""
A = np.array([[4, 1, 0], [1, 3, 1], [0, 1, 2]], dtype=float)


def test_a_3x3_inverse_through_the_8x8_routine_on_the_reference():
    result = fleqc.run(fleqc.compile(INVERSE_3X3), backend="reference")
    assert np.abs(A @ result.memory["ai"] - np.eye(3)).max() < 1e-14


@pytest.mark.slow
def test_a_3x3_inverse_through_the_8x8_routine_on_the_transformer():
    result = fleqc.run(fleqc.compile(INVERSE_3X3))
    assert np.abs(A @ result.memory["ai"] - np.eye(3)).max() < 1e-9


SOLVE_AND_POWER_3X3 = """
.machine fleq
.include "linalg_solve.fleq"
.include "linalg_power.fleq"
.data
a:   .matrix 3 3  4 1 0  1 3 1  0 1 2
b:   .vector 3  1 2 3
x:   .vector 3
v3:  .vector 3  1 1 1
v:   .vector 3
lam: .word 0
.text
        mov solve_a, a
        mov solve_b, b
        call solve
        mov x, solve_out
        mov pi_a, a
        mov pi_v, v3
        call power_iteration
        mov v, pi_v
        mov lam, pi_lambda
        halt
"""


def test_solve_and_power_iteration_take_a_3x3_matrix_on_the_reference():
    """The 8 x 8 routines on a 3 x 3 problem padded by mov: the zero block adds zero eigenvalues and
    leaves the solution of the 3 x 3 block unchanged."""
    result = fleqc.run(fleqc.compile(SOLVE_AND_POWER_3X3), backend="reference")
    assert np.abs(A @ result.memory["x"] - np.array([1.0, 2.0, 3.0])).max() < 1e-13
    top = np.linalg.eigvalsh(A).max()
    assert abs(float(result.memory["lam"]) - top) < 1e-9 * top
    v = result.memory["v"]
    assert np.abs(A @ v - top * v).max() < 1e-5
