"""The FLEQ machine: one pass of 22 layers (cell 8) executes ``mem[c] = f(mem[a], mem[b]); branch``.

    #      kind       name       does (in every lane unless said otherwise)
    1      attention  fetch      c_* <- the instruction column at pc                           1 head
    2      attention  read       op_a <- mem[a], op_b <- mem[b], fval <- mem[flag]; every column:
                                 wen = [column = dst], not_wen = 1 - wen (exact 0 in dst)        4 heads
    3      ReLU       extract    a_e, b_e (this lane's entries, by the operand views), matmul slots
                                 m_x[k], m_y[k] (the product's factors as their parts max(f, 0),
                                 max(-f, 0)); not_in (entry outside the result); next_pc;
                                 dst column: mem <- 0
    4      ReLU       ladder A   ReLU(|f| - tau_j) for both factors of every product slot and the
                                 tables' input, and ReLU(tau_j+ - |f|) for the product's; single
                                 thresholds (exp's range, sigmoid's clamp, sign); the flag's exact
                                 sign, part A (closed when flag = dst)
    5      ReLU       ladder B   the 0/1 indicators [|f| <= tau_j], [|f| > tau_j] (with the product's
                                 E / 16 and each factor's sign); the product's band split, closed by
                                 ladder A's distances: |N| and |W| (N is y's, or x's when
                                 |y| <= 2^-896); the flag's sign, B
    6      ReLU       normalise  the inner ladder's distances on the product's |N| (and the rows of
                                 its exponent E); x_tab = |x| 4^-s in (1/2, 2];
                                 exp's input; sigmoid's y = min(|x|, 22) and min(x, 0)
    7-17   ReLU       product    the correctly rounded product of every slot and the pairwise sum of
                                 the slots (fleqc.machines.fleq.product: inner split, digits,
                                 partial products, middle, two-sum, error, round, subnormal grid,
                                 remainder, tie, tree); beside it (fleqc.machines.fleq.tables)
                                 in layers 8-9 the tables of recip, sqrt, log: q = x_tab rounded to
                                 2^-29, g = the table's line at q; in layers 7-9 sigmoid's
                                 z = min(x, 0) - b(y), b from the softplus table; in layers 10-17
                                 exp (of x, or of z for sigmoid): q rounded to 2^-40, three levels of
                                 thresholds (n = 64 A + 8 B + C), r = q - n LN2, its table,
                                 2^(8 B + C) T(r)
    18     ReLU       select     out = the selected block's value (exact gates, exact rescales,
                                 exp's 2^(64 A)); fault if an operand is outside the selected
                                 block's domain
    19-20  ReLU       sign       the result's exact sign, parts A and B (closed unless flag = dst)
    21     attention  gather     the destination column: wval[r] <- out of lane r (one head per
                                 run of lanes); a second head brings lane 0's sign to the lanes;
                                 every other column receives exact zeros
    22     ReLU       commit     dst column: mem <- wval; pc <- p if the flag value is <= 0, else
                                 next_pc (the exact sign's part C folded into the branch's
                                 thresholds); temps <- 0

3 attention and 19 feed-forward layers for cell 8 (the product tree takes one layer more for cells
9-16; cells up to 2 need no tree layer, but exp's chain beside the product keeps their depth): 20
layers as the paper counts them (an attention sublayer followed
by a feed-forward one; fetch has no feed-forward layer after it, the 16 feed-forward layers after
extract no attention before them). Heads: 1 + 4 + the gather's; every softmax weight is exactly 0,
1 or 1/2^k (the pointer reads, the write mark, the gathers): no engine's exp shows in the result.
Every constant is a power of two, a table value or slope (multiples of 2^-30 and 2^-27 or
coarser), a multiple of exp's LN2, or log's s ln 4 (one float per ladder selector); the weights
depend only on the configuration (n, cell). Every function block is exact: the reference's bits
(IEEE's product; the tables' lines, fleqc.machines.fleq.tables), on every engine.
"""

from __future__ import annotations

from typing import Optional, Sequence

from fleqc.blocks import common as blocks
from fleqc.machines.fleq.product import SHARED_STAGES, ProductBlock, own_layers
from fleqc.blocks.builders import FeedForwardBuilder, HeadBuilder, attention_layer
from fleqc.blocks.exact import (
    GATE,
    PENALTY,
    clear_rows,
    conjunction,
    gate,
    relu_gate,
    scaled_gate,
    split_gate,
    sign_a,
    sign_b,
    threshold_distance,
    threshold_indicators,
)
from fleqc.machines.fleq import tables as fleq_tables
from fleqc.machines.fleq.tables import Table
from fleqc.machines.fleq.config import FleqConfig
from fleqc.machines.fleq.rows import (
    TABLE_LADDER,
    TABLE_OPS,
    NONNEGATIVE_TEMPS,
    OPS,
    PRODUCT_OPS,
    EXP_OPS,
    PRODUCT_PREFIX,
    SINGLE_THRESHOLDS,
    VIEWS,
    fleq_rows,
)
from fleqc.card.rows import RowSpace
from fleqc.transformer.layers import LoopedTransformer

POINTER_TEMPERATURE = 512.0  # code match T w vs <= T (w - 2): gap 1024, off-target weights exactly 0
MARK_TEMPERATURE = PENALTY  # the write-mark head's gap is T: 1024
EXP_HEADROOM = 192  # exp's 2^(64 A) for A < 0: 2^(64 A + 192) inside the unit, 2^-192 outside


