"""The SUBLEQ machine: one pass of five layers executes one instruction.

    layer 1  attention  fetch        cur_a, cur_b, cur_c <- instruction at pc
    layer 2  attention  read a, b    val_a <- mem[a], val_b <- mem[b]           (2 heads)
    layer 3  ReLU FFN   ALU          res = val_b - val_a, flag = [res <= 0], next_pc = pc + 1
    layer 4  attention  write        column b receives res and a write enable
    layer 5  ReLU FFN   commit       mem[b] <- res, pc <- flag ? cur_c : next_pc, temps <- 0

That is 3 attention layers and 2 feed-forward layers (3 attention+FFN pairs, the first without a
feed-forward part) and 4 heads, against the paper's 9 pairs and the released code's 10. Width
d = 4 + 9 log2(n) + 5 N. The weights depend only on the configuration (n, N).
"""

from __future__ import annotations

from fleqc.blocks import common as blocks
from fleqc.blocks.builders import FeedForwardBuilder, attention_layer
from fleqc.machines.subleq.config import SubleqConfig
from fleqc.machines.subleq.rows import subleq_rows
from fleqc.transformer.layers import LoopedTransformer

# Attention temperature, folded into the queries. A power of two, so every score T * (integer) is
# exact (|score| <= T (w + 1) < 2^15 for n <= 2^16) and hardmax ties are exact. Matching keys beat
# every other key by at least T (write head) or 2T (reads): 1024 or more, so every other key's
# softmax weight is exp(-1024) = 0.0 exactly in float64 (it underflows below e^-745). Softmax mode
# is therefore hardmax mode bit for bit, at every layer and not only between passes, and an engine
# may skip those keys exactly (fleqc/transformer/incremental.py).
TEMPERATURE = 1024.0


def build_subleq_machine(config: SubleqConfig) -> LoopedTransformer:
    rows = subleq_rows(config)
    T = TEMPERATURE
    gate = blocks.Gate(rows["scratch"][0], 8.0 * 2.0 ** max(config.bits, config.code_bits))

    fetch = attention_layer([blocks.fetch_head(rows, T)])
    read = attention_layer([blocks.operand_read_head(rows, "cur_a", "val_a", T), blocks.operand_read_head(rows, "cur_b", "val_b", T)])

    alu = FeedForwardBuilder(rows)
    with alu.part("subtract"):
        blocks.subtract(alu, rows, gate)
    with alu.part("flag"):
        blocks.flag_le_zero(alu, rows, gate)
    with alu.part("increment"):
        blocks.increment_code(alu, rows, gate)
    with alu.part("bits"):
        blocks.offset_minus_one(alu, rows, list(rows["res"]) + list(rows["next_pc"]))

    write = attention_layer([blocks.write_head(rows, T)])

    commit = FeedForwardBuilder(rows)
    with commit.part("branch"):
        blocks.branch(commit, rows)
    with commit.part("commit"):
        blocks.commit_write(commit, rows)
    with commit.part("clear"):
        blocks.clear(commit, rows.with_role("temp"))

    return LoopedTransformer(
        layers=(fetch, read, alu.build("alu"), write, commit.build("commit")),
        row_labels=tuple(rows.labels()),
        ternary_rows=tuple(range(rows.d)),
        metadata={
            "machine": config.to_dict(),
            "temperature": T,
            "gate": gate.magnitude,
            "hidden_units": {"alu": alu.unit_blocks(), "commit": commit.unit_blocks()},
        },
    )
