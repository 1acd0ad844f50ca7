"""Hand-built linked programs and a hypothesis strategy for random SUBLEQ programs.

Random programs exercise what samples may not: every operand pattern (a = b, self loops), N-bit
wraparound, branches taken and not taken, and machines of many sizes.
"""

from __future__ import annotations

from hypothesis import strategies as st

from fleqc.machines.subleq.reference import wrap
from fleqc.program import Cell, LinkedProgram, SubleqInstruction, Symbol


def subleq_program(bits: int, values: list[int], triples: list[tuple[int, int, int]]) -> LinkedProgram:
    """A linked SUBLEQ program from raw cells and (a, b, target) triples; cell i is labelled m{i}."""
    cells = tuple(Cell(i, wrap(v, bits)) for i, v in enumerate(values))
    instructions = tuple(SubleqInstruction(j, a, b, c) for j, (a, b, c) in enumerate(triples))
    symbols = {f"m{i}": Symbol(f"m{i}", "data", i) for i in range(len(values))}
    return LinkedProgram("subleq", bits, cells, instructions, symbols, "<random>")


@st.composite
def random_subleq_programs(draw, columns=st.sampled_from([16, 32, 64, 128, 256, 512]), bits=st.integers(4, 24)):
    """(program, columns): random memory and instructions that fit a machine of ``columns`` columns."""
    n = draw(columns)
    N = draw(bits)
    m = draw(st.integers(1, min(24, n - 4)))
    k = draw(st.integers(1, min(24, n - 3 - m)))
    half = 1 << (N - 1)
    # values near the extremes make wraparound common
    value = st.one_of(st.integers(-half, half - 1), st.sampled_from([-half, half - 1, 0, 1, -1]))
    values = draw(st.lists(value, min_size=m, max_size=m))
    triple = st.tuples(st.integers(0, m - 1), st.integers(0, m - 1), st.integers(0, k))
    triples = draw(st.lists(triple, min_size=k, max_size=k))
    # like the linker: a zero cell and a final halt, so falling off the end halts
    return subleq_program(N, values + [0], triples + [(m, m, k)]), n
