"""The block library: attention heads and ReLU units that read, compute, write and branch.

Conventions. Bits and codes are stored as -1 (zero) / +1 (one), least significant first; a field
that does not apply to a column holds 0. ``U(x[0..k])`` = sum_j 2^j (x_j + 1)/2 is the unsigned value
of the low k+1 bits. Indicators computed by ReLU units are 0/1.

The one nonlinear primitive is the robust threshold (two ReLUs)::

    [S >= L] = ReLU(2(S - L) + 1.5) - ReLU(2(S - L) + 0.5)

It is exactly 0 for S <= L - 3/4 and exactly 1 for S >= L - 1/4, so for an integer-valued S it is the
step function, with a margin of 1/4 against any error in S: this is the error correction of every
block (values are snapped back to exact integers each time they pass through a threshold).
"""

from __future__ import annotations

from typing import Mapping

from fleqc.blocks.builders import FeedForwardBuilder, HeadBuilder
from fleqc.card.rows import RowBlock, RowSpace

# Margins of the robust threshold (see module docstring): exact for sums within 1/4 of an integer.
THRESHOLD_SLOPE = 2.0
THRESHOLD_HIGH = 1.5
THRESHOLD_LOW = 0.5


class Gate:
    """Switches ReLU units off outside the scratchpad column: pre-activation - C (1 - scratch).

    C must exceed every pre-activation the unit can reach in another column; the ALU's sums are
    bounded by 3 * 2^max(N, w), so C = 8 * 2^max(N, w) is safe, and exact in float64 (all values are
    multiples of 1/2 below 2^40).
    """

    def __init__(self, scratch_row: int, magnitude: float) -> None:
        self.row, self.magnitude = scratch_row, magnitude


def at_least(
    ffn: FeedForwardBuilder,
    terms: Mapping[int, float],
    constant: float,
    threshold: float,
    outputs: Mapping[int, float],
    gate: Gate | None = None,
) -> None:
    """outputs += coef * [S >= threshold], S = sum_r terms[r] X[r] + constant (integer-valued)."""
    inputs = {r: THRESHOLD_SLOPE * c for r, c in terms.items()}
    base = THRESHOLD_SLOPE * (constant - threshold)
    if gate is not None:
        inputs[gate.row] = inputs.get(gate.row, 0.0) + gate.magnitude
        base -= gate.magnitude
    ffn.unit(inputs, base + THRESHOLD_HIGH, outputs)
    ffn.unit(inputs, base + THRESHOLD_LOW, {r: -c for r, c in outputs.items()})


def unsigned_terms(block: RowBlock, upto: int, sign: float = 1.0) -> tuple[dict[int, float], float]:
    """U(x[0..upto]) as (coefficients on the bit rows, constant): sum_j 2^(j-1) x_j + (2^(upto+1) - 1)/2."""
    terms = {block[j]: sign * 2.0 ** (j - 1) for j in range(upto + 1)}
    return terms, sign * (2.0 ** (upto + 1) - 1) / 2


# ---------------------------------------------------------------------------------------------
# attention heads


def pointer_read_head(
    rows: RowSpace, name: str, pointer: RowBlock, dv: int, temperature: float, querier: str = "scratch"
) -> HeadBuilder:
    """A head whose scratchpad query attends to the column whose code equals ``pointer``.

    query = T (pointer + (scratch - one) 1): in the scratchpad the pointer; in every other column the
    all -1 code of column 0, so those columns read column 0 (the scratchpad), whose fields the head
    moves are 0 there, and receive nothing. key = pos. A matching code scores T w, any other at most
    T (w - 2). The caller says which rows the head moves (``HeadBuilder.moves``). ``querier`` names the
    indicator row of the columns that read (the FLEQ machine's lanes); all others read column 0.
    """
    w = pointer.size
    head = HeadBuilder(name, rows, dk=w, dv=dv)
    head.query_copies(0, pointer, temperature)
    head.query_reads(0, w, rows[querier][0], temperature)
    head.query_reads(0, w, rows["one"][0], -temperature)
    head.key_copies(0, rows["pos"])
    return head