class _Rows:
    """Short names for the rows the construction uses (one place to look them up)."""

    def __init__(self, rows: RowSpace) -> None:
        self.rows = rows
        self.one = rows["one"][0]
        self.lane = rows["lane"][0]
        self.not_lane = rows["not_lane"][0]

    def __getitem__(self, name: str):
        return self.rows[name]

    def op(self, name: str) -> int:
        """c_not_op row of a function block (0 when the instruction selects it)."""
        return self.rows["c_not_op"][OPS.index(name)]

    def view(self, name: str) -> int:
        return self.rows["c_not_view"][VIEWS.index(name)]

    def th(self, name: str, part: str) -> int:
        return self.rows[f"th_{name}_{part}"][0]

    def tl(self, part: str, j: int) -> int:
        return self.rows[f"tl_{part}"][TABLE_LADDER.index(j)]


def product_block(R: "_Rows", c: int) -> ProductBlock:
    """The exact product of the c slots (fleqc.machines.fleq.product), enabled by the prod and
    mulerr blocks (row not_product)."""
    return ProductBlock(R.rows, c, lambda k: _product_parts(R, k, "x"), lambda k: _product_parts(R, k, "y"),
                        off=(R["not_product"][0],), prefix=PRODUCT_PREFIX)


def build_fleq_machine(config: FleqConfig) -> LoopedTransformer:
    rows = fleq_rows(config)
    R = _Rows(rows)
    c = config.cell
    P = product_block(R, c)
    product_stages = P.stages()[SHARED_STAGES:]  # the first ones run in layers 3-6 (the input split in extract)
    # exp's chain (layers 7-17) is as deep as the product's for cells 3-8; for cells 1-2, whose pairwise
    # sum needs no tree layer, it is one deeper: the product's rows wait unchanged in that layer
    product_stages += [("waits for exp", lambda ffn: None)] * (product_layers(c) - len(product_stages))
    layers = [
        attention_layer([_fetch_head(R)]),
        attention_layer(_read_heads(R)),
        _extract(R, c).build("extract"),
        _ladder_a(R, P).build("ladder A"),
        _ladder_b(R, P).build("ladder B"),
        _normalise(R, P).build("normalise"),
        *(_product_layer(R, stage, _BESIDE[n] if n < len(_BESIDE) else []).build(f"product: {name}")
          for n, (name, stage) in enumerate(product_stages)),
        _select(R, P).build("select"),
        _result_sign_a(R, config.lanes).build("result sign A"),
        _result_sign_b(R).build("result sign B"),
        attention_layer(_gather_heads(R, config.lanes)),
        _commit(R, config.lanes, P).build("commit and branch"),
    ]
    real_rows = set(rows["mem"])
    return LoopedTransformer(
        layers=tuple(layers),
        row_labels=tuple(rows.labels()),
        ternary_rows=tuple(r for r in range(rows.d) if r not in real_rows),
        metadata={
            "machine": config.to_dict(),
            "pointer_temperature": POINTER_TEMPERATURE,
            "fault_rows": list(rows["fault"]),
            "table_intervals": len(fleq_tables.knots()) - 1,
        },
    )


# -- 1, 2: fetch and read ------------------------------------------------------------------------


def _fetch_head(R: _Rows) -> HeadBuilder:
    """Every lane: c_* <- i_* of the instruction column whose code is pc (other columns read zeros)."""
    fields = [b.name[2:] for b in R.rows if b.name.startswith("i_")]
    dv = sum(R[f"i_{f}"].size for f in fields)
    head = blocks.pointer_read_head(R.rows, "fetch", R["pc"], dv, POINTER_TEMPERATURE, querier="lane")
    slot = 0
    for f in fields:
        head.moves(R[f"i_{f}"], R[f"c_{f}"], slot)
        slot += R[f"i_{f}"].size
    return head


def _read_heads(R: _Rows) -> list[HeadBuilder]:
    """op_a <- mem[a], op_b <- mem[b], fval <- mem[flag][0]; the write mark wen / not_wen."""
    S = R["mem"].size
    heads = []
    for pointer, dest in (("c_a", "op_a"), ("c_b", "op_b")):
        head = blocks.pointer_read_head(R.rows, f"read {pointer[2:]}", R[pointer], S, POINTER_TEMPERATURE, "lane")
        heads.append(head.moves(R["mem"], R[dest]))
    flag = blocks.pointer_read_head(R.rows, "read flag", R["c_flag"], 1, POINTER_TEMPERATURE, "lane")
    heads.append(flag.carries(0, {R["mem"][0]: 1.0}, {R["fval"][0]: 1.0}))
    heads.append(_mark_head(R))
    return heads


def _mark_head(R: _Rows) -> HeadBuilder:
    """Every column: wen = [pos = dst], not_wen = 1 - wen, exactly 0 in the destination column.

    query = T [pos ; w - 1], key of a lane = [c_dst ; 0], key of any other column = [0 ; 1]. The
    destination column scores T w on every lane and T (w - 1) elsewhere: weight exactly 1/S on each
    lane (S a power of two), so wen = 1 and not_wen = 0 exactly. Any other column scores at most
    T (w - 2) on the lanes: their weight is exactly 0 (gap T = 1024), so wen = 0 and not_wen ~ 1.
    """
    w = R["pos"].size
    T = MARK_TEMPERATURE
    head = HeadBuilder("mark", R.rows, dk=w + 1, dv=2)
    head.query_copies(0, R["pos"], T).query_terms(w, {R.one: T * (w - 1)})
    head.key_copies(0, R["c_dst"]).key_terms(w, {R.not_lane: 1.0})
    head.carries(0, {R.lane: 1.0}, {R["wen"][0]: 1.0})
    head.carries(1, {R.not_lane: 1.0}, {R["not_wen"][0]: 1.0})
    return head


