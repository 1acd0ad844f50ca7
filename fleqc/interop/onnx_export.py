"""A fleqc machine as an ONNX graph of standard operators, run by ONNX Runtime.

:func:`pass_model` writes one pass (every layer) as a graph from input ``X`` (batch, d, n) float64 to
output ``Y`` of the same shape; the weights are float64 initializers named as in
:mod:`fleqc.transformer.weights_io` (``layer{i}.query`` ...). The batch and n are symbolic axes; d is
fixed by the weights. The operators (ai.onnx, opset 17) are only:

- attention layer: ``MatMul`` (Q, K, V from X; scores; values times weights; the output projection),
  ``Reshape``, ``Transpose``, ``Add`` (the residual), and the weights over keys (axis -2):
  ``ReduceMax``, ``Sub``, ``Exp``, ``ReduceSum``, ``Div`` (softmax with the maximum subtracted, as
  :func:`fleqc.transformer.executor.attention_weights` computes it) or, with ``fused_softmax``,
  the single ``Softmax`` operator; hardmax is ``ReduceMax``, ``Sub``, ``Equal``, ``Cast``,
  ``ReduceSum``, ``Div``;
- feed-forward layer (``feed_forward="sparse"``, the default): W1 and W2 by their nonzeros, the rows
  grouped by their number of nonzeros rounded up to a power of two K (:func:`row_buckets`:
  initializers ``layer{i}.w1.cols{K}`` (rows, K) int64, ``.values{K}`` (rows, K, 1, 1) float64,
  ``.order`` (h,) int64, the same for ``w2``; ``layer{i}.b1`` (h, 1, 1), ``b2`` (d, 1, 1)), X taken
  rows first (``Transpose``), each product per group ``Gather`` (the rows its nonzeros read),
  ``Mul`` (the values), ``ReduceSum`` (over K), then the groups and a row of zeros (``Shape``,
  ``Concat``, ``ConstantOfShape``) stacked by ``Concat`` and put in order by ``Gather``; then
  ``Add`` (b1), ``Relu``, the second product, ``Add`` (b2), ``Transpose`` back, ``Add`` (the
  residual). The sums are the dense product's numbers: every partial sum of the machines'
  products is exact, so neither order nor the zeros left out change a bit (tests/test_interop_onnx.py
  compares every FLEQ pass with numpy's dense pass). The FLEQ machine's feed-forward weights are
  99.96 % zeros (n = 128, cell 8: 108 k nonzeros, a 2.3 GB dense form, past protobuf's 2 GB limit
  on one model); its model is about 45 MB, most of it the attention layers' dense weights. (A
  ``ScatterND`` with reduction add would be shorter, but with repeated indices and several threads
  ONNX Runtime's results varied from run to run: the classic machine's lockstep run differed from
  numpy's at a different step each time.)
- feed-forward layer (``feed_forward="dense"``): ``MatMul``, ``Add``, ``Relu``, ``MatMul``,
  ``Add``, ``Add``, with ``layer{i}.w1`` (h, d) ... dense (for small machines only: a model
  file holds at most 2 GB).

:func:`loop_model` wraps the same pass in an ONNX ``Loop`` that runs until every card of the batch
is at a fixed point or has made ``max_steps`` changing passes (input ``max_steps``, int64 scalar);
outputs ``Y``, ``steps`` (batch,) int64 and ``halted`` (batch,) bool, counted as
:func:`fleqc.transformer.run_batch` counts them.

:class:`OnnxMachine` runs either graph in ONNX Runtime (CPU) with the numpy interface of the
executor: :meth:`~OnnxMachine.pass_numpy`, :meth:`~OnnxMachine.run`, :meth:`~OnnxMachine.run_batch`.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from fleqc.transformer.executor import MODES, BatchOutcome, RunOutcome
from fleqc.transformer.layers import AttentionLayer, LoopedTransformer, SparseMatrix

OPSET = 17
DOUBLE = TensorProto.DOUBLE
FEED_FORWARD = ("sparse", "dense")  # the feed-forward layers' form (module docstring)


class _Graph:
    """Collects nodes and initializers; names every intermediate uniquely."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def op(self, op_type: str, inputs: list[str], stem: str, **attrs) -> str:
        out = self.name(stem)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def const(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name=name))
        return name


