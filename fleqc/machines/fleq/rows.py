"""Layout of the FLEQ punch card: named row blocks, column regions and the numeric windows.

Columns (left to right)::

    | reference (1) | lanes (cell^2) | memory (m cells) | instructions (k) | padding |

- The **reference column** is column 0 (positional code all -1). Pointer reads from columns that
  have nothing to read land there and read zeros.
- **Lane** r (column 1 + r) computes entry (r // cell, r % cell) of the result. Every lane holds a
  copy of the program counter, fetches the instruction, reads the operands and evaluates every
  function block on its own entry: feed-forward weights are shared by all columns, so per-entry
  work costs no extra parameters, and every attention head gives each lane its own softmax.
- A **memory column** holds one cell: entry (i, j) of a matrix in row ``mem[i * cell + j]``; a vector
  (k,) in entries (0, 0..k-1); a scalar in entry 0. Entries outside the cell's shape are 0.
- An **instruction column** holds the codes of its operand columns and the 0/1 rows that select its
  function block, the operand views and the result's shape (all decided by the card builder from
  the linked shapes).

Indicator rows named ``not_*`` are 1 when the thing named does *not* hold and exactly 0 when it
does: the exact gates of the function blocks need a row that is exactly 0 when selected.
"""

from __future__ import annotations

from dataclasses import dataclass

from fleqc.machines.fleq import product as exact_product
from fleqc.machines.fleq import tables as fleq_tables
from fleqc.machines.fleq.config import FleqConfig
from fleqc.machines.fleq.windows import EXP_MAX, PRODUCT_LADDER, PRODUCT_PREFIX, TABLE_LADDER, Ladder  # noqa: F401
from fleqc.card.rows import RowSpace

# Function blocks an instruction selects (each FLEQ function's record names its block: ``mov`` and
# ``transpose`` both use ``copy``; ``mul`` and ``matmul`` both use ``prod``; ``mulerr`` reads the same
# product pipeline's error). The FLEQ machine refuses to register functions whose block is not here
# (fleqc.machines.fleq).
OPS: tuple[str, ...] = ("copy", "add", "sub", "prod", "relu", "sigmoid", "exp", "recip", "sqrt", "log", "mulerr")
PRODUCT_OPS: tuple[str, ...] = ("prod", "mulerr")  # the blocks that run the exact product pipeline
EXP_OPS: tuple[str, ...] = ("exp", "sigmoid")  # the blocks whose result is exp's pipeline's (sigmoid: e^z)
TABLE_OPS: tuple[str, ...] = fleq_tables.REDUCED  # the tables of x' in (1/2, 2], in the order of g_tab's rows

# Operand views: how lane (i, j) picks its operand entries out of the 64 read rows.
#   a_entry: A[i, j]      a_scalar: A[0, 0]     a_transposed: A[j, i]
#   b_entry: B[i, j]      b_scalar: B[0, 0]
#   m_a_row_i: A[i, k]    m_a_row_j: A[j, k]    m_b_col_j: B[k, j]    m_b_row_i: B[i, k]   (k = 0..cell-1)
VIEWS: tuple[str, ...] = (
    "a_entry", "a_scalar", "a_transposed", "b_entry", "b_scalar",
    "m_a_row_i", "m_a_row_j", "m_b_col_j", "m_b_row_i",
)

# Instruction fields: (name, kind) where kind "code" is a positional code (w rows) and the rest
# are 0/1 rows: "ops" one row per OPS entry, "views" one per VIEWS entry, "mask" one per entry.
INSTRUCTION_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("dst", "code", "code of the destination cell's column"),
    ("a", "code", "code of operand a's column"),
    ("b", "code", "code of operand b's column"),
    ("flag", "code", "code of the flag cell's column"),
    ("p", "code", "code of the branch target's instruction column"),
    ("not_op", "ops", "1 - [this instruction uses function block OPS[k]]"),
    ("not_tab", "one", "1 - [the block is recip, sqrt or log]"),
    ("not_view", "views", "1 - [operand view VIEWS[k] is used]"),
    ("not_mask", "mask", "1 - [entry r lies inside the result's shape]"),
    ("flag_is_dst", "one", "[flag == dst]: the branch reads the new value"),
    ("not_flag_is_dst", "one", "1 - [flag == dst]"),
)


# The exact sign [x > 0] of the branch flag (fleqc.blocks.exact: sign_a, sign_b, sign_c), for the
# flag read from memory ("flag"), for the result when the flag is the destination ("res", in the
# lanes) and that result's parts gathered into the lanes ("dst"): (part, what the row holds).
SIGN_PARTS: tuple[tuple[str, str], ...] = (
    ("r", "ReLU({x} - 2^-60)"),
    ("m", "ReLU({x}) - ReLU({x} - 2^-60) (= {x} for 0 <= {x} <= 2^-60)"),
    ("u", "[{x} <= 2^-60]"),
    ("t", "[{x} > 2^-60]"),
    ("big", "2^1074 times the m row (>= 1 iff 0 < {x} <= 2^-60)"),
)
_ALL_PARTS = tuple(part for part, _ in SIGN_PARTS)
SIGNS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (  # (which, of what, where, its parts)
    ("flag", "mem[flag]", "lanes", _ALL_PARTS),
    ("res", "out", "lanes", _ALL_PARTS),
    ("dst", "out of lane 0", "the lanes", ("t", "big")),
)
SIGN_ROWS: tuple[str, ...] = tuple(f"sign_{which}_{part}" for which, _, _, parts in SIGNS for part in parts)

