"""The incremental engine computes the same function of (weights, X) as the dense forward pass.

- SUBLEQ: X equal to the dense X after every pass, in softmax and hardmax mode (every sum the
  machine computes is exact and every query has one key of nonzero weight, so neither the order of
  a sum nor a skipped exact zero can show), and the engine's changed columns are exactly the
  columns where the dense pass changed X.
- FLEQ: equal to the dense X after every pass too (every sum it makes is exact in any order or has
  two nonzero terms, and every softmax weight is 0, 1 or 1/2^k), in softmax and hardmax mode.
- Generic transformers that are no machine at all (random weights, real-valued scores, ties,
  identical keys, non-finite inputs): equal to rounding, so the engine assumes nothing of fleqc's
  machines.
- The vector index finds exactly the vectors a brute-force scan finds.

The condition under which skipping a weight is exact: a key whose score is more than REACH = 750
below its query's best has weight exp(< -750) = 0.0 in float64 (hardmax: every non-tying key has
weight 0 by definition), so its term weight * value is an exact zero for a finite value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck as Health
from hypothesis import given, settings
from hypothesis import strategies as st

import fleqc
from fleqc.machines.subleq import reference as subleq
from fleqc.machines import program_to_card
from fleqc.machines import weights_for
from fleqc.transformer import forward, run
from fleqc.transformer import kernels
from fleqc.transformer.incremental import REACH, IncrementalEngine, build_index, scratch
from fleqc.transformer.layers import AttentionLayer, FeedForwardLayer, LoopedTransformer
from fleqc.machines import machine_of
from tests.support.cases import all_cases, compile_case
from tests.support.programs import random_subleq_programs, subleq_program
from tests.test_fleq_machine import random_fleq_programs

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
SUBLEQ_SAMPLES = sorted(p.name for p in SAMPLES.glob("*.fleq") if "fleq_" not in p.name)
FLEQ_SAMPLES = sorted(p.name for p in SAMPLES.glob("fleq_*.fleq"))
# two of them in the default suite (a dense FLEQ pass takes about 0.7 s), every one in the slow suite
FLEQ_DEFAULT = ("fleq_polynomial.fleq", "fleq_subnormal_products.fleq")
# the integer machines (paper SUBLEQ and classic): the engine's X equals the dense X bit for bit
SUBLEQ_CASES = [c for c in all_cases() if machine_of(compile_case(c)).name != "fleq"]


def assert_engine_follows_dense(model, X, mode, passes):
    """Step the engine and the dense pass side by side, bit for bit; return the number of changing passes."""
    engine = IncrementalEngine(model, X, mode)
    for step in range(passes):
        Y = forward(model, X, mode)
        changed = engine.step()
        assert np.array_equal(engine.X, Y), f"pass {step + 1}: engine differs from the dense pass"
        assert changed.tolist() == np.flatnonzero(np.any(Y != X, axis=0)).tolist()
        if np.array_equal(Y, X):
            assert len(changed) == 0
            return step
        X = Y
    return passes


@pytest.mark.parametrize("mode", ["softmax", "hardmax"])
@pytest.mark.parametrize("name", SUBLEQ_SAMPLES)
def test_subleq_samples_equal_the_dense_pass_after_every_pass(name, mode):
    card = fleqc.build(str(SAMPLES / name))
    assert_engine_follows_dense(weights_for(card.config), card.X, mode, passes=80)


@pytest.mark.parametrize("case", SUBLEQ_CASES[:12], ids=[c.name for c in SUBLEQ_CASES[:12]])
def test_subleq_case_table_on_the_engine_equals_the_dense_pass(case):
    card = fleqc.build(compile_case(case))
    assert_engine_follows_dense(weights_for(card.config), card.X, "softmax", passes=min(case.max_steps, 60))


@settings(max_examples=25, deadline=None, suppress_health_check=[Health.too_slow])
@given(random_subleq_programs(), st.sampled_from(["softmax", "hardmax"]))
def test_random_subleq_programs_equal_the_dense_pass(program_and_columns, mode):
    program, columns = program_and_columns
    card = program_to_card(program, columns)
    assert_engine_follows_dense(weights_for(card.config), card.X, mode, passes=25)


@settings(max_examples=15, deadline=None, suppress_health_check=[Health.too_slow])
@given(random_subleq_programs(columns=st.sampled_from([64, 256, 1024])))
def test_random_subleq_programs_run_in_lockstep_with_the_reference(program_and_columns):
    """The engine's run, decoded after every pass, is the reference interpreter's run."""
    program, columns = program_and_columns
    card = program_to_card(program, columns)
    engine = IncrementalEngine(weights_for(card.config), card.X)
    for step, state in enumerate(subleq.trace(program, 60), start=1):
        engine.step()
        assert card.read_pc(engine.X) == state.pc, f"pc differs after step {step}"
        assert card.read_memory(engine.X) == list(state.memory), f"memory differs after step {step}"


@pytest.mark.parametrize("name", [n if n in FLEQ_DEFAULT else pytest.param(n, marks=pytest.mark.slow) for n in FLEQ_SAMPLES])
def test_fleq_samples_equal_the_dense_pass_bit_for_bit(name):
    """Every sum the FLEQ machine makes is exact or has two terms (issue 13), so the engine, which adds
    in another order, gives the dense pass's bits."""
    card = fleqc.build(str(SAMPLES / name))
    halted_after = assert_engine_follows_dense(weights_for(card.config), card.X, "softmax", passes=8)
    assert halted_after < 8 or name == "fleq_counter_loop.fleq"  # the others halt within 8 passes