def row_buckets(matrix: SparseMatrix) -> tuple[list[tuple[int, np.ndarray, np.ndarray]], np.ndarray]:
    """The rows of ``matrix`` grouped by their number of nonzeros, rounded up to a power of two K:
    per group (K, cols (rows, K), values (rows, K)), padded with a row's own first column and the
    value 0.0; and ``order`` (h,): row r's place among the groups' rows stacked in order, or their
    total (a row of zeros) for a row without nonzeros."""
    counts = np.diff(matrix.ptr)
    widths = np.where(counts > 0, 1 << np.ceil(np.log2(np.maximum(counts, 1))).astype(np.int64), 0)
    order = np.full(matrix.shape[0], int(np.count_nonzero(counts)), dtype=np.int64)
    groups, placed = [], 0
    for width in sorted(set(widths[widths > 0].tolist())):
        rows = np.flatnonzero(widths == width)
        cols = np.empty((rows.size, width), dtype=np.int64)
        values = np.zeros((rows.size, width), dtype=np.float64)
        for k, r in enumerate(rows):
            lo, hi = matrix.ptr[r], matrix.ptr[r + 1]
            cols[k, :] = matrix.idx[lo]
            cols[k, : hi - lo] = matrix.idx[lo:hi]
            values[k, : hi - lo] = matrix.val[lo:hi]
        order[rows] = placed + np.arange(rows.size)
        placed += rows.size
        groups.append((int(width), cols, values))
    return groups, order


def sparse_times(g: _Graph, matrix: str, widths: Sequence[int], X: str, columns: str) -> str:
    """W X for W stored by :func:`row_buckets` (initializers ``{matrix}.cols{K}``, ``.values{K}``
    (rows, K, 1, 1) per group, ``.order``) and X rows first (d, batch, n): per group ``Gather`` the
    rows of X its nonzeros read (rows, K, batch, n), ``Mul`` by the values, ``ReduceSum`` over K;
    the groups' sums and a row of zeros (``Shape``, ``Concat``, ``ConstantOfShape``) stacked
    (``Concat``) and put in W's row order (``Gather`` by ``order``). Every output row is written
    once (no scatter, whose adds of repeated indices ONNX Runtime may run on several threads at
    once), and its sum is the row's terms and exact zeros."""
    parts = []
    for width in widths:
        read = g.op("Gather", [X, f"{matrix}.cols{width}"], "read", axis=0)
        terms = g.op("Mul", [read, f"{matrix}.values{width}"], "terms")
        parts.append(g.op("ReduceSum", [terms, "terms_axis"], "sums", keepdims=0))
    zeros = g.op("ConstantOfShape", [g.op("Concat", ["one_row", columns], "zero_shape", axis=0)], "zero_row",
                 value=numpy_helper.from_array(np.array([0.0])))
    stacked = g.op("Concat", parts + [zeros], "stacked", axis=0)
    return g.op("Gather", [stacked, f"{matrix}.order"], "rows", axis=0)


