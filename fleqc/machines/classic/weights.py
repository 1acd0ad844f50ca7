"""The classic machine: one pass of seven layers executes one instruction of von Neumann SUBLEQ.

    layer 0  ReLU FFN   prepare  pc1, pc2, pc3 <- pc + 1, 2, 3; ip1 <- ip + 1; op1 <- op + 1
    layer 1  attention  fetch    A, B, C <- mem[pc], mem[pc + 1], mem[pc + 2]       (3 heads)
    layer 2  attention  read     mem[A], mem[B], the input byte at ip                (3 heads)
    layer 3  ReLU FFN   alu      mem[B] - mem[A] and its sign; is A or B -1 (I/O) or outside
                                 memory; would pc + 3 or C halt or leave memory; end of input
    layer 4  ReLU FFN   decide   what to write where, where to jump, whether the step faults
    layer 5  attention  write    memory word B <- the value; output cell op <- mem[A]  (2 heads)
    layer 6  ReLU FFN   commit   mem <- written value; pc, ip, op, halted, fault; temps <- 0

Addresses are values: the low k bits of A, B, C (m = 2^k words) are the code a lookup head aims at,
so the machine can index arrays and modify its own code. The instruction set (fleqc.machines.classic.reference):
A = -1 reads a byte into mem[B] (-1 at the end of input); B = -1 writes mem[A] & 255; otherwise
mem[B] -= mem[A] (wrapping to N bits) and the machine jumps to C when the result is <= 0. pc is an
N-bit word: a pc that is negative halts the machine. An address outside memory sets ``fault``; a
halted or faulted machine is a fixed point.

Exactness. Every feed-forward unit is a robust threshold of an integer-valued sum (blocks.py), so
every value the machine writes is an exact integer code. Every lookup head's matching key beats
every other key by at least T = 1024 (the score margins are in each head's docstring), so every
other key's softmax weight is exp(-1024) = 0.0 in float64: softmax equals hardmax, bit for bit.
"""

from __future__ import annotations

from fleqc.blocks import common as blocks
from fleqc.blocks.common import Gate, at_least, unsigned_terms
from fleqc.blocks.builders import FeedForwardBuilder, HeadBuilder, attention_layer
from fleqc.card.rows import RowBlock, RowSpace
from fleqc.machines.classic.config import ClassicConfig
from fleqc.machines.classic.layout import classic_rows
from fleqc.transformer.layers import LoopedTransformer

TEMPERATURE = 1024.0  # every head's margin is >= T, and exp(-1024) underflows to 0.0
LAYER_KINDS = "FAAFFAF"