def test_fleq_hardmax_is_softmax_bit_for_bit():
    """Every softmax weight of the FLEQ machine is exactly 0, 1 or 1/2^k (pointer reads, the write
    mark, gathers), so hardmax passes, dense and on the engine, equal the softmax ones."""
    card = fleqc.build(str(SAMPLES / "fleq_polynomial.fleq"))
    model = weights_for(card.config)
    X = card.X
    for _ in range(2):
        Y = forward(model, X, "softmax")
        assert np.array_equal(forward(model, X, "hardmax"), Y)
        X = Y
    assert_engine_follows_dense(model, card.X, "hardmax", passes=2)


@settings(max_examples=3, deadline=None, suppress_health_check=[Health.too_slow])
@given(random_fleq_programs())
def test_random_fleq_programs_equal_the_dense_pass_bit_for_bit(program):
    card = program_to_card(program)
    assert_engine_follows_dense(weights_for(card.config), card.X, "softmax", passes=3)


def test_rebuilding_the_indices_changes_nothing():
    """With a tiny rebuild threshold every pass rebuilds some index; X stays the dense X."""
    card = fleqc.build(str(SAMPLES / "giannou_reverse_list.fleq"))
    model = weights_for(card.config)
    engine = IncrementalEngine(model, card.X)
    engine.rebuild_at = 0
    X = card.X
    for _ in range(30):
        X = forward(model, X)
        engine.step()
        assert np.array_equal(engine.X, X)
    assert engine.stats.rebuilds > 0


def test_run_counts_steps_and_stops_like_the_dense_run():
    program = subleq_program(8, [5, 1, 0], [(1, 0, 0), (2, 2, 1)])  # counts 5 down, then halts
    card = program_to_card(program, 16)
    model = weights_for(card.config)
    for max_steps in (0, 3, 100):
        dense = run(model, card.X, max_steps=max_steps, engine="dense")
        fast = run(model, card.X, max_steps=max_steps, engine="incremental")
        assert (fast.steps, fast.halted) == (dense.steps, dense.halted)
        assert np.array_equal(fast.X, dense.X)