# Single exact thresholds [sign * x > level] on one input row: (name, input, sign, level).
SINGLE_THRESHOLDS: tuple[tuple[str, str, float, float], ...] = (
    ("sig_pos", "a_e", 1.0, fleq_tables.SIGMOID_Y),  # sigmoid's table argument min(|x|, 22)
    ("sig_neg", "a_e", -1.0, fleq_tables.SIGMOID_Y),
    ("exp_over", "a_e", 1.0, EXP_MAX),  # exp beyond the machine's range: a fault
    ("exp_under", "a_e", -1.0, -fleq_tables.EXP_FLOOR),  # exp below its table's range: the result is 0
    ("negative", "a_e", -1.0, 2.0 ** TABLE_LADDER.thresholds[0]),  # x < -tau_lo (sign for the tables)
)


def fleq_rows(config: FleqConfig) -> RowSpace:
    """The residual stream of the FLEQ machine (w = log2 n code bits, S = cell^2 entries)."""
    w, c, S = config.code_bits, config.cell, config.lanes
    sizes = {"code": w, "ops": len(OPS), "views": len(VIEWS), "mask": S, "one": 1}
    F = TABLE_LADDER
    blocks: list[tuple[str, int, str, str]] = [
        # static: written by the card
        ("one", 1, "static", "1 in every column"),
        ("ref", 1, "static", "1 in the reference column"),
        ("not_ref", 1, "static", "1 - ref"),
        ("lane", 1, "static", "1 in lane columns"),
        ("not_lane", 1, "static", "1 - lane"),
        ("pos", w, "static", "positional code (+-1) of the column"),
        ("pos_one", w, "static", "[bit k of the column's code is 1] (0 in the reference column)"),
        ("pos_zero", w, "static", "[bit k of the column's code is 0] (0 in the reference column)"),
        ("not_entry", S, "static", "lane r: 1 - [k = r]; other columns: 1"),
        ("not_row", c, "static", "lane (i, j): 1 - [k = i]; other columns: 1"),
        ("not_col", c, "static", "lane (i, j): 1 - [k = j]; other columns: 1"),
    ]
    blocks += [(f"i_{name}", sizes[kind], "static", f"instruction columns: {doc}") for name, kind, doc in INSTRUCTION_FIELDS]
    blocks += [
        # state
        ("pc", w, "state", "lanes: code of the instruction column to execute"),
        ("mem", S, "state", "memory columns: the cell's entries (float64)"),
        ("fault", 1, "state", "lanes: > 0 once an operand left a function block's domain"),
    ]
    blocks += [(f"c_{name}", sizes[kind], "temp", f"lanes: fetched {doc}") for name, kind, doc in INSTRUCTION_FIELDS]
    blocks += [
        ("op_a", S, "temp", "lanes: mem[a]"),
        ("op_b", S, "temp", "lanes: mem[b]"),
        ("fval", 1, "temp", "lanes: mem[flag] (entry 0)"),
        ("wen", 1, "temp", "every column: 1 in the destination column, else 0"),
        ("not_wen", 1, "temp", "every column: exactly 0 in the destination column, about 1 elsewhere"),
        ("a_e", 1, "temp", "lanes: operand a's entry for this lane (by the view)"),
        ("b_e", 1, "temp", "lanes: operand b's entry for this lane (by the view)"),
        ("a_ep", 1, "temp", "lanes: max(a_e, 0) (the product's slot 0)"),
        ("a_en", 1, "temp", "lanes: max(-a_e, 0)"),
        ("b_ep", 1, "temp", "lanes: max(b_e, 0)"),
        ("b_en", 1, "temp", "lanes: max(-b_e, 0)"),
        ("m_xp", c, "temp", "lanes: matmul slot k: max(x, 0) of the factor x carried by the value (A[., k])"),
        ("m_xn", c, "temp", "lanes: matmul slot k: max(-x, 0)"),
        ("m_yp", c, "temp", "lanes: matmul slot k: max(y, 0) of the factor y carried by the score (B[k, .])"),
        ("m_yn", c, "temp", "lanes: matmul slot k: max(-y, 0)"),
        ("not_in", 1, "temp", "lanes: 1 - [this lane's entry lies in the result's shape]; 1 elsewhere"),
        ("not_product", 1, "temp", "1 - [prod or mulerr, and this lane's entry is in the result] (the product runs)"),
        ("not_exp", 1, "temp", "lanes: 1 - [the block is exp or sigmoid] (exp's pipeline gives the result)"),
        ("next_pc", w, "temp", "lanes: code of pc + 1"),
        ("tl_r", len(F.thresholds), "temp", "table ladder: ReLU(|a_e| - tau_j)"),
        ("tl_u", len(F.thresholds), "temp", "table ladder: [|a_e| <= tau_j]"),
        ("tl_t", len(F.thresholds), "temp", "table ladder: [|a_e| > tau_j]"),
    ]
    for name, source, sign, level in SINGLE_THRESHOLDS:
        what = f"{'' if sign > 0 else '-'}{source} > {level:g}"
        blocks += [
            (f"th_{name}_r", 1, "temp", f"lanes: ReLU({what.replace(' > ', ' - ')})"),
            (f"th_{name}_u", 1, "temp", f"lanes: [not {what}]"),
            (f"th_{name}_t", 1, "temp", f"lanes: [{what}]"),
        ]
    blocks += [
        ("x_tab", 1, "temp", "lanes: |a_e| 4^-s in (1/2, 2] for recip, sqrt, log"),
        ("x_exp", 1, "temp", "lanes: a_e for exp (0 if out of range)"),
        ("sig_y", 1, "temp", "lanes: min(|a_e|, 22) for sigmoid (0 for other blocks)"),
        ("sig_nx", 1, "temp", "lanes: -min(a_e, 0) for sigmoid (0 for other blocks, or below exp's range)"),
        ("sig_yq", 1, "temp", "lanes: sig_y rounded to a multiple of 2^-26"),
        ("sig_b", 1, "temp", "lanes: b = log(1 + e^-y) from the softplus table at sig_yq (fleqc.machines.fleq.tables)"),
        ("q_tab", 1, "temp", "lanes: x_tab rounded to a multiple of 2^-29"),
        ("g_tab", len(TABLE_OPS), "temp", "lanes: the tables' g(q) for recip, sqrt, log (fleqc.machines.fleq.tables)"),
        ("exp_q", 1, "temp", "lanes: x_exp rounded to a multiple of 2^-40"),
        *((f"exp_{part}{n}", len(level.thresholds), "temp",
           f"every column (exp of 0 outside lanes): exp's level {n}: "
           f"[q_{n - 1} {'<' if part == 'u' else '>='} {level.step} j LN2]")
          for n, level in enumerate(fleq_tables.EXP_LEVELS, start=1) for part in "ut"),
        ("exp_r", 1, "temp", "every column (exp of 0 outside lanes): q - n LN2 in [0, LN2)"),
        ("exp_rq", 1, "temp", "every column: exp_r rounded to a multiple of 2^-29"),
        ("exp_g", 1, "temp", "every column: e^r from exp's table, in [1, 2 + 2^-24)"),
        ("exp_s", 1, "temp", "every column: 2^(8 B + C) exp_g"),
        ("out", 1, "temp", "lanes: this lane's result entry"),
        ("outv", S, "temp", "lane r: out in row r (0 in the other rows and columns), for the gather"),
        ("wval", S, "temp", "the destination column: the result entries gathered from the lanes"),
        *((f"sign_{which}_{part}", 1, "temp", f"{where}: {doc.format(x=x)}")
          for which, x, where, parts in SIGNS for part, doc in SIGN_PARTS if part in parts),
    ]
    blocks += [(name, size, role, f"lanes: exact product, {doc}")
               for name, size, role, doc in exact_product.row_blocks(c, PRODUCT_PREFIX)]
    return RowSpace(blocks)