# -- 3: extract ------------------------------------------------------------------------------------


def _extract(R: _Rows, c: int) -> FeedForwardBuilder:
    """Pick this lane's operand entries out of op_a / op_b with exact gates on static lane rows.

    Lane r = (i, j):  a_e = A[i, j] | A[0, 0] | A[j, i];  b_e = B[i, j] | B[0, 0];
    m_x[k] = A[i, k] | A[j, k];  m_y[k] = B[k, j] | B[i, k]  (the view rows of the instruction).
    Exactly one term of each sum is open, so every sum adds exact zeros. The product's factors come
    as their parts max(f, 0), max(-f, 0), the two units of each gate written to two rows (split_gate):
    m_xp, m_xn (m_x's), m_yp, m_yn, and a_ep, a_en, b_ep, b_en beside a_e, b_e.
    """
    ffn = FeedForwardBuilder(R.rows)
    a, b = R["op_a"], R["op_b"]
    ent, row, col = R["not_entry"], R["not_row"], R["not_col"]
    with ffn.part("entries"):
        for r in range(c * c):
            i, j = divmod(r, c)
        def entry(source: int, closed: list[int], name: str) -> None:  # name_e, and its parts name_ep, name_en
            e = R[f"{name}_e"][0]
            split_gate(ffn, {source: 1.0}, closed, {e: 1.0, R[f"{name}_ep"][0]: 1.0}, {e: -1.0, R[f"{name}_en"][0]: 1.0})

        for r in range(c * c):
            i, j = divmod(r, c)
            entry(a[r], [ent[r], R.view("a_entry")], "a")
            entry(a[j * c + i], [ent[r], R.view("a_transposed")], "a")
            entry(b[r], [ent[r], R.view("b_entry")], "b")
        entry(a[0], [R.not_lane, R.view("a_scalar")], "a")
        entry(b[0], [R.not_lane, R.view("b_scalar")], "b")
    with ffn.part("matmul slots"):
        for k in range(c):
            xp, xn, yp, yn = ({R[name][k]: 1.0} for name in ("m_xp", "m_xn", "m_yp", "m_yn"))
            for i in range(c):
                split_gate(ffn, {a[i * c + k]: 1.0}, [row[i], R.view("m_a_row_i")], xp, xn)
                split_gate(ffn, {a[i * c + k]: 1.0}, [col[i], R.view("m_a_row_j")], xp, xn)
                split_gate(ffn, {b[k * c + i]: 1.0}, [col[i], R.view("m_b_col_j")], yp, yn)
                split_gate(ffn, {b[i * c + k]: 1.0}, [row[i], R.view("m_b_row_i")], yp, yn)
    with ffn.part("shape mask"):
        not_in = R["not_in"][0]
        ffn.unit({R.not_lane: 1.0}, 0.0, {not_in: 1.0})
        for r in range(c * c):
            ffn.unit({R["c_not_mask"][r]: 1.0, ent[r]: -1.0}, 0.0, {not_in: 1.0})
    with ffn.part("product pipeline"):
        # not_product = 1 - [the block is prod or mulerr, and this lane's entry lies inside the result's
        # shape]: in lane r, ReLU(2 - sum of the product blocks' c_not_op - c_not_mask[r] - 2 not_entry[r])
        # is 1 exactly then (the c_not_op rows of the product blocks sum to 1 when one is selected, else
        # 2) and 0 otherwise, and 0 in every other column (not_entry[r] = 1 there). So a lane outside the
        # shape, and every non-lane column, keeps the pipeline closed and its rows unchanged from pass to
        # pass (the select layer discards those entries anyway: not_in).
        for r in range(c * c):
            terms = {R.op(name): -1.0 for name in PRODUCT_OPS} | {R["c_not_mask"][r]: -1.0, ent[r]: -2.0}
            ffn.unit(terms, float(len(PRODUCT_OPS)), {R["not_product"][0]: -1.0})
        ffn.bias(R["not_product"][0], 1.0)
        ffn.unit({R.op(name): 1.0 for name in EXP_OPS}, 1.0 - len(EXP_OPS), {R["not_exp"][0]: 1.0})
    with ffn.part("next pc"):
        blocks.increment_code(ffn, R.rows, blocks.Gate(R.lane, 8.0 * 2.0 ** R["pc"].size))
        ffn.unit({R.lane: 1.0}, 0.0, {r: -1.0 for r in R["next_pc"]})
    with ffn.part("clear destination"):
        for m in R["mem"]:
            gate(ffn, {m: 1.0}, [R["not_wen"][0]], {m: -1.0})
    return ffn


# -- 4, 5: ladders ---------------------------------------------------------------------------------