@pytest.mark.parametrize("budget_passes", [0, 1, 7])
def test_auto_switches_to_the_engine_mid_run_without_a_seam(monkeypatch, budget_passes):
    """auto: sparse passes while cheap, then the engine, started from the X the sparse passes left."""
    from fleqc.transformer import executor

    card = fleqc.build(str(SAMPLES / "gcd.fleq"))
    model = weights_for(card.config)
    monkeypatch.setattr(executor, "AUTO_BUDGET", budget_passes * executor.sparse_pass_cost(model, card.X.shape[1]))
    monkeypatch.setattr(executor, "AUTO_MIN_PASSES", 1)
    loop = executor.stepper(model, card.X, "softmax", "auto")
    X = card.X
    for step in range(40):
        X = forward(model, X)
        loop.step()
        assert np.array_equal(loop.X, X)
        assert isinstance(loop.inner, IncrementalEngine) == (step >= budget_passes)
    stats = loop.stats.to_json()
    assert stats["engine"] == "incremental" and stats["sparse_passes_first"] == budget_passes


def test_auto_starts_on_the_engine_when_the_budget_buys_few_sparse_passes(monkeypatch):
    """A budget worth fewer than AUTO_MIN_PASSES sparse passes: the engine from the first pass."""
    from fleqc.transformer import executor

    card = fleqc.build(str(SAMPLES / "gcd.fleq"))
    model = weights_for(card.config)
    cost = executor.sparse_pass_cost(model, card.X.shape[1])
    monkeypatch.setattr(executor, "AUTO_BUDGET", (executor.AUTO_MIN_PASSES - 1) * cost)
    assert isinstance(executor.stepper(model, card.X, "softmax", "auto").inner, IncrementalEngine)
    monkeypatch.setattr(executor, "AUTO_BUDGET", executor.AUTO_MIN_PASSES * cost)
    assert not isinstance(executor.stepper(model, card.X, "softmax", "auto").inner, IncrementalEngine)


def test_non_finite_input_falls_back_to_the_dense_pass():
    card = program_to_card(subleq_program(8, [3, -7, 0], [(0, 1, 2), (2, 2, 0)]), 16)
    model = weights_for(card.config)
    X = card.X.copy()
    engine = IncrementalEngine(model, X)
    engine.step()
    Z = np.array(engine.X)
    Z[0, 3] = np.inf
    engine = IncrementalEngine(model, Z)
    with np.errstate(invalid="ignore", over="ignore"):
        engine.step()
        assert np.array_equal(engine.X, forward(model, Z), equal_nan=True)
    assert engine.stats.fallbacks == 1


def test_stats_count_passes_and_columns():
    card = fleqc.build(str(SAMPLES / "gcd.fleq"))
    outcome = run(weights_for(card.config), card.X, max_steps=1000, engine="incremental", timed=True)
    stats = outcome.stats.to_json()
    assert stats["passes"] == outcome.steps + 1 and stats["fallbacks"] == 0
    assert len(stats["seconds_per_layer"]) == 5
    assert stats["columns_recomputed_per_layer"][0] >= card.X.shape[1]  # the first pass computes all


# -- a transformer that is no machine ----------------------------------------------------------


def random_model(rng, d=12, heads=3, dk=4, dv=3, hidden=16, scale=1.0):
    def attention():
        q = rng.normal(size=(heads, dk, d)) * scale
        k = rng.normal(size=(heads, dk, d))
        return AttentionLayer(q, k, rng.normal(size=(heads, dv, d)) * 0.3, rng.normal(size=(heads, d, dv)) * 0.3)

    def ffn():
        w1 = rng.normal(size=(hidden, d)) * (rng.random((hidden, d)) < 0.3)
        w2 = rng.normal(size=(d, hidden)) * (rng.random((d, hidden)) < 0.3) * 0.3
        return FeedForwardLayer(w1, rng.normal(size=hidden), w2, rng.normal(size=d) * 0.1)

    return LoopedTransformer((attention(), ffn(), attention()), tuple(f"r{i}" for i in range(d)))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("scale", [1.0, 300.0])
