"""Layout of the classic machine's punch card: named row blocks and column regions.

Columns (left to right)::

    | scratchpad (1) | memory (m words) | input tape | output tape |

Every memory word and tape cell is a column holding an N-bit value in ``mem``; a column's ``pos``
is its address within its region (memory address, tape position) and one region row says which
region it is in, so one lookup head can aim at one region. The scratchpad holds the registers:
pc (an address), the tape pointers, and the halted / fault flags. Codes are {-1, +1} bits, least
significant first (``fleqc.card.codes``); flags are 0/1; a row that does not apply to a column
holds 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from fleqc.card.rows import RowSpace
from fleqc.machines.classic.config import ClassicConfig


def classic_rows(config: ClassicConfig) -> RowSpace:
    """The residual stream of the classic machine (k address bits, N value bits)."""
    N, k, ki, ko = config.bits, config.address_bits, config.input_bits, config.output_bits
    w = max(k, ki, ko)
    flag = 1
    return RowSpace(
        [
            # static: written by the card, never changed by the machine
            ("one", 1, "static", "1 in every column: the bias row of every layer"),
            ("scratch", 1, "static", "1 in the scratchpad column"),
            ("is_mem", 1, "static", "1 in memory columns"),
            ("is_in", 1, "static", "1 in input-tape columns"),
            ("is_out", 1, "static", "1 in output-tape columns"),
            ("pos", w, "static", "the column's address in its region (0 in the scratchpad)"),
            # state: what the machine changes
            ("pc", k, "state", "scratchpad: address of the instruction's first word"),
            ("ip", ki, "state", "scratchpad: input-tape position of the next byte to read"),
            ("op", ko, "state", "scratchpad: output-tape position the next byte goes to"),
            ("halted", flag, "state", "scratchpad: 1 once a jump went to a negative address"),
            ("fault", flag, "state", "scratchpad: 1 once the program used an address outside memory"),
            ("mem", N, "state", "memory and tape columns: the N-bit value"),
            # temp: 0 between steps (layer by layer)
            ("pc1", k, "temp", "prepare: pc + 1"),
            ("pc2", k, "temp", "prepare: pc + 2"),
            ("pc3", k, "temp", "prepare: pc + 3"),
            ("ip1", ki, "temp", "prepare: ip + 1"),
            ("op1", ko, "temp", "prepare: op + 1 (the output tape is a ring)"),
            ("cur_a", N, "temp", "fetch: A = mem[pc]"),
            ("cur_b", N, "temp", "fetch: B = mem[pc + 1]"),
            ("cur_c", N, "temp", "fetch: C = mem[pc + 2]"),
            ("val_a", N, "temp", "read: mem[A]"),
            ("val_b", N, "temp", "read: mem[B]"),
            ("inb", N, "temp", "read: the input byte at ip (-1 past the end)"),
            ("res", N, "temp", "alu: mem[B] - mem[A], wrapped to N bits"),
            ("flag", flag, "temp", "alu: 1 if the result <= 0"),
            ("a_io", flag, "temp", "alu: 1 if A = -1 (read a byte)"),
            ("b_io", flag, "temp", "alu: 1 if B = -1 (write a byte)"),
            ("a_oor", flag, "temp", "alu: 1 if A is no memory address (its unsigned value >= m)"),
            ("b_oor", flag, "temp", "alu: 1 if B is no memory address"),
            ("c_bad", flag, "temp", "alu: 1 if C >= 0 but C + 2 is no memory address"),
            ("pc3_halt", flag, "temp", "alu: 1 if pc + 3 is negative as an N-bit value"),
            ("pc3_bad", flag, "temp", "alu: 1 if pc + 3 >= 0 but pc + 5 is no memory address"),
            ("at_end", flag, "temp", "alu: 1 if ip is on the tape's last cell (end of input)"),
            ("wsel", N, "temp", "decide: the value to write: the input byte or the result"),
            ("wmem", flag, "temp", "decide: 1 if this step writes memory word B"),
            ("wout", flag, "temp", "decide: 1 if this step writes mem[A] to the output tape"),
            ("go_c", flag, "temp", "decide: 1 if pc <- C"),
            ("go_3", flag, "temp", "decide: 1 if pc <- pc + 3"),
            ("fault_now", flag, "temp", "decide: 1 if this step uses an address outside memory"),
            ("adv_ip", flag, "temp", "decide: 1 if ip advances"),
            ("wval", N, "temp", "write: the value arriving in the written column"),
            ("wen", flag, "temp", "write: 1 in the written column"),
        ]
    )


@dataclass(frozen=True)
class ClassicRegions:
    """Half-open column ranges of the regions of a classic card."""

    memory: tuple[int, int]
    input: tuple[int, int]
    output: tuple[int, int]
    columns: int

    @classmethod
    def of(cls, config: ClassicConfig) -> "ClassicRegions":
        m_end = 1 + config.memory
        i_end = m_end + config.input_tape
        return cls((1, m_end), (m_end, i_end), (i_end, i_end + config.output_tape), config.columns)

    def memory_column(self, address: int) -> int:
        return self.memory[0] + address