def _product_parts(R: _Rows, slot: int, factor: str) -> tuple[dict[int, float], dict[int, float]]:
    """Slot k's factor as its parts (max(f, 0), max(-f, 0)): the matmul slot's, plus the elementwise
    entry's in slot 0 (one of them is 0)."""
    parts = []
    for side in "pn":
        terms = {R[f"m_{factor}{side}"][slot]: 1.0}
        if slot == 0:
            terms[R[("b_e" if factor == "y" else "a_e") + side][0]] = 1.0
        parts.append(terms)
    return parts[0], parts[1]


def _single_input(R: _Rows, source: str, sign: float) -> dict[int, float]:
    return {R[source][0]: sign}


def _product_layer(R: _Rows, stage, beside) -> FeedForwardBuilder:
    """One stage of the exact product, and the parts of other blocks that run beside it."""
    ffn = FeedForwardBuilder(R.rows)
    with ffn.part("exact product"):
        stage(ffn)
    for name, part in beside:
        with ffn.part(name):
            part(R, ffn)
    return ffn


# -- 7-17 (beside the product): the tables ----------------------------------------------------------


def _round_to_grid(ffn: FeedForwardBuilder, source: int, target: int, rounder: float, on: Optional[int]) -> None:
    """target += source rounded to the grid of ``rounder`` (the float spacing at it), ties to even:
    ReLU(source + rounder) - rounder, one IEEE addition and then an exact subtraction of two terms
    (source + rounder > 0). ``on``: the row that carries the constant (only those columns), or None
    for the units' biases (every column)."""
    if on is None:
        ffn.unit({source: 1.0}, rounder, {target: 1.0})
        ffn.unit({}, rounder, {target: -1.0})
    else:
        ffn.unit({source: 1.0, on: rounder}, 0.0, {target: 1.0})
        ffn.unit({on: rounder}, 0.0, {target: -1.0})


def _table_units(ffn: FeedForwardBuilder, argument: int, tables: Sequence[Table], outputs: Sequence[int],
                 on: int) -> None:
    """outputs[n] += tables[n]'s line at the argument, as v_0 + sum_j kink_j ReLU(argument - t_j)
    (fleqc.machines.fleq.tables: every term on one grid, every partial sum bounded: exact in any order).
    One unit per knot, shared by tables with the same knots; v_0 by a unit on the row ``on``."""
    ffn.unit({on: 1.0}, 0.0, {row: float(tab.v[0]) for row, tab in zip(outputs, tables)})
    kinks = [tab.kinks for tab in tables]
    for j, t in enumerate(tables[0].t[:-1]):
        ffn.unit({argument: 1.0}, -float(t),
                 {row: float(k[j]) for row, k in zip(outputs, kinks) if k[j] != 0.0})


def _tables_quantise(R: _Rows, ffn: FeedForwardBuilder) -> None:
    """q_tab = x_tab rounded to a multiple of 2^-29 (lanes only)."""
    _round_to_grid(ffn, R["x_tab"][0], R["q_tab"][0], fleq_tables.ROUNDER, on=R.lane)


def _tables_interpolate(R: _Rows, ffn: FeedForwardBuilder) -> None:
    """g_tab = the lines of recip, sqrt and log at q_tab (every term a multiple of 2^-49, every
    partial sum below 7), one unit per knot for the three."""
    tables = [fleq_tables.table(name) for name in TABLE_OPS]
    _table_units(ffn, R["q_tab"][0], tables, list(R["g_tab"]), on=R.lane)


# The block that reads each single threshold (rows.SINGLE_THRESHOLDS): the row that is 0 when it is selected.
THRESHOLD_USERS = {"sig_pos": "sigmoid", "sig_neg": "sigmoid", "exp_over": "exp or sigmoid",
                   "exp_under": "exp or sigmoid", "negative": "tables"}


def _users_closed(R: _Rows, users: str) -> dict[int, float]:
    """Terms that close a distance unit (to 0, as for x = 0) unless the block that reads it is
    selected: -2^1020 times a 0/1 row that is 0 then (exact zeros added otherwise)."""
    row = {"sigmoid": R.op("sigmoid"), "exp or sigmoid": R["not_exp"][0], "tables": R["c_not_tab"][0]}[users]
    return {row: -GATE}


def _ladder_a(R: _Rows, P: ProductBlock) -> FeedForwardBuilder:
    """ReLU(|x| - tau) for every threshold of both ladders (one unit: |x| is the sum of the operand's
    parts); single thresholds. Each is closed (0) unless a block that reads it is selected: an
    unselected block's rows stay the same from pass to pass, whatever the operands."""
    ffn = FeedForwardBuilder(R.rows)
    with ffn.part("product ladder"):
        P.outer_ladder_a(ffn)
    with ffn.part("table ladder"):
        # closed outside the result's shape too (not_in): there every selector of the table rescale
        # stays closed, so the rescale's gates need not read not_in (which changes with the instruction)
        closed = {**_users_closed(R, "tables"), R["not_in"][0]: -GATE}
        magnitude = {R["a_ep"][0]: 1.0, R["a_en"][0]: 1.0}  # |a_e|: one unit a threshold
        for j in range(TABLE_LADDER.lo, TABLE_LADDER.hi + 1):
            threshold_distance(ffn, {**magnitude, **closed}, TABLE_LADDER.tau(j), R.tl("r", j))
    with ffn.part("thresholds"):
        for name, source, sign, level in SINGLE_THRESHOLDS:
            terms = {**_single_input(R, source, sign), **_users_closed(R, THRESHOLD_USERS[name])}
            threshold_distance(ffn, terms, level, R.th(name, "r"))
    with ffn.part("flag sign A"):  # closed (0) when flag = dst: the branch then reads the result's sign
        sign_a(ffn, {R["fval"][0]: 1.0, R["c_flag_is_dst"][0]: -GATE}, *_sign_rows(R, "flag", ("r", "m")))
    return ffn