def _weights(model: LoopedTransformer, g: _Graph, mode: str, fused_softmax: bool, feed_forward: str):
    """Add the weights as initializers; return ``layer_pass(g, X) -> Y`` that adds one pass's nodes."""
    if feed_forward not in FEED_FORWARD:
        raise ValueError(f"unknown feed-forward form {feed_forward!r}; use one of {FEED_FORWARD}")
    specs = []
    for i, layer in enumerate(model.layers):
        if isinstance(layer, AttentionLayer):
            H, dk, d = layer.query.shape
            dv = layer.value.shape[1]
            specs.append(("attention", i, H, dk, dv, d))
            g.const(f"layer{i}.query", layer.query.reshape(H * dk, d))
            g.const(f"layer{i}.key", layer.key.reshape(H * dk, d))
            g.const(f"layer{i}.value", layer.value.reshape(H * dv, d))
            g.const(f"layer{i}.output", layer.output.transpose(1, 0, 2).reshape(d, H * dv))
            g.const(f"layer{i}.shape_qk", np.array([0, H, dk, -1], dtype=np.int64))
            g.const(f"layer{i}.shape_v", np.array([0, H, dv, -1], dtype=np.int64))
            g.const(f"layer{i}.shape_heads", np.array([0, H * dv, -1], dtype=np.int64))
        elif feed_forward == "dense":
            specs.append(("feed_forward", i))
            g.const(f"layer{i}.w1", layer.w1)
            g.const(f"layer{i}.b1", layer.b1.reshape(-1, 1))
            g.const(f"layer{i}.w2", layer.w2)
            g.const(f"layer{i}.b2", layer.b2.reshape(-1, 1))
        else:
            widths = {}
            for name, matrix in (("w1", layer.w1_sparse), ("w2", layer.w2_sparse)):
                groups, order = row_buckets(matrix)
                for width, cols, values in groups:
                    g.const(f"layer{i}.{name}.cols{width}", cols)
                    g.const(f"layer{i}.{name}.values{width}", values.reshape(*values.shape, 1, 1))
                g.const(f"layer{i}.{name}.order", order)
                widths[name] = [width for width, _, _ in groups]
            specs.append(("sparse_feed_forward", i, widths))
            g.const(f"layer{i}.b1", layer.b1.reshape(-1, 1, 1))
            g.const(f"layer{i}.b2", layer.b2.reshape(-1, 1, 1))
    if not (mode == "softmax" and fused_softmax):
        g.const("keys_axis", np.array([-2], dtype=np.int64))
    if feed_forward == "sparse":
        g.const("terms_axis", np.array([1], dtype=np.int64))
        g.const("one_row", np.array([1], dtype=np.int64))

    def weights_over_keys(g: _Graph, scores: str) -> str:
        if mode == "softmax" and fused_softmax:
            return g.op("Softmax", [scores], "softmax", axis=-2)
        top = g.op("ReduceMax", [scores], "max", axes=[-2], keepdims=1)  # opset 17: axes attribute
        shifted = g.op("Sub", [scores, top], "shifted")
        if mode == "softmax":
            raw = g.op("Exp", [shifted], "exp")
        else:
            zero = g.const(g.name("zero"), np.array(0.0))
            raw = g.op("Cast", [g.op("Equal", [shifted, zero], "is_max")], "ties", to=DOUBLE)
        total = g.op("ReduceSum", [raw, "keys_axis"], "sum", keepdims=1)
        return g.op("Div", [raw, total], "weights")

    def layer_pass(g: _Graph, X: str) -> str:
        for spec in specs:
            i = spec[1]
            p = f"layer{i}."
            if spec[0] == "attention":
                Q = g.op("Reshape", [g.op("MatMul", [p + "query", X], "q"), p + "shape_qk"], "Q")
                K = g.op("Reshape", [g.op("MatMul", [p + "key", X], "k"), p + "shape_qk"], "K")
                V = g.op("Reshape", [g.op("MatMul", [p + "value", X], "v"), p + "shape_v"], "V")
                scores = g.op("MatMul", [g.op("Transpose", [K], "Kt", perm=[0, 1, 3, 2]), Q], "scores")
                A = weights_over_keys(g, scores)
                heads = g.op("Reshape", [g.op("MatMul", [V, A], "heads"), p + "shape_heads"], "heads_flat")
                X = g.op("Add", [X, g.op("MatMul", [p + "output", heads], "attn_out")], "resid")
            elif spec[0] == "feed_forward":
                hidden = g.op("Relu", [g.op("Add", [g.op("MatMul", [p + "w1", X], "pre"), p + "b1"], "pre_b")], "hidden")
                out = g.op("Add", [g.op("MatMul", [p + "w2", hidden], "mlp"), p + "b2"], "mlp_b")
                X = g.op("Add", [X, out], "resid")
            else:
                rows_first = g.op("Transpose", [X], "X_rows", perm=[1, 0, 2])  # (d, batch, n)
                columns = g.op("Shape", [rows_first], "batch_n", start=1)  # [batch, n]
                pre = sparse_times(g, p + "w1", spec[2]["w1"], rows_first, columns)
                hidden = g.op("Relu", [g.op("Add", [pre, p + "b1"], "pre_b")], "hidden")
                out = g.op("Add", [sparse_times(g, p + "w2", spec[2]["w2"], hidden, columns), p + "b2"], "mlp_b")
                X = g.op("Add", [X, g.op("Transpose", [out], "mlp_out", perm=[1, 0, 2])], "resid")
        return X

    return layer_pass


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown attention mode {mode!r}; use one of {MODES}")


