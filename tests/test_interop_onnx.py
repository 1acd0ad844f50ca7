"""The machines as ONNX graphs of standard operators, run by ONNX Runtime (fleqc.interop.onnx_export).

One pass per graph (and the whole run as an ONNX Loop): SUBLEQ cards in lockstep with the reference
and numpy's pass, bit for bit, both modes (and with the fused Softmax operator); FLEQ cards equal to
numpy's dense pass bit for bit. Skipped without the extra ``fleqc[onnx]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed: pip install 'fleqc[onnx]'")
pytest.importorskip("onnxruntime", reason="the onnx extra is not installed: pip install 'fleqc[onnx]'")

from click.testing import CliRunner  # noqa: E402

import fleqc  # noqa: E402
from fleqc.cli import main  # noqa: E402
from fleqc.interop.onnx_export import OnnxMachine, loop_model, operators, pass_model  # noqa: E402
from fleqc.machines.subleq.config import SubleqConfig  # noqa: E402
from fleqc.machines import program_to_card  # noqa: E402
from fleqc.machines import weights_for  # noqa: E402
from fleqc.transformer import forward, run, run_batch  # noqa: E402
from tests.support.interop_lockstep import fleq_engine_lockstep, subleq_engine_lockstep  # noqa: E402

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
# Plain tensor algebra of the default ai.onnx domain; nothing that knows about programs.
STANDARD = {"MatMul", "Add", "Sub", "Div", "Exp", "ReduceMax", "ReduceSum", "Relu", "Reshape", "Transpose",
            "Identity", "Softmax", "Equal", "Cast"}
LOOP_EXTRA = {"Loop", "ReduceMin", "Less", "Not", "And", "Unsqueeze", "Where", "Shape", "Gather", "ConstantOfShape"}


def machine(name: str, mode: str = "softmax", fused: bool = False):
    program = fleqc.compile(str(SAMPLES / f"{name}.fleq"))
    card = program_to_card(program)
    return program, card, OnnxMachine(weights_for(card.config), mode=mode, fused_softmax=fused, threads=1)


# The feed-forward layers as their nonzeros (the default form)
SPARSE = {"Gather", "Mul", "Shape", "Concat", "ConstantOfShape"}


def nonzeros_as_dense(weights: dict, name: str, shape: tuple) -> np.ndarray:
    """The dense matrix that the initializers ``name.cols{K}``, ``.values{K}`` (the groups of rows, K
    ascending) and ``.order`` describe."""
    widths = sorted(int(k[len(name) + 5:]) for k in weights if k.startswith(name + ".cols"))
    cols = [weights[f"{name}.cols{w}"] for w in widths]
    values = [weights[f"{name}.values{w}"][:, :, 0, 0] for w in widths]
    dense = np.zeros(shape)
    stacked = [(c, v) for cs, vs in zip(cols, values) for c, v in zip(cs, vs)]
    for row, place in enumerate(weights[name + ".order"]):
        if place < len(stacked):
            np.add.at(dense[row], stacked[place][0], stacked[place][1])
        else:
            assert place == len(stacked)  # the row of zeros
    return dense


@pytest.mark.parametrize("feed_forward", ["sparse", "dense"])
@pytest.mark.parametrize("mode,fused", [("softmax", False), ("softmax", True), ("hardmax", False)])
def test_graph_of_standard_operators_with_the_same_weights(mode, fused, feed_forward):
    model = weights_for(SubleqConfig(columns=32, bits=16))
    proto = pass_model(model, mode, fused, feed_forward)
    onnx.checker.check_model(proto, full_check=True)
    assert operators(proto) <= STANDARD | (SPARSE if feed_forward == "sparse" else set())
    assert ("Gather" in operators(proto)) == (feed_forward == "sparse")
    assert ("Softmax" in operators(proto)) == fused and ("Exp" in operators(proto)) == (mode == "softmax" and not fused)
    assert all(node.domain in ("", "ai.onnx") for node in proto.graph.node)
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    assert all(w.dtype in (np.float64, np.int64) for w in weights.values())
    assert np.array_equal(weights["layer0.query"], model.layers[0].query.reshape(-1, model.width))
    if feed_forward == "dense":
        assert np.array_equal(weights["layer2.w1"], model.layers[2].w1)
    else:
        for name in ("w1", "w2"):
            matrix = getattr(model.layers[2], name)
            assert np.array_equal(nonzeros_as_dense(weights, f"layer2.{name}", matrix.shape), matrix)
        assert np.array_equal(weights["layer2.b1"][:, 0, 0], model.layers[2].b1)
    X, = proto.graph.input
    assert [d.dim_param or d.dim_value for d in X.type.tensor_type.shape.dim] == ["batch", model.width, "n"]
    assert X.type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    loop = loop_model(model, mode, fused, feed_forward)
    onnx.checker.check_model(loop, full_check=True)
    assert operators(loop) <= STANDARD | LOOP_EXTRA | (SPARSE if feed_forward == "sparse" else set())


def test_the_classic_machine_in_lockstep_on_several_threads():
    """ONNX Runtime with its default threads (as ``fleqc run --backend onnx``): the classic machine's
    card equals numpy's pass after every pass (a scatter-add form of the feed-forward layers gave
    different results from run to run here)."""
    card = fleqc.build(str(SAMPLES / "classic_hello.sq"))
    model = weights_for(card.config)
    engine = OnnxMachine(model)
    X = card.X
    for _ in range(150):
        Y = engine.pass_numpy(X)
        assert np.array_equal(Y, forward(model, X))
        X = Y


@pytest.mark.parametrize("feed_forward", ["sparse", "dense"])
def test_both_feed_forward_forms_equal_numpys_pass(feed_forward):
    """The nonzeros' Gather / Mul / ReduceSum and the dense MatMul give numpy's pass, bit for bit, one
    card and a batch, through the pass model and the Loop model."""
    cards = [fleqc.build(str(SAMPLES / f"{name}.fleq"), columns=64) for name in ("gcd", "factorial")]
    model = weights_for(cards[0].config)
    engine = OnnxMachine(model, threads=1, feed_forward=feed_forward)
    X = np.stack([c.X for c in cards])
    for _ in range(5):
        Y = engine.pass_numpy(X)
        assert np.array_equal(Y, forward(model, X))
        assert np.array_equal(engine.pass_numpy(X[0]), Y[0])
        X = Y
    ours, theirs = engine.run_batch(X, max_steps=500), run_batch(model, X, max_steps=500)
    assert np.array_equal(ours.steps, theirs.steps) and np.array_equal(ours.X, theirs.X)


@pytest.mark.parametrize("mode,fused", [("softmax", False), ("softmax", True), ("hardmax", False)])
@pytest.mark.parametrize("name", ["gcd", "giannou_reverse_list"])
def test_subleq_samples_in_lockstep(name, mode, fused):
    program, card, engine = machine(name, mode, fused)
    subleq_engine_lockstep(program, card, engine.pass_numpy, mode, max_steps=200)


def test_fleq_sample_in_lockstep():
    program, card, engine = machine("fleq_polynomial")
    assert fleq_engine_lockstep(program, card, engine.pass_numpy, max_steps=20) == (6, True)


def test_the_tables_in_lockstep_bit_for_bit():
    """recip, sqrt, log, exp and sigmoid at their edges (tests/test_fleq_tables.py): ONNX Runtime's pass gives
    the reference's bits, as numpy's does (their sums are exact in any order)."""
    from tests.test_fleq_tables import tables_program

    program = tables_program()
    card = program_to_card(program)
    engine = OnnxMachine(weights_for(card.config), threads=1)
    assert fleq_engine_lockstep(program, card, engine.pass_numpy, max_steps=10) == (5, True)


@pytest.mark.parametrize("mode", ["softmax", "hardmax"])
def test_the_whole_run_as_an_onnx_loop(mode):
    cards = [fleqc.build(str(SAMPLES / f"{name}.fleq"), columns=64) for name in ("gcd", "factorial", "multiply")]
    model = weights_for(cards[0].config)
    engine = OnnxMachine(model, mode=mode, threads=1)
    X = np.stack([c.X for c in cards])
    for max_steps in (0, 30, 500):
        ours, theirs = engine.run_batch(X, max_steps=max_steps), run_batch(model, X, max_steps=max_steps, mode=mode)
        assert np.array_equal(ours.steps, theirs.steps) and np.array_equal(ours.halted, theirs.halted)
        assert np.array_equal(ours.X, theirs.X)
    one = engine.run(cards[0].X, max_steps=500)
    ref = run(model, cards[0].X, max_steps=500, mode=mode)
    assert (one.steps, one.halted) == (ref.steps, ref.halted) and np.array_equal(one.X, ref.X)


def test_cli_export_and_run(tmp_path):
    runner = CliRunner()
    out = runner.invoke(main, ["export", "--onnx", str(tmp_path / "m.onnx"), "--columns", "32"])
    assert out.exit_code == 0, out.output
    assert "one pass" in out.output and "MatMul" in out.output
    out = runner.invoke(main, ["export", "--onnx", str(tmp_path / "r.onnx"), "--loop", "--card",
                               str(tmp_path / "gcd.npz")])
    assert out.exit_code != 0  # no such card yet
    fleqc.build(str(SAMPLES / "gcd.fleq")).save(tmp_path / "gcd.npz")
    out = runner.invoke(main, ["export", "--onnx", str(tmp_path / "r.onnx"), "--loop", "--card",
                               str(tmp_path / "gcd.npz")])
    assert out.exit_code == 0 and "the whole run (Loop)" in out.output, out.output
    import onnxruntime as ort

    session = ort.InferenceSession(str(tmp_path / "r.onnx"), providers=["CPUExecutionProvider"])
    card = fleqc.load_card(tmp_path / "gcd.npz")
    Y, steps, halted = session.run(None, {"X": card.X[None], "max_steps": np.array(1000, dtype=np.int64)})
    assert steps.tolist() == [67] and halted.tolist() == [True]
    assert fleqc.decode(card, Y[0])["a"] == 21
    assert runner.invoke(main, ["export", "--columns", "32"]).exit_code == 2  # nothing to write


def test_one_sample_identical_on_numpy_torch_and_onnx_through_the_cli():
    pytest.importorskip("torch", reason="the torch extra is not installed")
    runner = CliRunner()
    outputs = {}
    for backend in ("numpy", "torch", "onnx", "reference"):
        out = runner.invoke(main, ["run", str(SAMPLES / "gcd.fleq"), "--backend", backend, "--json"])
        assert out.exit_code == 0, out.output
        outputs[backend] = out.stdout
    assert len(set(outputs.values())) == 1
    assert '"steps": 67' in outputs["onnx"]