def _ladder_b(R: _Rows, P: ProductBlock) -> FeedForwardBuilder:
    ffn = FeedForwardBuilder(R.rows)
    with ffn.part("product ladder B and split"):
        P.outer_split(ffn)
    with ffn.part("table ladder"):
        for j in range(TABLE_LADDER.lo, TABLE_LADDER.hi + 1):
            tau = TABLE_LADDER.tau(j)
            threshold_indicators(ffn, R.tl("r", j), tau, R.tl("u", j), R.tl("t", j))
    with ffn.part("thresholds"):
        for name, _source, _sign, level in SINGLE_THRESHOLDS:
            threshold_indicators(ffn, R.th(name, "r"), level, R.th(name, "u"), R.th(name, "t"))
    with ffn.part("flag sign B"):
        sign_b(ffn, *_sign_rows(R, "flag", ("r", "m", "u", "t", "big")))
    return ffn


def _sign_rows(R: _Rows, which: str, parts: tuple[str, ...]) -> list[int]:
    """The rows of one exact sign (rows.SIGN_PARTS: r, m, u, t, big) in the order asked."""
    return [R[f"sign_{which}_{part}"][0] for part in parts]


# -- 6: normalise ----------------------------------------------------------------------------------


def _normalise(R: _Rows, P: ProductBlock) -> FeedForwardBuilder:
    """Exact power-of-two splits and clamps; unselected blocks see exact zeros.

    Product slot k: the inner ladder's distances on |N| (prod and mulerr only;
    fleqc.machines.fleq.product).
    Tables, selector s (2^(2s-1) < |x| <= 2^(2s+1)):  x_tab += |x| 4^-s  (recip, sqrt, log only).
    """
    ffn = FeedForwardBuilder(R.rows)
    with ffn.part("product inner ladder"):
        P.inner_ladder(ffn)
    F = TABLE_LADDER
    a_e = R["a_e"][0]
    with ffn.part("table split"):
        for s in F.selectors:
            open_ = [R.tl("u", s), R.tl("t", s + 1), R["c_not_tab"][0]]
            scaled_gate(ffn, {a_e: 1.0}, -F.step * s, open_ + [R.th("negative", "t")], {R["x_tab"][0]: 1.0})
            scaled_gate(ffn, {a_e: -1.0}, -F.step * s, open_ + [R.th("negative", "u")], {R["x_tab"][0]: 1.0})
    with ffn.part("clamps"):
        gate(ffn, {a_e: 1.0}, [R.op("exp"), R.th("exp_over", "t"), R.th("exp_under", "t")], {R["x_exp"][0]: 1.0})
        # sigmoid: sig_y = min(|x|, 22) (|x| itself, or 22 when one of the exclusive thresholds holds)
        big = [R.th("sig_pos", "t"), R.th("sig_neg", "t")]
        relu_gate(ffn, {a_e: 1.0}, [R.op("sigmoid")] + big, R["sig_y"][0])
        relu_gate(ffn, {a_e: -1.0}, [R.op("sigmoid")] + big, R["sig_y"][0])
        ffn.unit({row: 1.0 for row in big} | {R.op("sigmoid"): -1.0}, 0.0, {R["sig_y"][0]: fleq_tables.SIGMOID_Y})
        relu_gate(ffn, {a_e: -1.0}, [R.op("sigmoid"), R.th("exp_under", "t")], R["sig_nx"][0])  # -min(x, 0)
    return ffn


# sigmoid = exp(z), z = min(x, 0) - b(min(|x|, 22)) (layers 7-9; fleqc.machines.fleq.tables)


def _sigmoid_quantise(R: _Rows, ffn: FeedForwardBuilder) -> None:
    """sig_yq = sig_y rounded to a multiple of 2^-26 (lanes only)."""
    _round_to_grid(ffn, R["sig_y"][0], R["sig_yq"][0], fleq_tables.SIGMOID_ROUNDER, on=R.lane)


def _sigmoid_table(R: _Rows, ffn: FeedForwardBuilder) -> None:
    """sig_b = v_N + sum_j c_j ReLU(t_j - y) (the softplus table's kinks from the right: every term a
    multiple of 2^-53, every partial sum below 1), lanes only."""
    tab = fleq_tables.table("softplus")
    y, b = R["sig_yq"][0], R["sig_b"][0]
    if tab.v[-1] != 0.0:
        ffn.unit({R.lane: 1.0}, 0.0, {b: float(tab.v[-1])})
    for t, c in zip(tab.t[1:], tab.kinks_from_the_right):
        if c != 0.0:
            ffn.unit({R.lane: float(t), y: -1.0}, 0.0, {b: float(c)})


def _sigmoid_z(R: _Rows, ffn: FeedForwardBuilder) -> None:
    """x_exp += z = fl(min(x, 0) - b) for sigmoid (two terms: one rounding); exp's pipeline follows."""
    gate(ffn, {R["sig_nx"][0]: -1.0, R["sig_b"][0]: -1.0}, [R.op("sigmoid"), R.th("exp_under", "t")],
         {R["x_exp"][0]: 1.0})


# exp = 2^n T(r) (layers 10-17, and 2^(64 A) in the select layer), for exp and for sigmoid

