"""The shared table of cases (tests/support/cases.py) through every backend: same halting, steps and values.

SUBLEQ cases run on the reference interpreter and on the transformer in both attention modes, from
the linked program and from a card written to disk and loaded back. The transformer runs a whole
program exactly in lockstep with the reference (tests/test_lockstep.py checks every step).
FLEQ cases run on the reference and on the FLEQ transformer (softmax), and in lockstep within the
stated bounds from a saved card (tests/support/fleq_checks.py).
"""

from __future__ import annotations

import pytest

from fleqc.machines import load_card
import fleqc
from fleqc.card.card import Card
from fleqc.machines import language_machines, machine_of
from tests.support.cases import all_cases, check_memory, compile_case
from tests.support.fleq_checks import assert_fleq_lockstep
from tests.test_lockstep import assert_lockstep

CASES = all_cases()
MACHINE_OF = {case.name: machine_of(compile_case(case)) for case in CASES}  # as the linked program names it
SUBLEQ = [c for c in CASES if MACHINE_OF[c.name].name == "subleq"]
# FLEQ passes cost ~0.1 s on the transformer: cases longer than 100 steps run in the slow suite.
FLEQ = [
    c if c.expect_steps is not None and c.expect_steps <= 100 else pytest.param(c, marks=pytest.mark.slow)
    for c in CASES if MACHINE_OF[c.name].name == "fleq"
]
CLASSIC = [c for c in CASES if MACHINE_OF[c.name].name == "classic"]
# (backend, attention mode, engine): the transformer runs the incremental engine by default; the
# sparse evaluation and the plain dense forward pass (the definition) must give the same results.
BACKENDS = [("reference", None, "incremental"), ("transformer", "softmax", "incremental"),
            ("transformer", "hardmax", "incremental"), ("transformer", "softmax", "sparse"),
            ("transformer", "softmax", "dense"), ("transformer", "hardmax", "dense")]
FLEQ_BACKENDS = [("reference", "incremental", "reference"), ("transformer", "incremental", "transformer"),
                 ("transformer", "sparse", "transformer-sparse"), ("transformer", "dense", "transformer-dense")]
DENSE_STEPS = 10  # the dense pass takes ~0.7 s a FLEQ step: longer cases run it in the slow suite


def _fleq_runs() -> list:
    """(case, backend, engine) for every FLEQ case and backend; slow: the long cases, the sparse
    path, and the dense pass on cases of more than DENSE_STEPS steps (the engines are held to the
    dense pass on every sample by tests/test_fast.py and tests/test_engine.py)."""
    runs = []
    for param in FLEQ:
        case, long = (param, False) if not hasattr(param, "values") else (param.values[0], True)
        for backend, engine, name in FLEQ_BACKENDS:
            slow = long or engine == "sparse" or (engine == "dense" and case.expect_steps > DENSE_STEPS)
            runs.append(pytest.param(case, backend, engine, marks=[pytest.mark.slow] if slow else [],
                                     id=f"{case.name}-{name}"))
    return runs


def test_every_machine_of_the_language_has_cases():
    """The case table covers every registered machine whose programs are written in the language,
    and the two tables below together cover every case."""
    assert {m.name for m in language_machines()} <= {m.name for m in MACHINE_OF.values()}
    assert CLASSIC, "no classic SUBLEQ sample in the table"
    assert len(SUBLEQ) + len(FLEQ) + len(CLASSIC) == len(CASES)


def _check(case, result):
    assert result.halted == case.expect_halt
    if case.expect_steps is not None:
        assert result.steps == case.expect_steps
    check_memory(case, result.memory)


@pytest.mark.parametrize("backend,mode,engine", BACKENDS,
                         ids=[b if m is None else f"{b}-{m}-{e}" for b, m, e in BACKENDS])
@pytest.mark.parametrize("case", SUBLEQ, ids=[c.name for c in SUBLEQ])
def test_case_on_backend(case, backend, mode, engine):
    program = compile_case(case)
    result = fleqc.run(program, backend=backend, mode=mode or "softmax", max_steps=case.max_steps, engine=engine)
    _check(case, result)


def saved_card(case, tmp_path):
    """The case's program, and its card written to disk and read back (what `fleqc build` saves)."""
    program = compile_case(case)
    path = tmp_path / f"{case.name}.npz"
    fleqc.build(program).save(path)
    return program, load_card(path)


@pytest.mark.parametrize("case", SUBLEQ, ids=[c.name for c in SUBLEQ])
def test_case_from_a_saved_card_in_lockstep(case, tmp_path):
    program, card = saved_card(case, tmp_path)
    steps = assert_lockstep(program, card, "softmax", case.max_steps)
    if case.expect_steps is not None:
        assert steps == case.expect_steps
    _check(case, fleqc.run(card, backend="reference", max_steps=case.max_steps))


@pytest.mark.parametrize("case", SUBLEQ[:3], ids=[c.name for c in SUBLEQ[:3]])
def test_one_machine_runs_many_programs(case):
    """With --columns fixed, every program runs on the same weights."""
    result = fleqc.run(compile_case(case), columns=256, max_steps=case.max_steps)
    _check(case, result)


@pytest.mark.parametrize("case,backend,engine", _fleq_runs())
def test_fleq_case_on_backend(case, backend, engine):
    result = fleqc.run(compile_case(case), backend=backend, max_steps=case.max_steps, engine=engine)
    _check(case, result)


@pytest.mark.parametrize("case", FLEQ, ids=lambda c: c.name)
def test_fleq_case_from_a_saved_card_in_lockstep(case, tmp_path):
    program, card = saved_card(case, tmp_path)
    steps, halted = assert_fleq_lockstep(program, card, case.max_steps)
    assert halted == case.expect_halt
    if case.expect_steps is not None:
        assert steps == case.expect_steps


@pytest.mark.parametrize("backend,mode,engine", BACKENDS,
                         ids=[b if m is None else f"{b}-{m}-{e}" for b, m, e in BACKENDS])
@pytest.mark.parametrize("case", CLASSIC, ids=[c.name for c in CLASSIC])
def test_classic_case_on_backend(case, backend, mode, engine):
    """A classic program: the same output, steps and labels on every backend (its output is
    collected through the API's ``output`` option)."""
    printed = bytearray()
    result = fleqc.run(compile_case(case), backend=backend, mode=mode or "softmax", max_steps=case.max_steps,
                       engine=engine, output=printed)
    _check(case, result)
    assert bytes(printed) == case.expect_output


@pytest.mark.parametrize("case", CLASSIC, ids=[c.name for c in CLASSIC])
def test_classic_case_from_a_saved_card_in_lockstep(case, tmp_path):
    from fleqc.machines.classic.run import Lockstep, run_card

    program, card = saved_card(case, tmp_path)
    check = Lockstep(card.config, program.words, program.input)
    outcome = run_card(machine_of(card).build(card.config), card.X, card.config, check=check)
    check.finish(outcome.X)
    assert (outcome.output, outcome.steps, outcome.status) == (case.expect_output, case.expect_steps, "halted")