def build_classic_machine(config: ClassicConfig) -> LoopedTransformer:
    rows = classic_rows(config)
    T = TEMPERATURE
    N, k, m = config.bits, config.address_bits, config.memory
    gate = Gate(rows["scratch"][0], 8.0 * 2.0**N)

    prepare = FeedForwardBuilder(rows)
    with prepare.part("increments"):
        for src, dst, c in (("pc", "pc1", 1), ("pc", "pc2", 2), ("pc", "pc3", 3), ("ip", "ip1", 1), ("op", "op1", 1)):
            add_constant(prepare, rows[src], rows[dst], c, gate)
        blocks.offset_minus_one(prepare, rows, [r for b in ("pc1", "pc2", "pc3", "ip1", "op1") for r in rows[b]])

    fetch = attention_layer([lookup_head(rows, f"fetch {dst}", rows[ptr], k, "is_mem", rows["mem"], rows[dst], T)
                             for ptr, dst in (("pc", "cur_a"), ("pc1", "cur_b"), ("pc2", "cur_c"))])
    read = attention_layer([
        lookup_head(rows, "read A", rows["cur_a"], k, "is_mem", rows["mem"], rows["val_a"], T),
        lookup_head(rows, "read B", rows["cur_b"], k, "is_mem", rows["mem"], rows["val_b"], T),
        lookup_head(rows, "read input", rows["ip"], config.input_bits, "is_in", rows["mem"], rows["inb"], T),
    ])

    alu = FeedForwardBuilder(rows)
    with alu.part("subtract"):
        blocks.subtract(alu, rows, gate)
        blocks.offset_minus_one(alu, rows, list(rows["res"]))
    with alu.part("flag"):
        blocks.flag_le_zero(alu, rows, gate)
    with alu.part("io"):
        for word, io, oor in (("cur_a", "a_io", "a_oor"), ("cur_b", "b_io", "b_oor")):
            count_ones_at_least(alu, rows[word], range(N), N, rows[io][0], gate)
            if k < N:  # with m = 2^N every word is an address
                count_ones_at_least(alu, rows[word], range(k, N), 1, rows[oor][0], gate)
        count_ones_at_least(alu, rows["ip"], range(config.input_bits), config.input_bits, rows["at_end"][0], gate)
    with alu.part("next pc"):
        # C as a jump target: bad when 0 <= C and C + 2 >= m (the sign bit pushes a negative C below)
        terms, constant = unsigned_terms(rows["cur_c"], N - 2)
        terms[rows["cur_c"][N - 1]] = -(2.0 ** (N - 1))
        at_least(alu, terms, constant - 2.0 ** (N - 1), m - 2, {rows["c_bad"][0]: 1.0}, gate)
        # pc + 3 (pc < m <= 2^N): negative as an N-bit word when >= 2^(N-1); bad when >= m - 2 and not
        terms, constant = unsigned_terms(rows["pc"], k - 1)
        half = 2.0 ** (N - 1)
        at_least(alu, terms, constant + 3, half, {rows["pc3_halt"][0]: 1.0}, gate)
        if m - 2 < half:  # otherwise pc + 3 >= m - 2 only where it is negative, which halts
            at_least(alu, terms, constant + 3, m - 2, {rows["pc3_bad"][0]: 1.0}, gate)
            at_least(alu, terms, constant + 3, half, {rows["pc3_bad"][0]: -1.0}, gate)

    decide = FeedForwardBuilder(rows)
    f = {name: rows[name][0] for name in ("flag", "a_io", "b_io", "a_oor", "b_oor", "at_end", "halted", "fault")}

    def when(coefs: dict[str, float], threshold: float, out: str) -> None:
        """out += [sum coefs * flags >= threshold] (halted and fault weigh -1 each unless given)."""
        terms = {f["halted"]: -1.0, f["fault"]: -1.0}
        for name, c in coefs.items():
            terms[f[name]] = c
        at_least(decide, terms, 0.0, threshold, {rows[out][0]: 1.0}, gate)

    with decide.part("value"):  # wsel = a_io ? inb : res
        for j in range(N):
            decide.identity(rows["res"][j], {rows["wsel"][j]: 1.0})
            select(decide, rows["wsel"][j], f["a_io"], rows["inb"][j], rows["res"][j])
    with decide.part("write"):
        # normal step with both addresses in memory, or a read with B in memory
        at_least(decide, {f[x]: -1.0 for x in ("halted", "fault", "a_io", "b_io", "a_oor", "b_oor")}, 1.0, 1.0,
                 {rows["wmem"][0]: 1.0}, gate)
        when({"a_io": 1.0, "b_oor": -1.0}, 1.0, "wmem")
        when({"b_io": 1.0, "a_io": -1.0, "a_oor": -1.0}, 1.0, "wout")
    with decide.part("jump"):
        when({"flag": 1.0, "a_io": -1.0, "b_io": -1.0, "a_oor": -1.0, "b_oor": -1.0}, 1.0, "go_c")
        when({"a_io": 1.0, "b_oor": -1.0}, 1.0, "go_3")
        when({"b_io": 1.0, "a_io": -1.0, "a_oor": -1.0}, 1.0, "go_3")
        at_least(decide, {f[x]: -1.0 for x in ("halted", "fault", "flag", "a_io", "b_io", "a_oor", "b_oor")}, 1.0, 1.0,
                 {rows["go_3"][0]: 1.0}, gate)
    with decide.part("fault"):
        when({"a_io": 1.0, "b_oor": 1.0}, 2.0, "fault_now")  # read into a word outside memory
        when({"b_io": 1.0, "a_io": -1.0, "a_oor": 1.0}, 2.0, "fault_now")  # write a word from outside memory
        terms = {f["a_oor"]: 1.0, f["b_oor"]: 1.0, f["a_io"]: -2.0, f["b_io"]: -2.0, f["halted"]: -2.0, f["fault"]: -2.0}
        at_least(decide, terms, 0.0, 1.0, {rows["fault_now"][0]: 1.0}, gate)  # subtract outside memory
    with decide.part("input"):
        when({"a_io": 1.0, "b_oor": -1.0, "at_end": -1.0}, 1.0, "adv_ip")

    write = attention_layer([
        write_head(rows, "write memory", rows["cur_b"], k, "wmem", "is_mem", rows["wsel"], T),
        write_head(rows, "write output", rows["op"], config.output_bits, "wout", "is_out", rows["val_a"], T),
    ])

    commit = FeedForwardBuilder(rows)
    with commit.part("commit"):
        blocks.commit_write(commit, rows)
    with commit.part("pc"):
        for j in range(k):
            select(commit, rows["pc"][j], rows["go_c"][0], rows["cur_c"][j], rows["pc"][j])
            select(commit, rows["pc"][j], rows["go_3"][0], rows["pc3"][j], rows["pc"][j])
    with commit.part("tapes"):
        for j in range(config.input_bits):
            select(commit, rows["ip"][j], rows["adv_ip"][0], rows["ip1"][j], rows["ip"][j])
        for j in range(config.output_bits):
            select(commit, rows["op"][j], rows["wout"][0], rows["op1"][j], rows["op"][j])
    with commit.part("halt and fault"):
        sign = rows["cur_c"][N - 1]
        at_least(commit, {rows["go_c"][0]: 1.0, sign: 0.5}, 0.5, 2.0, {rows["halted"][0]: 1.0})
        at_least(commit, {rows["go_3"][0]: 1.0, rows["pc3_halt"][0]: 1.0}, 0.0, 2.0, {rows["halted"][0]: 1.0})
        at_least(commit, {rows["go_c"][0]: 1.0, rows["c_bad"][0]: 1.0}, 0.0, 2.0, {rows["fault"][0]: 1.0})
        at_least(commit, {rows["go_3"][0]: 1.0, rows["pc3_bad"][0]: 1.0}, 0.0, 2.0, {rows["fault"][0]: 1.0})
        commit.identity(rows["fault_now"][0], {rows["fault"][0]: 1.0})
    with commit.part("clear"):
        # wval and wen arrive in the written columns; every other temp is nonzero in the scratchpad only
        arriving = ("wval", "wen")
        clear_scratchpad(commit, rows, [b for b in rows.with_role("temp") if b.name not in arriving])
        blocks.clear(commit, [rows[name] for name in arriving])

    layers = (prepare.build("prepare"), fetch, read, alu.build("alu"), decide.build("decide"), write,
              commit.build("commit"))
    return LoopedTransformer(
        layers=layers,
        row_labels=tuple(rows.labels()),
        ternary_rows=tuple(range(rows.d)),
        metadata={
            "machine": config.to_dict(),
            "temperature": T,
            "gate": gate.magnitude,
            "fault_rows": list(rows["fault"]),
            "hidden_units": {name: b.unit_blocks() for name, b in
                             (("prepare", prepare), ("alu", alu), ("decide", decide), ("commit", commit))},
        },
    )