EXP_UNITS = 1.0 / fleq_tables.EXP_QUANTUM  # q and every threshold are integers in units of 2^-40


def _exp_remainder(R: _Rows, k: int) -> tuple[dict[int, float], float]:
    """q_k, the remainder after the first k levels of exp's reduction, as terms and a constant:
    q_k = q - sum_(l<k) step_l LN2 (first_l + N_l - sum_j u_l[j]) (every term a multiple of 2^-40)."""
    terms, constant = {R["exp_q"][0]: 1.0}, 0.0
    for n, level in enumerate(fleq_tables.EXP_LEVELS[:k], start=1):
        c = level.step * fleq_tables.LN2
        constant -= c * (level.first + len(level.thresholds))
        terms.update({row: c for row in R[f"exp_u{n}"]})
    return terms, constant


def _exp_quantise(R: _Rows, ffn: FeedForwardBuilder) -> None:
    """exp_q = x_exp rounded to a multiple of 2^-40."""
    _round_to_grid(ffn, R["x_exp"][0], R["exp_q"][0], fleq_tables.EXP_ROUNDER, on=None)


def _exp_level(k: int):
    """Level k's indicators u[j] = [q_k < tau_j], t[j] = 1 - u[j]: with z = 2^40 (tau_j - q_k), an
    integer whose terms (q and the earlier levels' u rows, scaled, and the bias) are integers whose
    magnitudes add up to at most 2^51.6 (exact in any order), u = [z >= 1] = ReLU(z) - ReLU(z - 1)."""

    def part(R: _Rows, ffn: FeedForwardBuilder) -> None:
        terms, constant = _exp_remainder(R, k)
        level = fleq_tables.EXP_LEVELS[k]
        u, t = R[f"exp_u{k + 1}"], R[f"exp_t{k + 1}"]
        inputs = {row: -EXP_UNITS * c for row, c in terms.items()}
        for i, j in enumerate(level.thresholds):
            z0 = EXP_UNITS * (level.tau(j) - constant)
            ffn.unit(inputs, z0, {u[i]: 1.0, t[i]: -1.0})
            ffn.unit(inputs, z0 - 1.0, {u[i]: -1.0, t[i]: 1.0})
            ffn.bias(t[i], 1.0)

    return part


def _exp_reduced(R: _Rows, ffn: FeedForwardBuilder) -> None:
    """exp_r = q_3 = q - n LN2 in [0, LN2) (a sum of multiples of 2^-40 below 2^12: exact)."""
    terms, constant = _exp_remainder(R, len(fleq_tables.EXP_LEVELS))
    ffn.unit(terms, constant, {R["exp_r"][0]: 1.0})


def _exp_reduced_quantise(R: _Rows, ffn: FeedForwardBuilder) -> None:
    """exp_rq = exp_r rounded to a multiple of 2^-29, the grid of the table's argument."""
    _round_to_grid(ffn, R["exp_r"][0], R["exp_rq"][0], fleq_tables.ROUNDER, on=None)


def _exp_table(R: _Rows, ffn: FeedForwardBuilder) -> None:
    """exp_g = T(r) in [1, 2 + 2^-24) (terms multiples of 2^-48, partial sums below 3)."""
    _table_units(ffn, R["exp_rq"][0], [fleq_tables.table("exp")], [R["exp_g"][0]], on=R.one)


def _exp_selector_closes(R: _Rows, k: int, i: int) -> list[int]:
    """The rows that are all 0 iff level k's count of thresholds below q_k is i."""
    u, t = R[f"exp_u{k + 1}"], R[f"exp_t{k + 1}"]
    return ([u[i - 1]] if i > 0 else []) + ([t[i]] if i < len(t) else [])


def _exp_scale(R: _Rows, ffn: FeedForwardBuilder) -> None:
    """exp_s = 2^(8 B + C) T(r), one exact scaled gate per (B, C)."""
    _, B, C = fleq_tables.EXP_LEVELS
    for b in range(len(B.thresholds) + 1):
        for c in range(len(C.thresholds) + 1):
            closes = _exp_selector_closes(R, 1, b) + _exp_selector_closes(R, 2, c)
            gate(ffn, {R["exp_g"][0]: 2.0 ** (B.step * (B.first + b) + C.step * (C.first + c))}, closes,
                 {R["exp_s"][0]: 1.0})


def _exp_result(R: _Rows, ffn: FeedForwardBuilder, open_: list[int]) -> None:
    """out = 2^(64 A) exp_s: for A < 0 the unit holds exp_s 2^(64 A + 192) (a normal float, exact) and
    the output weight 2^-192 rounds once (subnormal results, as ldexp does)."""
    A = fleq_tables.EXP_LEVELS[0]
    for i in range(len(A.thresholds) + 1):
        e = A.step * (A.first + i)
        closes = _exp_selector_closes(R, 0, i) + open_
        inner, outer = (1.0, 2.0**e) if e >= 0 else (2.0 ** (e + EXP_HEADROOM), 2.0**-EXP_HEADROOM)
        gate(ffn, {R["exp_s"][0]: inner}, closes, {R["out"][0]: outer})


# -- 18: select -----------------------------------------------------------------------------------


