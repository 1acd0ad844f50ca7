"""The classic SUBLEQ machine's reference interpreter (issue 12): the corpus's programs to their
expected output, step count and final pc; eForth; the semantics instruction by instruction; address
faults; and a differential test against howerj's 16-bit VM written the way its C source is.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleqc.errors import ErrorCode as E
from fleqc.errors import FleqError
from fleqc.machines.classic.source import load_image
from fleqc.machines.classic.reference import AddressFault, ClassicState, initial_state, memory_size, run, step
from tests.support import subleq_corpus
from tests.support.subleq_corpus import corpus

EFORTH = "13_howerj_eforth"
MAX_STEPS = 100_000_000


def _expected_output(entry: dict) -> bytes:
    if entry.get("expected_output_bytes") is not None:
        return bytes(entry["expected_output_bytes"])
    return entry["expected_output"].encode("utf-8")


def _halting_programs() -> list[str]:
    return [name for name, entry in subleq_corpus.listing().items()
            if entry.get("mode") in ("rosetta", "mazonka") and "steps" in entry]


# The corpus ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", subleq_corpus.params(_halting_programs()))
def test_corpus_program(name):
    """32-bit words and the smallest memory that holds every address the program touches: the
    program prints its expected bytes, halting after the expected steps at the expected pc."""
    entry = subleq_corpus.expected()[name]
    image = load_image(corpus() / entry["file"], bits=32)
    assert len(image.words) == entry["words"]
    m = memory_size(max(len(image.words), entry["highest_address_touched"] + 1))
    state = run(initial_state(image.words, m, 32, entry["input"].encode("utf-8")), MAX_STEPS)
    assert (bytes(state.output), state.steps, state.pc) == (_expected_output(entry), entry["steps"],
                                                            entry["final_pc"])


def test_corpus_lists_the_programs():
    corpus()
    assert len(_halting_programs()) == 14


def test_davidar_demo_input_is_its_input_file():
    folder = corpus()
    entry = subleq_corpus.expected()["11_davidar_demo"]
    assert entry["input"].encode() == (folder / "11_davidar_demo.input.txt").read_bytes()
    assert _expected_output(entry) == (folder / "11_davidar_demo.expected_output.txt").read_bytes()


def test_esolangs_loop_trace():
    """03 never halts: after each of its first steps pc and memory are as listed (via step())."""
    folder = corpus()
    entry = subleq_corpus.expected()["03_esolangs_loop"]
    image = load_image(folder / entry["file"], bits=32)
    state = initial_state(image.words, memory_size(len(image.words)), 32)
    for point in entry["trace"]:
        while state.steps < point["after_steps"]:
            step(state)
        assert (state.pc, state.mem[:len(image.words)]) == (point["pc"], point["mem"])
    run(state, 10_000)
    assert not state.halted and state.steps == 10_005


def _eforth_tests() -> list[dict]:
    return subleq_corpus.listing().get(EFORTH, {}).get("tests", [])


def _run_eforth(case: dict) -> tuple[ClassicState, float]:
    folder = corpus() / f"{EFORTH}_tests"
    image = load_image(corpus() / f"{EFORTH}.dec", bits=16)
    given_input = (folder / case["expected_output_file"].replace(".expected_out", ".in")).read_bytes()
    assert case["input"].encode() == given_input
    state = initial_state(image.words, 65536, 16, given_input)
    started = time.perf_counter()
    run(state, MAX_STEPS)
    elapsed = time.perf_counter() - started
    expected = (folder / case["expected_output_file"]).read_bytes()
    assert (bytes(state.output), state.steps, state.halted) == (expected, case["steps"], True)
    return state, elapsed


def test_eforth_starts_and_stops_on_empty_input():
    """t1: no input; eForth boots, checks that it runs on a 16-bit VM, reads end of input and halts."""
    corpus()
    _run_eforth(_eforth_tests()[0])


@pytest.mark.slow
@pytest.mark.parametrize("case", subleq_corpus.params(
    [pytest.param(t, id=t["expected_output_file"].split(".")[0]) for t in _eforth_tests()]))
def test_eforth_answers(case):
    state, elapsed = _run_eforth(case)
    print(f"{case['expected_output_file']}: {state.steps} steps in {elapsed:.1f} s "
          f"({state.steps / elapsed / 1e6:.2f} M steps/s)")


# The semantics ---------------------------------------------------------------------------------------


def _machine(words, m=16, bits=32, given_input=b""):
    return initial_state(words, m, bits, given_input)


def test_subtract_and_branch():
    state = _machine([9, 10, 6, 10, 10, -1, 11, 11, -1, 3, 5, 0])
    step(state)  # mem[10] = 5 - 3 = 2 > 0: next instruction
    assert (state.pc, state.mem[10], state.steps) == (3, 2, 1)
    step(state)  # mem[10] = 0: jump to -1
    assert (state.pc, state.mem[10], state.halted) == (-1, 0, True)
    step(state)  # halted: nothing happens
    assert state.steps == 2


def test_input_and_end_of_input():
    state = run(_machine([-1, 9, 3, -1, 10, 6, 11, 11, -1, 0, 0, 0], given_input=b"A"), 10)
    assert (state.mem[9], state.mem[10], state.input_position, state.steps) == (65, -1, 1, 3)


def test_output_is_the_low_byte_and_streams():
    seen = []
    state = run(_machine([9, -1, 3, 10, -1, 6, 0, 0, -1, 0x141, -2]), 10, on_output=seen.append)
    assert bytes(state.output) == bytes(seen) == b"A\xfe"


def test_fetch_before_write():
    # the instruction overwrites its own C (mem[2] = 6 - 10 = -4) yet jumps to the C it fetched
    state = _machine([3, 2, 6, 10, 0, 0, 11, 11, -1, 0, 0, 0])
    step(state)
    assert (state.mem[2], state.pc) == (-4, 6)


def test_16_bit_wraparound_and_the_branch_on_bit_15():
    # 0x7FFF - (-1) = 0x8000: negative in 16 bits, so the branch is taken (howerj: bit 15 set)
    state = _machine([4, 3, 9, 0x7FFF, -1], bits=16)
    step(state)
    assert (state.mem[3], state.pc) == (-0x8000, 9)
    state = _machine([4, 3, 9, 0x7FFF, -1], bits=32)
    step(state)
    assert (state.mem[3], state.pc) == (0x8000, 3)


def test_16_bit_words_are_patterns():
    state = initial_state([65535, -1, 32768], 4, 16)
    assert state.mem == [-1, -1, -32768, 0]


def test_pc_past_the_signed_top_halts():
    """16 bits, 65,536 words: from pc 32,765 the next pc is 32,768, which is negative: a halt
    (howerj: pc >= 32,768 halts)."""
    words = [0] * 32768
    words[0:3] = [102, 102, 32765]  # mem[102] - mem[102] = 0: jump to 32765
    words[32765:32768] = [100, 101, 0]  # mem[101] = 1 - 0 > 0: no jump, pc + 3
    words[101] = 1
    state = run(initial_state(words, 65536, 16), 10)
    assert (state.pc, state.halted, state.steps) == (-32768, True, 2)


def test_fault_when_the_instruction_leaves_memory():
    state = _machine([0, 0, 14], m=16)
    with pytest.raises(AddressFault) as info:
        run(state, 10)
    fault = info.value
    assert (fault.code, fault.step, fault.pc, fault.address) == (E.ADDRESS_FAULT, 2, 14, 16)
    assert isinstance(fault, FleqError) and "step 2" in str(fault)
    assert (state.pc, state.steps) == (14, 1)  # the state before the failing step


@pytest.mark.parametrize("words, address", [
    ([100, 3, 0], 100),  # A
    ([3, 100, 0], 100),  # B
    ([-2, 3, 0], 2**32 - 2),  # a negative address other than -1 is a large unsigned one
    ([-1, 100, 0], 100),  # input into B
    ([100, -1, 0], 100),  # output from A
])
def test_fault_on_an_operand_outside_memory(words, address):
    state = _machine(words)
    with pytest.raises(AddressFault) as info:
        step(state)
    assert (info.value.step, info.value.address, state.steps, state.pc) == (1, address, 0, 0)


def test_run_stops_after_max_steps_and_resumes():
    words = [9, 10, -1, 11, 11, 0, 0, 0, 0, 1, 100, 0]  # mem[10] counts down from 100; halt at 0
    whole = run(_machine(words), 1000)
    parts = _machine(words)
    while not parts.halted:
        run(parts, 7)
    assert whole == parts and whole.difference(parts) is None
    assert (whole.steps, whole.halted, whole.mem[10]) == (199, True, 0)


def test_difference_names_the_first_mismatch():
    a, b = _machine([1, 2, 3]), _machine([1, 2, 3])
    assert a == b and a.difference(b) is None
    b.mem[5] = 7
    assert a != b and a.difference(b) == "mem[5]: 0 != 7"
    b = _machine([1, 2, 3])
    b.pc = 3
    assert a.difference(b) == "pc: 0 != 3"


@pytest.mark.parametrize("call, error", [
    (lambda: initial_state([1] * 17, 16, 32), FleqError),
    (lambda: initial_state([1], 12, 32), ValueError),
    (lambda: initial_state([1], 1 << 17, 32), ValueError),
    (lambda: initial_state([1], 16, 8), ValueError),
    (lambda: initial_state([65536], 16, 16), ValueError),
])
def test_initial_state_refusals(call, error):
    with pytest.raises(error):
        call()


def test_memory_size():
    assert [memory_size(n) for n in (0, 1, 2, 3, 1587, 1599, 65536)] == [1, 1, 2, 4, 2048, 2048, 65536]
    with pytest.raises(FleqError) as info:
        memory_size(65537)
    assert info.value.code is E.PROGRAM_TOO_LARGE


# Against howerj's VM ---------------------------------------------------------------------------------


def howerj_vm(memory: list[int], given_input: bytes, steps: int) -> tuple[list[int], int, int, bytes]:
    """howerj/subleq's 16-bit VM as its C source has it: unsigned cells, 0xFFFF the I/O address,
    branch when the result is 0 or has bit 15 set, halt when pc >= 32768."""
    m, pc, out, position, executed = list(memory), 0, bytearray(), 0, 0
    while executed < steps and pc < 32768:
        a, b, c = m[pc], m[pc + 1], m[pc + 2]
        if 0xFFFF not in (a, b) and m[a] == 0 and (m[b] == 0 or m[b] & 0x8000) and c == pc:
            break  # a jump to itself that subtracts 0: fleqc's fixed point (this VM repeats it forever)
        executed += 1
        pc += 3
        if a == 0xFFFF:
            m[b] = given_input[position] if position < len(given_input) else 0xFFFF
            position += 1
        elif b == 0xFFFF:
            out.append(m[a] & 0xFF)
        else:
            r = (m[b] - m[a]) & 0xFFFF
            if r == 0 or r & 0x8000:
                pc = c
            m[b] = r
    return m, pc, executed, bytes(out)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.integers(0, 40), st.just(0xFFFF), st.integers(0, 0xFFFF)), min_size=3, max_size=40),
       st.binary(max_size=4), st.integers(0, 200))
def test_matches_howerj_vm(words, given_input, steps):
    state = run(initial_state(words, 65536, 16, given_input), steps)
    memory, pc, executed, out = howerj_vm(words + [0] * (65536 - len(words)), given_input, steps)
    assert [w & 0xFFFF for w in state.mem] == memory
    assert (state.pc & 0xFFFF, state.steps, bytes(state.output)) == (pc, executed, out)
