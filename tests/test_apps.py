"""The applications in samples/apps/ against numpy: matrix inverse (4 x 4 and 8 x 8), power
iteration, and in-context learning by backpropagation. Each runs on the reference (and must give
exactly its header's expectations and step count), on the reference with the transformer's
specified errors (``noisy``), and (slow) on the transformer. Each links only the stdlib parts it
calls, so that it fits a 256-column machine (1 + 64 + cells + instructions <= 256)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import fleqc
from fleqc.program import Cell
from tests.cases import REPO_ROOT, Case, check_memory
from tests.stdlib_support import BACKENDS, run_on

APPS = REPO_ROOT / "samples" / "apps"


def load(name: str):
    case = Case.from_file(APPS / f"{name}.fleq")
    return case, fleqc.compile(case.path)


def initial(program, label: str) -> np.ndarray:
    return np.array(program.cells[program.symbols[label].address].value)


def with_value(program, label: str, value) -> fleqc.program.LinkedProgram:
    """The program with the data cell ``label`` starting at ``value``."""
    address = program.symbols[label].address
    cells = list(program.cells)
    old = cells[address]
    cells[address] = Cell(address, np.array(value, dtype=np.float64).reshape(old.shape), old.shape, old.span)
    return dataclasses.replace(program, cells=tuple(cells))


@pytest.mark.parametrize("name", ["app_inverse4", "app_inverse8", "app_power_iteration", "app_backprop"])
def test_apps_fit_256_columns(name):
    _, program = load(name)
    assert 1 + 64 + len(program.cells) + len(program.instructions) <= 256
    assert fleqc.build(program).config.columns <= 256


def check_case_on_reference(case, result, backend):
    if backend == "reference":
        assert result.steps == case.expect_steps
        check_memory(case, result.memory)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["app_inverse4", "app_inverse8"])
def test_inverse(name, backend):
    case, program = load(name)
    result = run_on(program, backend)
    assert result.halted
    a, x = initial(program, "a"), result.memory["x"]
    residual = np.linalg.norm(a @ x - np.eye(len(a)), 2)
    assert residual <= 1e-8, residual
    check_case_on_reference(case, result, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_power_iteration(backend):
    case, program = load("app_power_iteration")
    result = run_on(program, backend)
    assert result.halted
    a = initial(program, "a")
    w, vectors = np.linalg.eigh(a)
    i = int(np.argmax(np.abs(w)))
    got = float(result.memory["lambda"])
    assert abs(got - w[i]) <= 1e-8 * abs(w[i])
    v = result.memory["v"]
    assert abs(np.linalg.norm(v) - 1) <= 1e-9
    assert abs(abs(v @ vectors[:, i]) - 1) <= 1e-9  # the eigenvector, up to sign
    check_case_on_reference(case, result, backend)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def numpy_backprop(x, y, weights, lr, epochs):
    """The algorithm of stdlib/learn.fleq's backprop_mlp2, two batches of 8 per epoch."""
    w1, b1, w2, b2 = (np.array(w, dtype=float) for w in weights)
    ones = np.ones((1, 8))
    losses = []
    for _ in range(epochs):
        total = 0.0
        for batch in (slice(0, 8), slice(8, 16)):
            xb, yb = x[:, batch], y[:, batch]
            h = sigmoid(w1 @ xb + b1 @ ones)
            err = w2 @ h + b2 @ ones - yb
            total += float(err[0] @ err[0]) / 8
            d_out = err * (2 / 8)
            d_z = (w2.T @ d_out) * h * (1 - h)
            w1, b1 = w1 - lr * (d_z @ xb.T), b1 - lr * (d_z @ ones.T)
            w2, b2 = w2 - lr * (d_out @ h.T), b2 - lr * (d_out @ ones.T)
        losses.append(total / 2)
    return (w1, b1, w2, b2), losses


@pytest.mark.parametrize("backend", BACKENDS)
def test_backprop_learns_like_numpy(backend):
    case, program = load("app_backprop")
    epochs = int(initial(program, "epochs"))
    if backend == "transformer":
        epochs = 40  # ~3,100 steps, a few minutes (the loss has fallen 15x); the README reports all 100
        program = with_value(program, "epochs", epochs)
    result = run_on(program, backend)
    assert result.halted
    x = np.hstack([initial(program, "xa"), initial(program, "xb")])
    y = np.hstack([initial(program, "ya"), initial(program, "yb")])
    start = [initial(program, name) for name in ("w1", "b1", "w2", "b2")]
    weights, losses = numpy_backprop(x, y, start, float(initial(program, "lr")), epochs)
    for name, want in zip(("w1", "b1", "w2", "b2"), weights):
        assert np.max(np.abs(result.memory[name] - want)) <= 1e-6, name
    first, last = float(result.memory["loss_first"]), float(result.memory["loss_last"])
    assert first == pytest.approx(losses[0], rel=1e-6) and last == pytest.approx(losses[-1], rel=1e-6)
    assert first >= 10 * last, (first, last)
    check_case_on_reference(case, result, backend)