# ---------------------------------------------------------------------------------------------
# blocks of the classic machine (the generic ones are in fleqc.blocks.common)


def add_constant(ffn: FeedForwardBuilder, src: RowBlock, dst: RowBlock, c: int, gate: Gate) -> None:
    """dst = 2 [bits of (U(src) + c) mod 2^w] (the caller subtracts 1 to make codes).

    Bit j of U + c depends on the low j + 1 bits: with T_j = U(src[0..j]) + c in [c, 2^(j+1) - 1 + c],
    bit_j = floor(T_j / 2^j) mod 2 = sum over t >= 1 of (-1)^(t+1) [T_j >= t 2^j].
    """
    for j in range(dst.size):
        terms, constant = unsigned_terms(src, j)
        top = 2 ** (j + 1) - 1 + c
        t = 1
        while t * 2**j <= top:
            at_least(ffn, terms, constant + c, t * 2.0**j, {dst[j]: 2.0 if t % 2 else -2.0}, gate)
            t += 1


def clear_scratchpad(ffn: FeedForwardBuilder, rows: RowSpace, blocks: list[RowBlock]) -> None:
    """Every row of ``blocks`` <- 0, for rows that are -1, 0 or +1 in the scratchpad column and 0 in
    every other (one ReLU a row and one for them all; ``fleqc.blocks.common.clear`` takes two a row).

    x - ReLU(x + 2 scratch - 1) + ReLU(scratch) is x - (x + 1) + 1 = 0 in the scratchpad (scratch = 1)
    and 0 - 0 + 0 elsewhere (x = scratch = 0), exactly. A row that changes from one step to the next
    changes one unit here, not two.
    """
    scratch = rows["scratch"][0]
    targets = [r for block in blocks for r in block]
    for r in targets:
        ffn.unit({r: 1.0, scratch: 2.0}, -1.0, {r: -1.0})
    ffn.unit({scratch: 1.0}, 0.0, {r: 1.0 for r in targets})


