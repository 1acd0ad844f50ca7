"""Layout: positional codes, row blocks and column regions."""

from __future__ import annotations

import numpy as np
import pytest

from fleqc.errors import ErrorCode, FleqError
from fleqc.card.codes import decode_signed, decode_unsigned, encode_signed, position_codes
from fleqc.card.columns import smallest_columns
from fleqc.machines.subleq.config import SubleqConfig
from fleqc.card.columns import ColumnRegions, check_fits
from fleqc.machines.subleq.rows import subleq_rows
from fleqc.machines import program_to_card
from tests.support.programs import subleq_program


@pytest.mark.parametrize("n", [4, 8, 16, 64, 1024])
def test_position_codes_are_distinct_pm1_and_separated(n):
    P = position_codes(n)
    w = n.bit_length() - 1
    assert P.shape == (w, n)
    assert set(np.unique(P)) <= {-1.0, 1.0}
    assert len({tuple(col) for col in P.T}) == n
    G = P.T @ P
    assert np.all(np.diag(G) == w)
    off = G[~np.eye(n, dtype=bool)]
    assert off.max() <= w - 2
    assert [decode_unsigned(P[:, i]) for i in range(n)] == list(range(n))


@pytest.mark.parametrize("bits", [2, 4, 16, 24, 32])
def test_signed_encoding_round_trips_at_the_extremes(bits):
    half = 1 << (bits - 1)
    for v in [-half, -1, 0, 1, half - 1]:
        code = encode_signed(v, bits)
        assert set(code) <= {-1.0, 1.0}
        assert decode_signed(code) == v


def test_row_blocks_tile_the_residual_without_overlap():
    config = SubleqConfig(columns=64, bits=16)
    rows = subleq_rows(config)
    covered = [r for block in rows for r in block]
    assert covered == list(range(rows.d))
    w, N = config.code_bits, config.bits
    assert rows.d == 4 + 9 * w + 5 * N
    assert len(rows.labels()) == rows.d
    assert rows["mem"].size == N and rows["pc"].size == w


def test_column_regions_follow_the_program():
    program = subleq_program(8, [1, 2, 3], [(0, 1, 0), (1, 2, 1)])
    card = program_to_card(program)
    assert card.config.columns == smallest_columns(1 + 3 + 2) == 8
    assert card.regions == ColumnRegions((0, 1), (1, 4), (4, 6), 8)
    X, rows = card.X, card.rows
    assert np.all(X[rows["one"].slice] == 1)
    assert X[rows["scratch"][0]].tolist() == [1, 0, 0, 0, 0, 0, 0, 0]
    # memory rows are filled exactly in the memory region, instruction rows in the instruction region
    filled_mem = np.flatnonzero(np.abs(X[rows["mem"].slice]).sum(axis=0))
    filled_ins = np.flatnonzero(np.abs(X[rows["instr_a"].slice]).sum(axis=0))
    assert filled_mem.tolist() == [1, 2, 3] and filled_ins.tolist() == [4, 5]
    assert all(not X[b.slice].any() for b in rows.with_role("temp"))
    assert card.read_pc() == 0 and card.read_memory() == [1, 2, 3]


def test_fixed_columns_and_too_large_programs():
    program = subleq_program(8, [0] * 10, [(0, 1, 0)] * 6)
    assert program_to_card(program, columns=32).X.shape[1] == 32
    with pytest.raises(FleqError) as err:
        program_to_card(program, columns=16)
    assert err.value.code is ErrorCode.PROGRAM_TOO_LARGE
    with pytest.raises(FleqError) as err:
        check_fits(10, 6, 16)
    assert "--columns 32" in err.value.message


@pytest.mark.parametrize("columns", [3, 6, 100, 1 << 17])
def test_bad_machine_sizes_are_user_errors(columns):
    with pytest.raises(FleqError) as err:
        SubleqConfig(columns=columns, bits=16)
    assert err.value.code is ErrorCode.BAD_CONFIG