def _select(R: _Rows, P: ProductBlock) -> FeedForwardBuilder:
    """out = the selected block's value for entries inside the result's shape, else 0."""
    ffn = FeedForwardBuilder(R.rows)
    out, not_in = {R["out"][0]: 1.0}, R["not_in"][0]
    a_e, b_e = R["a_e"][0], R["b_e"][0]
    with ffn.part("exact blocks"):
        gate(ffn, {a_e: 1.0}, [R.op("copy"), not_in], out)
        gate(ffn, {a_e: 1.0, b_e: 1.0}, [R.op("add"), not_in], out)
        gate(ffn, {a_e: 1.0, b_e: -1.0}, [R.op("sub"), not_in], out)
        relu_gate(ffn, {a_e: 1.0}, [R.op("relu"), not_in], R["out"][0])
        gate(ffn, P.result_terms(), [R.op("prod"), not_in], out)  # the product tree's last level
        P.product_error(ffn, [R.op("mulerr"), not_in], out)
    with ffn.part("exp, sigmoid: 2^(64 A)"):
        _exp_result(R, ffn, [R["not_exp"][0], not_in, R.th("exp_under", "t")])
    F = TABLE_LADDER
    with ffn.part("table rescale"):  # exact scalings; log adds s ln 4 (one IEEE addition)
        g = {name: {R["g_tab"][n]: 1.0} for n, name in enumerate(TABLE_OPS)}
        for s in F.selectors:
            selected = [R.tl("u", s), R.tl("t", s + 1)]  # all closed outside the shape (_ladder_a)
            pos, neg = R.th("negative", "t"), R.th("negative", "u")
            scaled_gate(ffn, g["recip"], -F.step * s, selected + [R.op("recip"), pos], out)
            scaled_gate(ffn, g["recip"], -F.step * s, selected + [R.op("recip"), neg], {R["out"][0]: -1.0})
            scaled_gate(ffn, g["sqrt"], s, selected + [R.op("sqrt"), pos], out)
            gate(ffn, g["log"], selected + [R.op("log"), pos], out, fleq_tables.log_offset(s))
    fault = R["fault"][0]
    with ffn.part("domain faults"):
        for k in range(P.slots):
            for row in P.fault_rows(k):
                conjunction(ffn, row, [R["not_product"][0], not_in], fault)
        for name in TABLE_OPS:
            conjunction(ffn, R.tl("t", F.hi), [R.op(name), not_in], fault)
        for name in ("recip", "log"):
            conjunction(ffn, R.tl("u", F.lo), [R.op(name), not_in], fault)
        for name in ("sqrt", "log"):
            conjunction(ffn, R.th("negative", "t"), [R.op(name), not_in], fault)
        conjunction(ffn, R.th("exp_over", "t"), [R.op("exp"), not_in], fault)
    with ffn.part("clear the product's rows"):  # read for the last time above: cleared here, where the
        # engine recomputes only the lanes, instead of in the commit layer, which every column passes
        P.clear(ffn)
    return ffn


# -- 19, 20: the result's exact sign ------------------------------------------------------------


def _result_sign_a(R: _Rows, lanes: int) -> FeedForwardBuilder:
    """Layer A of the exact sign of out (fleqc.blocks.exact), in every lane: the branch reads lane
    0's when flag = dst (the result is then a scalar); beside it, each lane's out in a row of its
    own for the gather (:func:`_spread`)."""
    ffn = FeedForwardBuilder(R.rows)
    with ffn.part("result sign"):  # closed (0) unless flag = dst
        sign_a(ffn, {R["out"][0]: 1.0, R["c_not_flag_is_dst"][0]: -GATE}, *_sign_rows(R, "res", ("r", "m")))
    with ffn.part("spread"):
        _spread(R, ffn, lanes)
    return ffn


def _result_sign_b(R: _Rows) -> FeedForwardBuilder:
    """Layer B of the exact sign of out."""
    ffn = FeedForwardBuilder(R.rows)
    with ffn.part("result sign"):
        sign_b(ffn, *_sign_rows(R, "res", ("r", "m", "u", "t", "big")))
    return ffn


# -- 21: gather -----------------------------------------------------------------------------------


def lane_groups(lanes: int) -> list[range]:
    """The lanes split into runs whose sizes are powers of two, largest first (the binary digits of
    ``lanes``): one gather head per run, so that every weight it gives is exactly 1/2^k."""
    groups, start = [], 0
    for k in range(lanes.bit_length() - 1, -1, -1):
        if lanes & (1 << k):
            groups.append(range(start, start + (1 << k)))
            start += 1 << k
    return groups


def _spread(R: _Rows, ffn: FeedForwardBuilder, lanes: int) -> None:
    """outv[r] = out in lane r, 0 in every other column (an exact gate on the static not_entry[r]):
    each lane's result in a row of its own, for the gather."""
    for r in range(lanes):
        gate(ffn, {R["out"][0]: 1.0}, [R["not_entry"][r]], {R["outv"][r]: 1.0})