def fetch_head(rows: RowSpace, temperature: float) -> HeadBuilder:
    """cur_a, cur_b, cur_c <- instr_a, instr_b, instr_c of the instruction column at pc."""
    w = rows["pc"].size
    head = pointer_read_head(rows, "fetch", rows["pc"], 3 * w, temperature)
    head.moves(rows["instr_a"], rows["cur_a"], slot=0)
    head.moves(rows["instr_b"], rows["cur_b"], slot=w)
    head.moves(rows["instr_c"], rows["cur_c"], slot=2 * w)
    return head


def operand_read_head(rows: RowSpace, pointer: str, dest: str, temperature: float) -> HeadBuilder:
    """dest <- mem of the memory column whose code equals the fetched pointer."""
    head = pointer_read_head(rows, f"read {pointer}", rows[pointer], rows["mem"].size, temperature)
    head.moves(rows["mem"], rows[dest])
    return head


def write_head(rows: RowSpace, temperature: float) -> HeadBuilder:
    """Every column j: wval_j <- [pos_j = cur_b] res, wen_j <- [pos_j = cur_b].

    query_j = T [pos_j ; (w - 1)], key of the scratchpad = [cur_b ; 0], key of any other column
    = [0 ; 1]. Column b scores T w on the scratchpad and T (w - 1) on every other column, so it copies
    the scratchpad's ``res`` and its ``scratch`` indicator (1). Every other column scores at most
    T (w - 2) on the scratchpad and attends to the other columns, whose res and scratch rows are 0.
    """
    w, N = rows["pos"].size, rows["res"].size
    head = HeadBuilder("write", rows, dk=w + 1, dv=N + 1)
    head.query_copies(0, rows["pos"], temperature)
    head.query_reads(w, 1, rows["one"][0], temperature * (w - 1))
    head.key_copies(0, rows["cur_b"])
    head.key_reads(w, 1, rows["one"][0], 1.0)
    head.key_reads(w, 1, rows["scratch"][0], -1.0)
    head.moves(rows["res"], rows["wval"], slot=0)
    head.moves(rows["scratch"], rows["wen"], slot=N)
    return head


# ---------------------------------------------------------------------------------------------
# feed-forward blocks


def offset_minus_one(ffn: FeedForwardBuilder, rows: RowSpace, targets: list[int]) -> None:
    """targets -= 1 in the scratchpad column only (one unit: ReLU(scratch)).

    Turns 0/1 bit indicators into -1/+1 bits: bit = 2 [..] - 1.
    """
    ffn.unit({rows["scratch"][0]: 1.0}, 0.0, {t: -1.0 for t in targets})


def subtract(ffn: FeedForwardBuilder, rows: RowSpace, gate: Gate) -> None:
    """res = val_b - val_a in N-bit two's complement (6 ReLUs per bit).

    Bit k of (b - a) mod 2^N depends only on the low k+1 bits: with D_k = U(b[0..k]) - U(a[0..k]),
    bit_k = [D_k mod 2^(k+1) >= 2^k] = [D_k >= -2^k] - [D_k >= 0] + [D_k >= 2^k]
    (D_k lies in (-2^(k+1), 2^(k+1))). res_k = 2 bit_k - 1.
    """
    for k in range(rows["res"].size):
        terms = _difference_terms(rows, k)
        out = rows["res"][k]
        at_least(ffn, terms, 0.0, -(2.0**k), {out: 2.0}, gate)
        at_least(ffn, terms, 0.0, 0.0, {out: -2.0}, gate)
        at_least(ffn, terms, 0.0, 2.0**k, {out: 2.0}, gate)