def count_ones_at_least(ffn: FeedForwardBuilder, code: RowBlock, bits, count: int, out: int, gate: Gate) -> None:
    """out += [at least ``count`` of the given bits of ``code`` are ones]."""
    bits = list(bits)
    at_least(ffn, {code[j]: 0.5 for j in bits}, 0.5 * len(bits), float(count), {out: 1.0}, gate)


def select(ffn: FeedForwardBuilder, out: int, flag: int, new: int, old: int) -> None:
    """out += flag (new - old) for bits new, old in {-1, +1} and flag in {0, 1} (4 ReLUs).

    With x = new - old in {-2, 0, 2}: flag x = 2 [x + 2 flag - 2 >= 1] - 2 [-x + 2 flag - 2 >= 1];
    where the rows are 0 (outside the scratchpad) both thresholds are 0.
    """
    at_least(ffn, {new: 1.0, old: -1.0, flag: 2.0}, -2.0, 1.0, {out: 2.0})
    at_least(ffn, {new: -1.0, old: 1.0, flag: 2.0}, -2.0, 1.0, {out: -2.0})


def lookup_head(rows: RowSpace, name: str, pointer: RowBlock, width: int, region: str, source: RowBlock,
                dest: RowBlock, T: float) -> HeadBuilder:
    """dest <- ``source`` of the ``region`` column whose ``pos`` equals the low ``width`` bits of ``pointer``.

    Scores (scratchpad query): the matching column T (2w + 1); another column of the region at most
    T (2w - 1); a column of another region at most T w; the scratchpad 0. Every other column queries
    the scratchpad (score T (w + 1) against 0), whose ``source`` rows are 0: it receives nothing.
    """
    w = width
    head = HeadBuilder(name, rows, dk=w + 2, dv=source.size)
    for j in range(w):
        head.query_terms(j, {pointer[j]: T})
        head.key_terms(j, {rows["pos"][j]: 1.0})
    head.query_terms(w, {rows["scratch"][0]: T * (w + 1)})
    head.key_terms(w, {rows[region][0]: 1.0})
    head.query_terms(w + 1, {rows["one"][0]: T * (w + 1), rows["scratch"][0]: -T * (w + 1)})
    head.key_terms(w + 1, {rows["scratch"][0]: 1.0})
    head.moves(source, dest)
    return head


def write_head(rows: RowSpace, name: str, target: RowBlock, width: int, enable: str, region: str,
               source: RowBlock, T: float) -> HeadBuilder:
    """The ``region`` column whose ``pos`` equals the low ``width`` bits of ``target`` receives the
    scratchpad's ``source`` in ``wval`` and 1 in ``wen``, when the scratchpad's ``enable`` is 1.

    query_j = T [pos_j ; 2 region_j ; w + 1], key of the scratchpad = [target ; enable ; 0], key of
    any other column = [0 ; 0 ; 1]. The target scores T (w + 2) on the scratchpad against
    T (w + 1) on the others; every other column at most T w on the scratchpad (another position, or
    another region, or enable 0), so it attends to the other columns, whose ``source`` rows and
    ``scratch`` row are 0.
    """
    w = width
    head = HeadBuilder(name, rows, dk=w + 2, dv=source.size + 1)
    for j in range(w):
        head.query_terms(j, {rows["pos"][j]: T})
        head.key_terms(j, {target[j]: 1.0})
    head.query_terms(w, {rows[region][0]: 2.0 * T})
    head.key_terms(w, {rows[enable][0]: 1.0})
    head.query_terms(w + 1, {rows["one"][0]: T * (w + 1)})
    head.key_terms(w + 1, {rows["one"][0]: 1.0, rows["scratch"][0]: -1.0})
    head.moves(source, rows["wval"], slot=0)
    head.moves(rows["scratch"], rows["wen"], slot=source.size)
    return head