def _gather_heads(R: _Rows, lanes: int) -> list[HeadBuilder]:
    """The destination column gathers every lane's result: wval[r] <- out of lane r; the lanes get
    lane 0's result sign (t and big) in sign_dst_t, sign_dst_big, for the branch when flag = dst.

    Gather head g (one per run of 2^k lanes, :func:`lane_groups`): query T (1 - 2 not_wen), key
    [the column is a lane of the run] (from the static not_entry rows: 2^k - sum not_entry[r]).
    The destination (not_wen = 0 exactly) scores T on the run's lanes and 0 on every other column:
    weight exactly 2^-k on each of the run's lanes, exactly 0 elsewhere (gap T = 1024). Its value is
    2^k outv[r] (exact), nonzero only in lane r: so wval[r] = 2^-k 2^k out of lane r, bit for bit
    (one nonzero term). Every other column (not_wen about 1) scores about -T on the run's lanes and
    0 on the other columns, whose outv rows of the run are exactly 0: it receives exact zeros and
    does not change.

    Sign head: query [-P ; -2P not_lane], key [not_entry[0] ; lane]. A lane scores 0 on lane 0 and
    -P on every other column: it copies lane 0's sign rows. Any other column scores -P on the
    non-lanes, -2P or -3P on the lanes: it attends the non-lanes, whose sign rows are exactly 0.
    """
    T = PENALTY
    heads = []
    for g, run in enumerate(lane_groups(lanes)):
        head = HeadBuilder(f"gather {run.start}-{run.stop - 1}", R.rows, dk=1, dv=len(run))
        head.query_terms(0, {R.one: T, R["not_wen"][0]: -2.0 * T})
        head.key_terms(0, {R.one: float(len(run))} | {R["not_entry"][r]: -1.0 for r in run})
        for slot, r in enumerate(run):
            head.carries(slot, {R["outv"][r]: float(len(run))}, {R["wval"][r]: 1.0})
        heads.append(head)
    sign = HeadBuilder("gather sign", R.rows, dk=2, dv=2)
    sign.query_terms(0, {R.one: -PENALTY}).key_terms(0, {R["not_entry"][0]: 1.0})
    sign.query_terms(1, {R.not_lane: -2.0 * PENALTY}).key_terms(1, {R.lane: 1.0})
    sign.carries(0, {R["sign_res_t"][0]: 1.0}, {R["sign_dst_t"][0]: 1.0})
    sign.carries(1, {R["sign_res_big"][0]: 1.0}, {R["sign_dst_big"][0]: 1.0})
    heads.append(sign)
    return heads


# -- 22: commit and branch -------------------------------------------------------------------------


def _commit(R: _Rows, lanes: int, P: ProductBlock) -> FeedForwardBuilder:
    """mem <- wval in the destination column (cleared in layer 3, so 0 + wval is exact); beside it
    the branch: pc <- next_pc if the flag value is > 0, else p (bit by bit, robust thresholds on
    integers), with the exact sign's part C folded into the thresholds (fleqc.blocks.exact): of
    mem[flag] as read, or of the new entry 0 when flag = dst. Only one of the two signs is open
    (the other's part A is closed by c_flag_is_dst or c_not_flag_is_dst), and its t + big is 0
    iff the value is <= 0 and at least 1 otherwise (big <= 2^1015), so
    S = p - next_pc - 2 (t + big) is an integer that is at most -1 whenever the value is > 0: the
    thresholds [S >= 1] and [-S' >= 1] pick p exactly when the value is <= 0. Then every temp <- 0."""
    ffn = FeedForwardBuilder(R.rows)
    with ffn.part("write"):
        for r in range(lanes):
            gate(ffn, {R["wval"][r]: 1.0}, [R["not_wen"][0]], {R["mem"][r]: 1.0})
    with ffn.part("branch"):
        positive = {row: -2.0 for which in ("flag", "dst") for row in _sign_rows(R, which, ("t", "big"))}
        for k in range(R["pc"].size):
            pc, nxt, p = R["pc"][k], R["next_pc"][k], R["c_p"][k]
            ffn.identity(pc, {pc: -1.0})
            ffn.identity(nxt, {pc: 1.0})
            blocks.at_least(ffn, {p: 1.0, nxt: -1.0, **positive}, 0.0, 1.0, {pc: 2.0})
            blocks.at_least(ffn, {p: -1.0, nxt: 1.0, **positive}, 0.0, 1.0, {pc: -2.0})
    with ffn.part("clear"):
        cleared = set(P.temp_rows())  # in the select layer
        clear_rows(ffn, [r for b in R.rows.with_role("temp") for r in b if r not in cleared],
                   nonnegative=[r for name in NONNEGATIVE_TEMPS for r in R[name]])
    return ffn


_BESIDE = [  # parts of other blocks in the product's layers (7, 8, ...); the two large tables (recip,
    # sqrt, log: layer 9; sigmoid's: layer 8) in different layers, since the widest layer sets
    # the width of every block in TransformerLens (fleqc.interop.lens pads each MLP to it)
    [("sigmoid: quantise", _sigmoid_quantise)],
    [("tables: quantise", _tables_quantise), ("sigmoid: table", _sigmoid_table)],
    [("tables: interpolate", _tables_interpolate), ("sigmoid: z", _sigmoid_z)],
    [("exp: quantise", _exp_quantise)],
    [("exp: level 1", _exp_level(0))],
    [("exp: level 2", _exp_level(1))],
    [("exp: level 3", _exp_level(2))],
    [("exp: reduced", _exp_reduced)],
    [("exp: reduced, rounded", _exp_reduced_quantise)],
    [("exp: table", _exp_table)],
    [("exp: 2^(8 B + C)", _exp_scale)],
]


def product_layers(cell: int) -> int:
    """The feed-forward layers between normalise and select: the product's own (fleqc.machines.fleq.product),
    or exp's chain beside it where that is deeper (cells 1-2, whose pairwise sum needs no tree layer)."""
    return max(own_layers(cell), len(_BESIDE))