def flag_le_zero(ffn: FeedForwardBuilder, rows: RowSpace, gate: Gate) -> None:
    """flag = [(b - a) as a signed N-bit value <= 0] (6 ReLUs).

    With D = U(b) - U(a) in (-2^N, 2^N), the wrapped result is 0 or negative exactly when
    D is in [-2^(N-1), 0] or D >= 2^(N-1):  flag = [D >= -2^(N-1)] - [D >= 1] + [D >= 2^(N-1)].
    """
    N = rows["res"].size
    terms = _difference_terms(rows, N - 1)
    out = {rows["flag"][0]: 1.0}
    at_least(ffn, terms, 0.0, -(2.0 ** (N - 1)), out, gate)
    at_least(ffn, terms, 0.0, 1.0, {r: -c for r, c in out.items()}, gate)
    at_least(ffn, terms, 0.0, 2.0 ** (N - 1), out, gate)


def increment_code(ffn: FeedForwardBuilder, rows: RowSpace, gate: Gate) -> None:
    """next_pc = pc + 1 (mod n) as a code (4 ReLUs per bit).

    With T_k = U(pc[0..k]) + 1 in [1, 2^(k+1)]: bit_k = [T_k >= 2^k] - [T_k >= 2^(k+1)].
    """
    for k in range(rows["next_pc"].size):
        terms, constant = unsigned_terms(rows["pc"], k)
        out = rows["next_pc"][k]
        at_least(ffn, terms, constant + 1, 2.0**k, {out: 2.0}, gate)
        at_least(ffn, terms, constant + 1, 2.0 ** (k + 1), {out: -2.0}, gate)


def branch(ffn: FeedForwardBuilder, rows: RowSpace) -> None:
    """pc <- cur_c if flag else next_pc (8 ReLUs per bit).

    pc += -pc + next_pc + flag (cur_c - next_pc), where with x = cur_c_k - next_pc_k in {-2, 0, 2}
    and flag in {0, 1}:  flag * x = 2 [x + 2 flag - 2 >= 1] - 2 [-x + 2 flag - 2 >= 1].
    Outside the scratchpad pc, next_pc, flag are 0 and cur_c is 0, so every term vanishes.
    """
    flag = rows["flag"][0]
    for k in range(rows["pc"].size):
        pc, nxt, target = rows["pc"][k], rows["next_pc"][k], rows["cur_c"][k]
        ffn.identity(pc, {pc: -1.0})
        ffn.identity(nxt, {pc: 1.0})
        at_least(ffn, {target: 1.0, nxt: -1.0, flag: 2.0}, -2.0, 1.0, {pc: 2.0})
        at_least(ffn, {target: -1.0, nxt: 1.0, flag: 2.0}, -2.0, 1.0, {pc: -2.0})


def commit_write(ffn: FeedForwardBuilder, rows: RowSpace) -> None:
    """mem <- wval where wen = 1, unchanged elsewhere (4 ReLUs per bit).

    With x = wval_k - mem_k: in column b (wen = 1) x is in {-2, 0, 2}; elsewhere wval = wen = 0 and
    |x| <= 1, so x + 2 wen - 2 <= -1. mem_k += 2 [x + 2 wen - 2 >= 1] - 2 [-x + 2 wen - 2 >= 1].
    """
    wen = rows["wen"][0]
    for k in range(rows["mem"].size):
        mem, val = rows["mem"][k], rows["wval"][k]
        at_least(ffn, {val: 1.0, mem: -1.0, wen: 2.0}, -2.0, 1.0, {mem: 2.0})
        at_least(ffn, {val: -1.0, mem: 1.0, wen: 2.0}, -2.0, 1.0, {mem: -2.0})


def clear(ffn: FeedForwardBuilder, blocks: list[RowBlock]) -> None:
    """Every row of ``blocks`` <- 0: adds -x as ReLU(-x) - ReLU(x), exactly."""
    for block in blocks:
        for row in block:
            ffn.identity(row, {row: -1.0})


def _difference_terms(rows: RowSpace, k: int) -> dict[int, float]:
    """D_k = U(val_b[0..k]) - U(val_a[0..k]) = sum_j 2^(j-1) (b_j - a_j) (the constants cancel)."""
    b, _ = unsigned_terms(rows["val_b"], k)
    a, _ = unsigned_terms(rows["val_a"], k, sign=-1.0)
    return {**b, **a}