def test_generic_transformer_equals_the_dense_pass_to_rounding(seed, scale):
    """Random weights and a random X: real-valued scores, every key in reach (scale 1) or a few (300)."""
    rng = np.random.default_rng(seed)
    model = random_model(rng, scale=scale)
    X = np.round(rng.normal(size=(12, 40)), 1)
    X[:, 20:] = X[:, 20:21]  # identical columns: one query group, one key leaf of many members
    engine = IncrementalEngine(model, X)
    for _ in range(6):
        X = forward(model, X)
        engine.step()
        np.testing.assert_allclose(engine.X, X, rtol=1e-9, atol=1e-9)


def test_generic_transformer_with_changing_columns_in_hardmax():
    """Hardmax on integer scores: ties among many identical keys, exact."""
    rng = np.random.default_rng(7)
    model = random_model(rng)
    layers = tuple(
        AttentionLayer(np.round(l.query * 4), np.round(l.key * 4), l.value, l.output) if isinstance(l, AttentionLayer)
        else l for l in model.layers)
    model = LoopedTransformer(layers, model.row_labels)
    X = np.round(rng.normal(size=(12, 33)))
    X[:, 10:30] = X[:, 10:11]
    engine = IncrementalEngine(model, X, "hardmax")
    for _ in range(5):
        X = forward(model, X, "hardmax")
        engine.step()
        np.testing.assert_allclose(engine.X, X, rtol=1e-12, atol=1e-12)


# -- the index ---------------------------------------------------------------------------------


def _brute(vectors, probe, threshold):
    scores = vectors @ probe
    return {int(i) for i in np.flatnonzero(scores >= threshold)}


@pytest.mark.parametrize("kind", ["codes", "reals", "duplicates"])
def test_index_search_finds_what_a_scan_finds(kind):
    rng = np.random.default_rng(3)
    n, D = 300, 7
    if kind == "codes":
        vectors = rng.choice([-1.0, 1.0], size=(n, D)) * 512
    elif kind == "reals":
        vectors = rng.normal(size=(n, D))
    else:
        vectors = rng.choice([-1.0, 0.0, 1.0], size=(n, D))
        vectors[:, 3] = 2.0  # a constant component
    index = build_index(vectors, np.zeros((n, 0)))
    perm, leaf_of = index[kernels.IX_PERM], index[kernels.IX_LEAF_OF]
    for _ in range(40):
        probe = rng.normal(size=D) * (100 if kind == "codes" else 1)
        scores = np.unique(vectors @ probe)
        k = int(len(scores) * 0.9)
        threshold = float(scores[k - 1] + scores[k]) / 2  # between two scores: no tie to round either way
        sc = scratch(n, D)
        count, _ = kernels.search(probe, index, index[kernels.IX_LIVE], threshold, np.inf, 1e-9, sc)
        found_leaves = set(sc[kernels.SC_LEAF][:count].tolist())
        found = {int(perm[p]) for p in range(n) if leaf_of[p] in found_leaves}
        assert found == _brute(vectors, probe, threshold)


def test_reach_underflows():
    """The skipped weights are exactly zero: exp(-REACH) is 0.0 in float64."""
    assert np.exp(-REACH) == 0.0 and np.exp(np.float64(-REACH)) == 0.0


@pytest.mark.parametrize("engine", ["auto", "incremental", "sparse", "dense"])
def test_cli_runs_every_engine_with_the_same_result(engine):
    from click.testing import CliRunner

    from fleqc.cli import main

    result = CliRunner().invoke(main, ["run", str(SAMPLES / "gcd.fleq"), "--engine", engine, "--json"])
    assert result.exit_code == 0, result.output
    assert '"a": 21' in result.output and '"steps": 67' in result.output


