"""The classic machine on the transformer (issue 12): the corpus's programs print their expected
output in lockstep with the reference interpreter after every step; the engine's X equals the dense
definition's bit for bit after every pass; random programs (I/O, faults, halts, self-modification)
in lockstep; the edge cases of the semantics one by one.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleqc.machines.classic.source import load_image
from fleqc.machines.classic import reference as reference
from fleqc.machines.classic.reference import memory_size
from fleqc.machines.classic.card import Reader, encode
from fleqc.machines.classic.config import ClassicConfig, config_for
from fleqc.machines.classic.run import Lockstep, run_card
from fleqc.machines.classic.weights import build_classic_machine
from fleqc.transformer.executor import stepper
from tests.support import subleq_corpus
from tests.support.subleq_corpus import corpus

machine = functools.lru_cache(maxsize=16)(build_classic_machine)


def run_in_lockstep(words, config: ClassicConfig, given_input: bytes = b"", engine: str = "incremental",
                    max_steps: int | None = None):
    """Run on the transformer with the reference checking every step; returns the outcome."""
    check = Lockstep(config, words, given_input)
    outcome = run_card(machine(config), encode(words, given_input, config), config, engine=engine,
                       max_steps=max_steps, check=check)
    check.finish(outcome.X)
    return outcome


def corpus_case(name: str):
    entry = subleq_corpus.expected()[name]
    image = load_image(corpus() / entry["file"], bits=32)
    m = memory_size(max(len(image.words), entry["highest_address_touched"] + 1))
    given_input = entry["input"].encode()
    expected = bytes(entry["expected_output_bytes"]) if entry.get("expected_output_bytes") is not None \
        else entry["expected_output"].encode()
    return image.words, config_for(len(image.words), len(given_input), 32, memory=max(m, 8)), given_input, \
        expected, entry["steps"]


QUICK = ["01_rosetta_hello", "02_esolangs_hi", "02_esolangs_hi_sqasm", "04_mazonka_hello", "05_subleq24_hello_nonl",
         "06_woodman_helloworld", "07_mazonka_paper_hello", "08_mazonka_dfact", "09_hsq_empty_main", "11_davidar_demo"]
HIGHER_SUBLEQ = ["12_hsq_fact12", "14_hsq_fib", "15_hsq_printf_fib_fact", "16_hsq_putint_divmod"]


@pytest.mark.parametrize("name", subleq_corpus.params(QUICK))
def test_corpus_program_on_the_transformer(name):
    words, config, given_input, expected, steps = corpus_case(name)
    outcome = run_in_lockstep(words, config, given_input)
    assert (outcome.output, outcome.steps, outcome.status) == (expected, steps, "halted")


@pytest.mark.slow
@pytest.mark.parametrize("name", subleq_corpus.params(HIGHER_SUBLEQ))
def test_c_program_compiled_by_higher_subleq(name):
    """C-like programs compiled to SUBLEQ by Mazonka's Higher Subleq (3,555-9,713 words, 32-bit
    values, a stack past the image; 39,806-436,542 steps)."""
    words, config, given_input, expected, steps = corpus_case(name)
    outcome = run_in_lockstep(words, config, given_input)
    assert (outcome.output, outcome.steps, outcome.status) == (expected, steps, "halted")


def test_sqasm_source_runs_as_its_image():
    """The assembler's output runs: Mazonka's hello world from its .sq source."""
    folder = corpus()
    image = load_image(folder / "04_mazonka_hello.sq", bits=32)
    outcome = run_in_lockstep(image.words, config_for(len(image.words), 0, 32))
    assert outcome.output == b"Hello, World!\n"


def test_esolangs_loop_trace():
    """03 never halts: memory after steps 1..5 is the published trace."""
    entry = subleq_corpus.expected()["03_esolangs_loop"]
    words = load_image(corpus() / entry["file"], bits=32).words
    config = config_for(len(words), 0, 32, memory=16)
    loop = stepper(machine(config), encode(words, b"", config), engine="incremental")
    reader = Reader(config)
    for point in entry["trace"]:
        loop.step()
        assert reader.register(loop.X, "pc") == point["pc"]
        assert reader.memory(loop.X)[: len(point["mem"])] == point["mem"]


@pytest.mark.parametrize("name", subleq_corpus.params(["01_rosetta_hello", "08_mazonka_dfact"]))
def test_engine_equals_the_dense_definition_bit_for_bit(name):
    """The incremental engine's X is the dense forward pass's X after every pass (softmax and hardmax)."""
    words, config, given_input, _, _ = corpus_case(name)
    model, X = machine(config), encode(words, given_input, config)
    for mode in ("softmax", "hardmax"):
        dense, engine = stepper(model, X, mode, "dense"), stepper(model, X, mode, "incremental")
        for _ in range(80):
            changed_dense, changed_engine = dense.step(), engine.step()
            assert np.array_equal(changed_dense, changed_engine)
            assert np.array_equal(dense.X, engine.X)
            if len(changed_dense) == 0:
                break


# Random programs ---------------------------------------------------------------------------------


@st.composite
def programs(draw):
    """Small memories full of small numbers: I/O (-1), addresses in and out of memory, negative and
    out-of-range jumps, self-modification; a short input; an output ring of two cells."""
    bits = draw(st.sampled_from([16, 32]))
    m = 8
    words = draw(st.lists(st.integers(-2, m + 2), min_size=3, max_size=m))
    given_input = bytes(draw(st.lists(st.integers(0, 255), max_size=3)))
    return words, ClassicConfig(bits=bits, memory=m, input_tape=4, output_tape=2), given_input


@settings(max_examples=150, deadline=None)
@given(programs())
def test_random_programs_in_lockstep(case):
    words, config, given_input = case
    outcome = run_in_lockstep(words, config, given_input, max_steps=40)
    assert outcome.status in ("halted", "fault", "stuck", "limit")


@settings(max_examples=25, deadline=None)
@given(programs())
def test_random_programs_dense_equals_engine(case):
    words, config, given_input = case
    model, X = machine(config), encode(words, given_input, config)
    dense, engine = stepper(model, X, "softmax", "dense"), stepper(model, X, "softmax", "incremental")
    for _ in range(25):
        assert np.array_equal(dense.step(), engine.step())
        assert np.array_equal(dense.X, engine.X)


# The semantics, case by case ---------------------------------------------------------------------


def small(bits: int = 32) -> ClassicConfig:
    return ClassicConfig(bits=bits, memory=16, input_tape=4, output_tape=2)


def test_output_ring_wraps_without_losing_bytes():
    """Five bytes through a ring of two cells: the host reads each one as it is written."""
    words = [20, -1, 3, 21, -1, 6, 22, -1, 9, 20, -1, 12, 23, 23, -1] + [0] * 5 + [72, 105, 33]
    outcome = run_in_lockstep(words, ClassicConfig(bits=32, memory=32, input_tape=4, output_tape=2))
    assert outcome.output == b"Hi!H" and outcome.status == "halted"


def test_reads_past_the_end_of_input_give_minus_one():
    words = [-1, 15, 3, -1, 15, 6, -1, 15, 9, 15, -1, 12, 14, 14, -1]  # read 3 times, write mem[15], halt
    outcome = run_in_lockstep(words, small(), b"A")
    assert outcome.output == bytes([0xFF]) and outcome.status == "halted"


@pytest.mark.parametrize("words", [[20, 0, 3], [0, 20, 3], [-1, 20, 3], [20, -1, 3], [0, 0, 14]])
def test_addresses_outside_memory_fault(words):
    """An operand outside memory faults at its step; a jump to where an instruction does not fit
    faults too (one step earlier than the reference, which faults on fetching it)."""
    outcome = run_in_lockstep(words, small())
    assert outcome.status == "fault"


def test_a_step_that_changes_nothing_is_a_fixed_point():
    """A jump to itself that subtracts 0: the transformer's X stops changing, and the reference
    stops at the same step without counting it."""
    words = [6, 7, 3, 8, 8, 3, 1, -3, 0]  # mem[7] -= 1 (to -4: jump 3); then 3: mem[8] -= mem[8], jump 3
    outcome = run_in_lockstep(words, small(), max_steps=10)
    assert (outcome.status, outcome.steps) == ("stuck", 1)
    state = reference.initial_state(words, 16, 32)
    reference.run(state, 10)
    assert (state.halted, state.fixed, state.steps, state.pc) == (True, True, 1, 3)


def test_16_bit_pc_wraps_negative_and_halts():
    """howerj's VM halts when pc reaches 32,768: pc + 3 past the signed top of a 16-bit word."""
    config = ClassicConfig(bits=16, memory=1 << 15, input_tape=2, output_tape=2)
    words = [0] * (1 << 15)
    words[:3] = [100, 100, 32765]  # mem[100] = 0 - 0 = 0 <= 0: jump to 32765
    words[32765:32768] = [100, 32767, 5]  # mem[32767] = 5 - 0 > 0: pc + 3 = 32768 wraps to -32768
    outcome = run_in_lockstep(words, config, max_steps=10)
    assert (outcome.status, outcome.steps) == ("halted", 2)


# eForth: a Forth system written by someone else, unmodified (slow: 92 thousand to 20 million steps)


def eforth_case(test: str):
    folder = corpus()
    words = load_image(folder / "13_howerj_eforth.dec", bits=16).words
    tests = folder / "13_howerj_eforth_tests"
    steps = next(t["steps"] for t in subleq_corpus.expected()["13_howerj_eforth"]["tests"]
                 if t["expected_output_file"] == f"{test}.expected_out")
    return words, (tests / f"{test}.in").read_bytes(), (tests / f"{test}.expected_out").read_bytes(), steps


@pytest.mark.slow
@pytest.mark.parametrize("test", subleq_corpus.params([f"t{i}" for i in range(1, 9)]))
def test_eforth_answers_on_the_transformer(test):
    """Each of eForth's test inputs gives its expected output after the expected steps, the
    reference checking every step (t1 takes about a minute; t2-t8, 9-20 million steps each, about
    an hour each on two cores)."""
    words, given_input, expected, steps = eforth_case(test)
    config = config_for(len(words), len(given_input), 16, memory=1 << 16)
    outcome = run_in_lockstep(words, config, given_input)
    assert (outcome.output, outcome.steps, outcome.status) == (expected, steps, "halted")
