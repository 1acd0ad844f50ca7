"""Flow programs against their assembly twins: the applications (samples/apps/*.flow) and the
samples written in both. Each pair runs on the reference interpreter and must give the same bits
in the cells they share, each program its header's expectations and step count, and Flow at most
1.5 times the assembly's steps. One small pair runs on the transformer too (slow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleqc import api
from tests.support.cases import SAMPLES_DIR, Case, check_memory, parse_expectations
from tests.support.flow import same_bits

APPS = SAMPLES_DIR / "apps"

# (Flow program, assembly twin, {Flow variable: assembly label}) compared bit for bit
TWINS = [
    (APPS / "app_inverse4.flow", APPS / "app_inverse4.fleq", {"x": "x", "iters": "iters"}),
    (APPS / "app_inverse8.flow", APPS / "app_inverse8.fleq", {"x": "x", "iters": "iters"}),
    (APPS / "app_power_iteration.flow", APPS / "app_power_iteration.fleq",
     {"lam": "lambda", "v": "v", "iters": "iters"}),
    (APPS / "app_backprop.flow", APPS / "app_backprop.fleq",
     {"w1": "w1", "b1": "b1", "w2": "w2", "b2": "b2", "loss_first": "loss_first", "loss_last": "loss_last"}),
    (APPS / "app_calculator.flow", APPS / "app_calculator.fleq", {k: k for k in "abcde"}),
    (SAMPLES_DIR / "fleq_counter_loop.flow", SAMPLES_DIR / "fleq_counter_loop.fleq", {"total": "total"}),
    (SAMPLES_DIR / "fleq_polynomial.flow", SAMPLES_DIR / "fleq_polynomial.fleq", {"x": "x", "y": "y"}),
    (SAMPLES_DIR / "fleq_matrix_chain.flow", SAMPLES_DIR / "fleq_matrix_chain.fleq",
     {k: k for k in ("AB", "ABC", "ABC_T", "y")}),
]


def _run(path: Path, backend: str = "reference"):
    expectations = parse_expectations(path.read_text(encoding="utf-8"), str(path))
    result = api.run(api.compile(path), backend=backend, max_steps=100_000)
    return result, expectations


@pytest.mark.parametrize("flow, fleq, shared", TWINS, ids=[t[0].stem for t in TWINS])
def test_flow_and_assembly_twins_give_the_same_bits(flow, fleq, shared):
    flow_run, flow_expect = _run(flow)
    fleq_run, fleq_expect = _run(fleq)
    for run, expect, path in ((flow_run, flow_expect, flow), (fleq_run, fleq_expect, fleq)):
        assert run.halted, path
        if expect.get("expect_steps") is not None:
            assert run.steps == expect["expect_steps"], (path, run.steps)
        check_memory(Case(path.name, path, **expect), run.memory)
    for mine, theirs in shared.items():
        assert same_bits(flow_run.memory[mine], fleq_run.memory[theirs]), (mine, flow_run.memory[mine],
                                                                           fleq_run.memory[theirs])
    assert flow_run.steps <= 1.5 * fleq_run.steps, (flow_run.steps, fleq_run.steps)


@pytest.mark.parametrize("path", sorted(SAMPLES_DIR.rglob("*.flow")), ids=lambda p: p.name)
def test_every_flow_sample_gives_what_its_header_states(path):
    run, expect = _run(path)
    assert run.halted == expect.get("expect_halt", True)
    if expect.get("expect_steps") is not None:
        assert run.steps == expect["expect_steps"], run.steps
    assert expect["expected"], "a sample states at least one result"
    check_memory(Case(path.name, path, **expect), run.memory)


def test_the_step_ratios_in_the_docs_are_the_measured_ones():
    """docs/flow.md states each twin's steps; they are what the programs take."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "flow.md").read_text(encoding="utf-8")
    for flow, fleq, _ in TWINS:
        flow_steps = parse_expectations(flow.read_text(encoding="utf-8"), str(flow))["expect_steps"]
        fleq_steps = parse_expectations(fleq.read_text(encoding="utf-8"), str(fleq))["expect_steps"]
        row = f"| `{flow.name}` | {flow_steps} | {fleq_steps} | {flow_steps / fleq_steps:.2f} |"
        assert row in text, row


def test_an_application_links_only_what_it_calls():
    program = api.compile(APPS / "app_inverse8.flow")
    files = {s.span.file for s in program.symbols.values() if s.span is not None}
    assert not any("arith_div" in f or "learn" in f or "power" in f for f in files), files
    assert api.build(program).config.columns == 256


@pytest.mark.slow
def test_a_twin_on_the_transformer():
    flow_run, _ = _run(SAMPLES_DIR / "fleq_polynomial.flow", backend="transformer")
    fleq_run, _ = _run(SAMPLES_DIR / "fleq_polynomial.fleq", backend="transformer")
    assert flow_run.halted and flow_run.steps == fleq_run.steps == 6
    assert same_bits(flow_run.memory["y"], fleq_run.memory["y"]) and flow_run.memory["y"] == 1.75


@pytest.mark.slow
def test_an_application_in_flow_on_the_transformer_gives_its_assembly_twins_bits():
    """The 8 x 8 inverse in Flow, on the transformer, against its assembly twin on the reference."""
    flow_run, _ = _run(APPS / "app_inverse8.flow", backend="transformer")
    fleq_run, _ = _run(APPS / "app_inverse8.fleq")
    assert flow_run.halted and flow_run.steps == fleq_run.steps == 274
    assert same_bits(flow_run.memory["x"], fleq_run.memory["x"]) and flow_run.memory["iters"] == 12.0
