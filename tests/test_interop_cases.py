"""The shared table of cases (tests/support/cases.py) through the engines fleqc did not write.

Every case runs on PyTorch and on ONNX Runtime through ``fleqc.run(..., backend=...)`` (the same
path as ``fleqc run --backend torch|onnx``): same halting, steps and values as the table states.
SUBLEQ cases run in both attention modes and, in softmax mode, in lockstep with the reference
after every pass; FLEQ cases in softmax mode (the longer ones in the slow suite, as in
tests/test_backends.py). An engine whose extra is missing is skipped with the reason.
"""

from __future__ import annotations

import pytest

import fleqc
from fleqc.interop import missing
from fleqc.machines import program_to_card
from fleqc.machines import machine_of
from tests.support.cases import all_cases, check_memory, compile_case
from tests.support.interop_lockstep import subleq_engine_lockstep

CASES = all_cases()
MACHINE_OF = {case.name: machine_of(compile_case(case)).name for case in CASES}
SUBLEQ = [c for c in CASES if MACHINE_OF[c.name] == "subleq"]
FLEQ = [
    c if c.expect_steps is not None and c.expect_steps <= 100 else pytest.param(c, marks=pytest.mark.slow)
    for c in CASES if MACHINE_OF[c.name] == "fleq"
]
ENGINES = {"torch": "torch", "onnx": "onnx"}  # backend -> extra


def needs(backend: str) -> None:
    absent = missing(ENGINES[backend])
    if absent:
        pytest.skip(f"the {ENGINES[backend]} extra is not installed ({', '.join(absent)}): "
                    f"pip install 'fleqc[{ENGINES[backend]}]'")
    if backend == "torch":
        import torch

        torch.set_num_threads(1)


def _check(case, result):
    assert result.halted == case.expect_halt
    if case.expect_steps is not None:
        assert result.steps == case.expect_steps
    check_memory(case, result.memory)


@pytest.mark.parametrize("mode", ["softmax", "hardmax"])
@pytest.mark.parametrize("backend", sorted(ENGINES))
@pytest.mark.parametrize("case", SUBLEQ, ids=[c.name for c in SUBLEQ])
def test_subleq_case_on_engine(case, backend, mode):
    needs(backend)
    result = fleqc.run(compile_case(case), backend=backend, mode=mode, max_steps=case.max_steps)
    assert result.backend == backend
    _check(case, result)


@pytest.mark.parametrize("backend", sorted(ENGINES))
@pytest.mark.parametrize("case", SUBLEQ, ids=[c.name for c in SUBLEQ])
def test_subleq_case_in_lockstep_on_engine(case, backend):
    needs(backend)
    from fleqc.machines import weights_for
    from fleqc.runner import interop_engine as engine_machine

    program = compile_case(case)
    card = program_to_card(program)
    engine = engine_machine(weights_for(card.config), backend)
    steps = subleq_engine_lockstep(program, card, engine.pass_numpy, "softmax", case.max_steps)
    if case.expect_steps is not None:
        assert steps == case.expect_steps


@pytest.mark.parametrize("backend", sorted(ENGINES))
@pytest.mark.parametrize("case", FLEQ, ids=[c.name if hasattr(c, "name") else c.values[0].name for c in FLEQ])
def test_fleq_case_on_engine(case, backend):
    needs(backend)
    _check(case, fleqc.run(compile_case(case), backend=backend, max_steps=case.max_steps))