def test_cli_stats_report_the_engine_per_layer():
    import json

    from click.testing import CliRunner

    from fleqc.cli import main

    result = CliRunner().invoke(main, ["run", str(SAMPLES / "gcd.fleq"), "--engine", "incremental", "--stats", "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)["engine"]
    assert stats["passes"] == 68 and stats["fallbacks"] == 0 and len(stats["seconds_per_layer"]) == 5
    refused = CliRunner().invoke(main, ["run", str(SAMPLES / "gcd.fleq"), "--backend", "reference", "--stats"])
    assert refused.exit_code == 2 and "do nothing" in refused.output


def _attention_arrays_dense(layer: AttentionLayer):
    """The engine's arrays of an attention layer taken from its dense weights (how the engine took
    them before it read the nonzeros: the reference for attention_arrays)."""
    from fleqc.transformer.incremental import _csr

    _, dk, d = layer.query.shape
    dv = layer.value.shape[1]
    live = np.any(layer.value != 0, axis=2) & np.any(layer.output != 0, axis=1)
    kept = np.flatnonzero(live.any(axis=1))
    value = layer.value[kept] * live[kept][:, :, None]
    output = layer.output[kept].transpose(1, 0, 2).reshape(d, len(kept) * dv) * live[kept].reshape(1, -1)
    rows = np.flatnonzero(np.any(output != 0, axis=1))
    stacked = np.concatenate([layer.query[kept], layer.key[kept], value], axis=1)
    reads = np.flatnonzero(np.any(stacked != 0, axis=(0, 1)))
    proj = stacked[:, :, reads].reshape(-1, len(reads))
    return reads, _csr(proj), _csr(output[rows]), rows, kept, dk, dv, d


def _same_arrays(a, b) -> bool:
    if isinstance(a, tuple):
        return len(a) == len(b) and all(_same_arrays(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a.view(np.uint8), b.view(np.uint8))
    return a == b


def _machine_attention_layers():
    seen, layers = set(), []
    for case in all_cases():
        card = program_to_card(compile_case(case))
        name = machine_of(card.config).name
        if name in seen:
            continue
        seen.add(name)
        layers += [layer for layer in weights_for(card.config).layers if isinstance(layer, AttentionLayer)]
    return layers


def test_attention_arrays_from_nonzeros_equal_the_dense_ones():
    """The engine takes an attention layer apart by its nonzeros (attention_arrays): the same arrays,
    bit for bit and of the same types, as from the dense weights: on every machine's layers and on
    random layers with dead value rows (a zero output column), dead heads, -0.0, inf and NaN."""
    from fleqc.transformer.incremental import attention_arrays

    layers = _machine_attention_layers()
    assert len(layers) >= 3
    rng = np.random.default_rng(7)
    for _ in range(60):
        H, dk, dv, d = (int(v) for v in rng.integers(1, 5, 4) + np.array([0, 0, 0, 4]))
        parts = []
        for shape in ((H, dk, d), (H, dk, d), (H, dv, d), (H, d, dv)):
            a = rng.integers(-2, 3, shape).astype(float) * (rng.random(shape) < 0.3)
            special = rng.random(shape)
            a[special < 0.03] = -0.0
            a[(special > 0.98) & (special < 0.99)] = np.inf
            a[special > 0.995] = np.nan
            parts.append(a)
        parts[3][rng.integers(0, H), :, :] = 0.0  # a dead head, or dead value rows
        layers.append(AttentionLayer(*parts))
    compared, mismatched = 0, 0
    for layer in layers:
        live = np.any(layer.value != 0, axis=2) & np.any(layer.output != 0, axis=1)
        if not live.any():  # no head to keep (the dense way cannot reshape an empty stack)
            continue
        compared += 1
        with np.errstate(invalid="ignore"):  # inf x 0 in the dense products
            dense = _attention_arrays_dense(layer)
        mismatched += not _same_arrays(attention_arrays(layer), dense)
    assert compared >= 40 and mismatched == 0
