"""The generic executor: it is a transformer, it knows no ISA, and its fast paths equal the definition."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import fleqc.transformer as transformer_pkg
from fleqc.machines import program_to_card
from fleqc.machines import weights_for
from fleqc.transformer import AttentionLayer, forward, run
from fleqc.transformer.executor import attention_weights
from fleqc.transformer.weights_io import load_weights, save_weights
from tests.support.programs import subleq_program

ALLOWED_FLEQC_IMPORTS = {"fleqc.transformer", "fleqc.errors", "fleqc.npzfile", "fleqc.schema", "fleqc.safe_io"}


def fleqc_imports(path: Path) -> set[str]:
    """The fleqc modules a source file imports."""
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n.split(".")[0] == "fleqc"}


def test_executor_imports_nothing_of_the_assembler_layout_or_instruction_sets():
    package = Path(transformer_pkg.__file__).parent
    shared = ("npzfile.py", "errors.py", "schema.py", "safe_io.py")  # what weights_io uses outside the package
    files = sorted(package.glob("*.py")) + [package.parent / name for name in shared]
    for path in files:
        for name in fleqc_imports(path):
            assert any(name == a or name.startswith(a + ".") for a in ALLOWED_FLEQC_IMPORTS), (path.name, name)


def naive_forward(model, X, mode):
    """The layer equations written out head by head and column by column (slow, obviously right)."""
    X = X.copy()
    for layer in model.layers:
        if isinstance(layer, AttentionLayer):
            update = np.zeros_like(X)
            for h in range(layer.heads):
                Q, K, V = layer.query[h] @ X, layer.key[h] @ X, layer.value[h] @ X
                for j in range(X.shape[1]):
                    s = K.T @ Q[:, j]
                    if mode == "softmax":
                        e = np.exp(s - s.max())
                    else:
                        e = (s == s.max()).astype(float)
                    update[:, j] += layer.output[h] @ (V @ (e / e.sum()))
            X = X + update
        else:
            X = X + layer.w2 @ np.maximum(layer.w1 @ X + layer.b1[:, None], 0) + layer.b2[:, None]
    return X


def _card(columns=32, bits=8):
    program = subleq_program(bits, [3, -7, 100, 0, -128], [(0, 1, 2), (1, 2, 0), (3, 3, 1), (2, 4, 0)])
    return program_to_card(program, columns)


@pytest.mark.parametrize("mode", ["softmax", "hardmax"])
def test_vectorised_forward_equals_the_naive_definition(mode):
    card = _card()
    model = weights_for(card.config)
    X = card.X
    for _ in range(4):
        fast, slow = forward(model, X, mode), naive_forward(model, X, mode)
        assert np.allclose(fast, slow, atol=1e-12, rtol=0)
        assert card.read_memory(fast) == card.read_memory(slow) and card.read_pc(fast) == card.read_pc(slow)
        X = fast


def test_batched_forward_equals_one_card_at_a_time():
    card = _card()
    model = weights_for(card.config)
    batch = np.stack([card.X, forward(model, card.X), forward(model, forward(model, card.X))])
    out = forward(model, batch)
    for b in range(3):
        assert np.array_equal(out[b], forward(model, batch[b]))


def test_softmax_is_stable_at_huge_scores_and_hardmax_shares_ties():
    scores = np.array([[1e6, 0.0], [1e6, 5.0], [-1e6, 5.0]])
    soft = attention_weights(scores.copy(), "softmax")
    assert np.all(np.isfinite(soft)) and np.allclose(soft.sum(axis=0), 1)
    hard = attention_weights(scores.copy(), "hardmax")
    assert hard[:, 0].tolist() == [0.5, 0.5, 0.0] and hard[:, 1].tolist() == [0.0, 0.5, 0.5]


def test_run_stops_at_a_fixed_point_and_counts_changing_passes():
    card = program_to_card(subleq_program(8, [1, 0, 0], [(0, 1, 1), (2, 2, 1)]))  # one step, then halt
    outcome = run(weights_for(card.config), card.X, max_steps=100)
    assert outcome.halted and outcome.steps == 1
    assert np.array_equal(forward(weights_for(card.config), outcome.X), outcome.X)


def test_weights_round_trip_through_npz(tmp_path):
    card = _card()
    model = weights_for(card.config)
    save_weights(model, tmp_path / "m.npz")
    loaded = load_weights(tmp_path / "m.npz")
    assert loaded.row_labels == model.row_labels and loaded.metadata == model.metadata
    assert np.array_equal(forward(loaded, card.X), forward(model, card.X))


def test_weights_do_not_depend_on_the_program():
    """The builder sees only the configuration, and one weights object runs different programs."""
    import inspect

    from fleqc.machines.subleq.weights import build_subleq_machine
    from fleqc.machines.subleq import reference as subleq

    assert list(inspect.signature(build_subleq_machine).parameters) == ["config"]
    programs = [
        subleq_program(8, [7, 2, 0], [(1, 0, 0), (2, 2, 1)]),  # 7 - 2 - 2 - 2 - 2 = -1, then halt
        subleq_program(8, [9, -9, 100, 0], [(1, 2, 1), (3, 3, 1)]),  # 100 + 9 = 109, then halt
    ]
    cards = [program_to_card(p, 32) for p in programs]
    assert cards[0].config == cards[1].config
    model = weights_for(cards[0].config)
    for program, card in zip(programs, cards):
        expected = subleq.run(program, 50)
        outcome = run(model, card.X, max_steps=50)
        assert (outcome.steps, outcome.halted) == (expected.steps, expected.halted)
        assert card.read_memory(outcome.X) == list(expected.state.memory)


def test_a_card_is_not_a_weights_file(tmp_path):
    from fleqc.errors import ErrorCode, FleqError

    path = tmp_path / "card.npz"
    _card().save(path)
    with pytest.raises(FleqError) as err:
        load_weights(path)
    assert err.value.code is ErrorCode.BAD_WEIGHTS


@pytest.mark.parametrize("engine", ["dense", "sparse", "incremental"])
@pytest.mark.parametrize("mode", ["softmax", "hardmax"])
def test_run_batch_equals_running_each_card(mode, engine):
    from fleqc.transformer import run_batch

    programs = [
        subleq_program(8, [1, 0, 0], [(0, 1, 1), (2, 2, 1)]),  # halts after 1 step
        subleq_program(8, [3, -7, 100, 0, -128], [(0, 1, 2), (1, 2, 0), (3, 3, 1), (2, 4, 0)]),  # loops
        subleq_program(8, [5, 1, 0], [(1, 0, 0), (2, 2, 1)]),  # counts 5 down, then halts
        subleq_program(8, [0], [(0, 0, 0)]),  # halted from the start
    ]
    cards = [program_to_card(p, 16) for p in programs]
    model = weights_for(cards[0].config)
    batch = run_batch(model, np.stack([c.X for c in cards]), max_steps=12, mode=mode, engine=engine)
    for i, card in enumerate(cards):
        one = run(model, card.X, max_steps=12, mode=mode, engine="dense")
        assert (batch.steps[i], batch.halted[i]) == (one.steps, one.halted)
        assert np.array_equal(batch.X[i], one.X)
    assert batch.halted.tolist() == [True, False, True, True]