def _metadata(model: LoopedTransformer, mode: str, kind: str) -> dict[str, str]:
    import json

    return {"fleqc.kind": kind, "fleqc.mode": mode, "fleqc.row_labels": json.dumps(list(model.row_labels)),
            "fleqc.metadata": json.dumps(model.metadata)}


def _x_info(name: str, d: int) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, DOUBLE, ["batch", d, "n"])


def _finish(graph: onnx.GraphProto, model: LoopedTransformer, mode: str, kind: str) -> onnx.ModelProto:
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="fleqc")
    proto.ir_version = min(proto.ir_version, 9)  # readable by older runtimes too
    helper.set_model_props(proto, _metadata(model, mode, kind))
    onnx.checker.check_model(proto, full_check=True)
    return proto


def pass_model(model: LoopedTransformer, mode: str = "softmax", fused_softmax: bool = False,
               feed_forward: str = "sparse") -> onnx.ModelProto:
    """One pass (every layer of ``model``) as an ONNX model: X (batch, d, n) -> Y (batch, d, n)."""
    _check_mode(mode)
    g = _Graph()
    layer_pass = _weights(model, g, mode, fused_softmax, feed_forward)
    g.nodes.append(helper.make_node("Identity", [layer_pass(g, "X")], ["Y"], name="Y"))
    graph = helper.make_graph(g.nodes, "fleqc_pass", [_x_info("X", model.width)], [_x_info("Y", model.width)],
                              g.initializers)
    return _finish(graph, model, mode, "pass")


