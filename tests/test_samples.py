"""Every case of the shared table (tests/support/cases.py: samples/*.fleq and the inline cases) through the
front end and the reference interpreters, plus checks that the samples stay what they claim to be."""

from __future__ import annotations

import json

import pytest

from fleqc.errors import ErrorCode, FleqError
from fleqc.machines.fleq import reference as fleq
from fleqc.machines.subleq import reference as subleq
from fleqc.state import memory_by_label
from fleqc.machines import machine_of
from tests.support.cases import INLINE_CASES, SAMPLES_DIR, all_cases, check_memory, load_sample_cases
from tests.support.subleq_corpus import corpus

try:
    from fleqc.machines import compile_file, compile_source  # noqa: F401
except ModuleNotFoundError as error:
    if error.name != "fleqc.frontend":
        raise
    pytest.skip("fleqc.frontend is not importable yet", allow_module_level=True)
except ImportError as error:  # the package exists but does not export compile_file yet
    if "compile_file" not in str(error) and "compile_source" not in str(error):
        raise
    pytest.skip(f"fleqc.frontend has no compile_file/compile_source yet: {error}", allow_module_level=True)

from tests.support.cases import compile_case  # noqa: E402  (imports the front end lazily)

CASES = all_cases()
SAMPLE_CASES = load_sample_cases()

# Samples must fit small machines: memory cells + instructions (as linked, hidden ones included).
# The linear search port keeps the paper's unrolled 14 cells + 78 commands.
SIZE_LIMIT = 64
SIZE_EXEMPT = {"giannou_linear_search": 100}
STEP_LIMIT = 5_000


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_case_on_reference_interpreter(case):
    program = compile_case(case)
    result = machine_of(program).run_reference(program, case.max_steps, 0, {})
    assert result.halted == case.expect_halt, f"halted={result.halted} after {result.steps} steps"
    if case.expect_steps is not None:
        assert result.steps == case.expect_steps
    check_memory(case, memory_by_label(program, result.state.memory))


LANGUAGE_CASES = [c for c in CASES if machine_of(compile_case(c)).language is not None]


@pytest.mark.parametrize("case", LANGUAGE_CASES, ids=lambda c: c.name)
def test_trace_agrees_with_run(case):
    program = compile_case(case)
    interpreter = machine_of(program).reference
    result = interpreter.run(program, max_steps=case.max_steps)
    states = list(interpreter.trace(program, max_steps=case.max_steps))
    assert len(states) == result.steps
    if states:
        assert states[-1] == result.state
    else:
        assert result.state == interpreter.initial_state(program)


def test_every_sample_is_a_case_with_expectations():
    paths = sorted([*SAMPLES_DIR.glob("*.fleq"), *SAMPLES_DIR.glob("*.sq")])
    assert len(paths) >= 13
    assert [c.path for c in SAMPLE_CASES] == paths
    for case in SAMPLE_CASES:
        assert case.expected, f"{case.name}: no '; expect:' line"
        assert case.expect_halt, f"{case.name}: samples must halt"
        assert case.expect_steps is not None, f"{case.name}: no '; expect-steps:' line"
    names = {c.name for c in SAMPLE_CASES}
    required = {
        "multiply", "divmod", "gcd", "factorial", "fibonacci", "sum_list",
        "giannou_factorial", "giannou_reverse_list", "giannou_linear_search",
        "fleq_matrix_chain", "fleq_polynomial", "fleq_counter_loop", "fleq_normalize",
    }
    assert required <= names


def test_inline_cases_have_unique_names():
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
    assert all(c.source is not None and c.path is None for c in INLINE_CASES)


@pytest.mark.parametrize("case", [c for c in SAMPLE_CASES if c in LANGUAGE_CASES], ids=lambda c: c.name)
def test_samples_are_small(case):
    program = compile_case(case)
    size = program.memory_size + len(program.instructions)
    assert size <= SIZE_EXEMPT.get(case.name, SIZE_LIMIT), f"{case.name}: {size} cells + instructions"
    assert case.expect_steps <= STEP_LIMIT


@pytest.mark.parametrize("case", SAMPLE_CASES, ids=lambda c: c.name)
def test_expectations_name_user_labels(case):
    program = compile_case(case)
    labels = {s.name for s in program.symbols.values() if s.kind == "data" and not s.hidden}
    assert set(case.expected) <= labels


# ----------------------------------------------------------------------------------------------
# The ports of the paper's programs keep its memory image and commands exactly.

# in the SUBLEQ corpus (../shared/corpus/subleq beside the repository, as in CI and development
# checkouts; tests/support/subleq_corpus.py): the test skips, saying so, where it is absent
GIANNOU_JSON = "10_giannou/giannou_programs.json"
PORTS = {
    "giannou_factorial": "factorial_7",
    "giannou_reverse_list": "reverse_list",
    "giannou_linear_search": "linear_search",
}


@pytest.mark.parametrize("sample, key", sorted(PORTS.items()))
def test_giannou_port_matches_the_paper(sample, key):
    paper = json.loads((corpus() / GIANNOU_JSON).read_text())[key]
    program = compile_file(SAMPLES_DIR / f"{sample}.fleq")
    m, commands = len(paper["init_mem"]), paper["commands_1based"]
    assert program.bits == paper["N_bits"]
    assert [c.value for c in program.cells[:m]] == paper["init_mem"]
    # only the linker's hidden cells and its implicit trailing halt may follow
    assert all(s.hidden for s in program.symbols.values() if s.kind == "data" and s.address >= m)
    assert len(program.instructions) <= len(commands) + 1
    assert [(i.a + 1, i.b + 1, i.target + 1) for i in program.instructions[: len(commands)]] == [
        tuple(c) for c in commands
    ]
    result = subleq.run(program)
    assert result.halted
    assert list(result.state.memory[:m]) == paper["expected_final_mem"]
    # the paper counts the execution of the final, changeless command; we do not
    assert result.steps == paper["steps_until_first_EOF_exec"] - 1


def test_domain_error_is_located_at_the_instruction():
    source = """.machine fleq
.data
x:  .word -4.0
y:  .word 0.0
.text
    mov y, x
    sqrt y, x
    halt
"""
    program = compile_source(source, "bad_sqrt.fleq")
    with pytest.raises(FleqError) as caught:
        fleq.run(program)
    error = caught.value
    assert error.code is ErrorCode.DOMAIN_ERROR
    assert (error.span.file, error.span.line) == ("bad_sqrt.fleq", 7)
    assert "instruction 1" in error.message and "sqrt" in error.message