# Temp rows the construction keeps >= 0 (indicators, ReLU outputs, softmax weights times positive
# values): clearing them takes one unit instead of two.
NONNEGATIVE_TEMPS: tuple[str, ...] = (
    "c_not_op", "c_not_tab", "c_not_view", "c_not_mask", "c_flag_is_dst", "c_not_flag_is_dst",
    "wen", "not_wen", "a_ep", "a_en", "b_ep", "b_en", "m_xp", "m_xn", "m_yp", "m_yn", "not_in", "not_product", "tl_r", "tl_u", "tl_t",
    *(f"th_{name}_{part}" for name, *_ in SINGLE_THRESHOLDS for part in "rut"),
    "x_tab", "q_tab", *(f"exp_{p}{n}" for n in (1, 2, 3) for p in "ut"), "exp_r", "exp_rq", "exp_g", "exp_s",
    "sig_y", "sig_nx", "sig_yq", "sig_b", "not_exp", *SIGN_ROWS,
)


def entry_index(shape: tuple[int, ...], cell: int) -> list[int]:
    """The mem rows holding a value of ``shape``, in numpy's C order."""
    if len(shape) == 0:
        return [0]
    if len(shape) == 1:
        return list(range(shape[0]))
    rows, cols = shape
    return [i * cell + j for i in range(rows) for j in range(cols)]


def fits_cell(shape: tuple[int, ...], cell: int) -> bool:
    return all(size <= cell for size in shape)