def loop_model(model: LoopedTransformer, mode: str = "softmax", fused_softmax: bool = False,
               feed_forward: str = "sparse") -> onnx.ModelProto:
    """The whole run as one ONNX ``Loop`` (see the module docstring): inputs X and max_steps."""
    _check_mode(mode)
    g = _Graph()
    layer_pass = _weights(model, g, mode, fused_softmax, feed_forward)
    g.const("axes_dn", np.array([1, 2], dtype=np.int64))
    g.const("one_step", np.array(1, dtype=np.int64))
    # loop body: (iteration, cond, X, steps, halted) -> (cond, X, steps, halted)
    body = _Graph()
    body._count = 10_000  # names distinct from the outer graph's
    Y = layer_pass(body, "X_in")
    same = body.op("Equal", [Y, "X_in"], "same")
    unchanged = body.op("Cast", [body.op("ReduceMin", [body.op("Cast", [same], "same_i", to=TensorProto.INT64)],
                                                       "all_same", axes=[1, 2], keepdims=0)], "fixed",
                        to=TensorProto.BOOL)
    may_move = body.op("Less", ["steps_in", "max_steps"], "may_move")
    moving = body.op("And", [body.op("Not", [unchanged], "changed"), may_move], "moving")
    moving_3d = body.op("Unsqueeze", [moving, "axes_dn"], "moving_3d")
    body.nodes.append(helper.make_node("Where", [moving_3d, Y, "X_in"], ["X_out"], name="X_out"))
    body.nodes.append(helper.make_node("Add", ["steps_in", body.op("Cast", [moving], "moved", to=TensorProto.INT64)],
                                       ["steps_out"], name="steps_out"))
    body.nodes.append(helper.make_node("Identity", [unchanged], ["halted_out"], name="halted_out"))
    any_moving = body.op("ReduceMax", [body.op("Cast", [moving], "moving_i", to=TensorProto.INT64)], "any", keepdims=0)
    body.nodes.append(helper.make_node("Cast", [any_moving], ["cond_out"], name="cond_out", to=TensorProto.BOOL))
    d = model.width
    body_graph = helper.make_graph(
        body.nodes, "fleqc_pass_body",
        [helper.make_tensor_value_info("iteration", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         _x_info("X_in", d),
         helper.make_tensor_value_info("steps_in", TensorProto.INT64, ["batch"]),
         helper.make_tensor_value_info("halted_in", TensorProto.BOOL, ["batch"])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         _x_info("X_out", d),
         helper.make_tensor_value_info("steps_out", TensorProto.INT64, ["batch"]),
         helper.make_tensor_value_info("halted_out", TensorProto.BOOL, ["batch"])],
        body.initializers,
    )
    # outer graph: trip count max_steps + 1 (the last pass only tells whether the card halted)
    batch = g.op("Gather", [g.op("Shape", ["X"], "shape"), g.const("zero_index", np.array([0], dtype=np.int64))],
                 "batch")
    steps0 = g.op("ConstantOfShape", [batch], "steps0", value=numpy_helper.from_array(np.array([0], dtype=np.int64)))
    halted0 = g.op("Cast", [steps0], "halted0", to=TensorProto.BOOL)
    trips = g.op("Add", ["max_steps", "one_step"], "trips")
    g.const("true", np.array(True))
    g.nodes.append(helper.make_node("Loop", [trips, "true", "X", steps0, halted0], ["Y", "steps", "halted"],
                                    name="run", body=body_graph))
    graph = helper.make_graph(
        g.nodes, "fleqc_run",
        [_x_info("X", d), helper.make_tensor_value_info("max_steps", TensorProto.INT64, [])],
        [_x_info("Y", d), helper.make_tensor_value_info("steps", TensorProto.INT64, ["batch"]),
         helper.make_tensor_value_info("halted", TensorProto.BOOL, ["batch"])],
        g.initializers,
    )
    return _finish(graph, model, mode, "loop")


def operators(proto: onnx.ModelProto) -> set[str]:
    """Every operator type in the model, subgraphs included."""
    found: set[str] = set()

    def walk(graph: onnx.GraphProto) -> None:
        for node in graph.node:
            found.add(node.op_type)
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    walk(attr.g)

    walk(proto.graph)
    return found


def serialize(proto: onnx.ModelProto) -> bytes:
    """The bytes of the model file (what ``onnx.save_model`` writes); fleqc.cli.export writes them
    under fleqc's output policy (fleqc.safe_io), which this module, seeing models only, does not know."""
    return proto.SerializeToString()


class OnnxMachine:
    """An ONNX pass model (and, on first use, its Loop model) in an ONNX Runtime CPU session."""

    def __init__(self, model: LoopedTransformer, *, mode: str = "softmax", fused_softmax: bool = False,
                 threads: Optional[int] = None, feed_forward: str = "sparse") -> None:
        self.model, self.mode, self.fused_softmax, self.feed_forward = model, mode, fused_softmax, feed_forward
        self.threads = threads
        self.proto = pass_model(model, mode, fused_softmax, feed_forward)
        self.session = self._session(self.proto)
        self._loop_session = None

    def _session(self, proto: onnx.ModelProto):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only
        if self.threads:
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
        return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])

    def pass_numpy(self, X: np.ndarray) -> np.ndarray:
        """One pass of a card (d, n) or a batch (B, d, n)."""
        X = np.asarray(X, dtype=np.float64)
        single = X.ndim == 2
        Y = self.session.run(["Y"], {"X": X[None] if single else X})[0]
        return Y[0] if single else Y

    def run(self, X: np.ndarray, *, max_steps: int, check: Optional[Callable[[np.ndarray, int], None]] = None,
            on_step: Optional[Callable[[int, np.ndarray], None]] = None) -> RunOutcome:
        """Loop the pass model from Python, as :func:`fleqc.transformer.run` (with its checks)."""
        X = np.asarray(X, dtype=np.float64)[None]
        steps = 0
        while True:
            Y = self.session.run(["Y"], {"X": X})[0]
            if np.array_equal(Y, X):
                return RunOutcome(X[0], steps, halted=True)
            if steps == max_steps:
                return RunOutcome(X[0], steps, halted=False)
            steps += 1
            if check is not None:
                check(Y[0], steps)
            if on_step is not None:
                on_step(steps, Y[0])
            X = Y

    def run_batch(self, X: np.ndarray, *, max_steps: int) -> BatchOutcome:
        """The whole run inside ONNX Runtime: the ``Loop`` model on a batch (B, d, n)."""
        if self._loop_session is None:
            self._loop_session = self._session(loop_model(self.model, self.mode, self.fused_softmax,
                                                          self.feed_forward))
        Y, steps, halted = self._loop_session.run(
            ["Y", "steps", "halted"], {"X": np.asarray(X, dtype=np.float64), "max_steps": np.array(max_steps, np.int64)})
        return BatchOutcome(Y, steps, halted)
