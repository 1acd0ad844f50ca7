"""The weights file holds the nonzeros (fleqc.transformer.weights_io): it reads back bit for bit for
every machine, without making the dense matrices; a dense (version 3) file still reads; nonzeros
whose positions do not describe a matrix are refused, with the digest recomputed, never a traceback."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fleqc.errors import ErrorCode, FleqError
from fleqc.machines.classic.config import ClassicConfig
from fleqc.machines.fleq.config import FleqConfig
from fleqc.machines.subleq.config import SubleqConfig
from fleqc.machines import weights_for
from fleqc.transformer.layers import AttentionLayer
from fleqc.transformer.weights_io import digest, load_weights, save_weights
from tests.support.weights import assert_same_weights

CONFIGS = [SubleqConfig(columns=32, bits=16), ClassicConfig(bits=16, memory=64, input_tape=8, output_tape=8),
           FleqConfig(columns=64, cell=2)]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.kind)
def test_every_machine_reads_back_bit_for_bit_without_its_dense_matrices(tmp_path, config):
    model = weights_for(config)
    save_weights(model, tmp_path / "w.npz")
    loaded = load_weights(tmp_path / "w.npz")
    assert_same_weights(loaded, model)
    assert not any(getattr(layer, "is_dense", False) for layer in loaded.layers)


def _arrays(path) -> tuple[dict, dict]:
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    return json.loads(str(arrays.pop("meta")[()])), arrays


def _write(path, meta, arrays) -> None:
    meta["sha256"] = digest(arrays, meta)
    np.savez(path, meta=np.array(json.dumps(meta)), **arrays)


@pytest.fixture(scope="module")
def subleq_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "subleq.npz"
    save_weights(weights_for(CONFIGS[0]), path)
    return path


def test_a_dense_version_3_file_still_reads(subleq_file, tmp_path):
    model = weights_for(CONFIGS[0])
    meta, _ = _arrays(subleq_file)
    arrays = {}
    for i, layer in enumerate(model.layers):
        names = ("query", "key", "value", "output") if isinstance(layer, AttentionLayer) else ("w1", "b1", "w2", "b2")
        arrays.update({f"layer{i}.{p}": np.asarray(getattr(layer, p), dtype=np.float64) for p in names})
    meta["version"] = 3
    for spec in meta["layers"]:
        spec.pop("shapes", None), spec.pop("shape", None)
    _write(tmp_path / "v3.npz", meta, arrays)
    assert_same_weights(load_weights(tmp_path / "v3.npz"), model)


def _first(kind: str, meta: dict) -> int:
    return next(i for i, spec in enumerate(meta["layers"]) if spec["kind"] == kind)


def _edit_attention(edit):
    def apply(meta, arrays):
        i = _first("attention", meta)
        edit(meta["layers"][i], arrays, f"layer{i}.value")
    return apply


def _edit_feed_forward(edit):
    def apply(meta, arrays):
        i = _first("feed_forward", meta)
        edit(meta["layers"][i], arrays, f"layer{i}.w1")
    return apply


def _set(arrays, name, value):
    arrays[name] = np.asarray(value, dtype=arrays[name].dtype)


EDITS = {
    "a position past the end": _edit_attention(lambda s, a, n: _set(a, f"{n}.at", np.append(a[f"{n}.at"][:-1], 10**9))),
    "a negative position": _edit_attention(lambda s, a, n: _set(a, f"{n}.at", np.append(-1, a[f"{n}.at"][1:]))),
    "positions out of order": _edit_attention(lambda s, a, n: _set(a, f"{n}.at", a[f"{n}.at"][::-1])),
    "positions and values of two lengths": _edit_attention(lambda s, a, n: _set(a, f"{n}.val", a[f"{n}.val"][1:])),
    "a NaN value": _edit_attention(lambda s, a, n: _set(a, f"{n}.val", np.append(np.nan, a[f"{n}.val"][1:]))),
    "a shape of 2^40 entries": _edit_attention(lambda s, a, n: s["shapes"].update(value=[1 << 20, 1 << 10, 1 << 10])),
    "a shape that is not three integers": _edit_attention(lambda s, a, n: s["shapes"].update(value=[2, "x"])),
    "no shapes": _edit_attention(lambda s, a, n: s.pop("shapes")),
    "row pointers that do not end at the entry count":
        _edit_feed_forward(lambda s, a, n: _set(a, f"{n}.ptr", a[f"{n}.ptr"] + 1)),
    "row pointers that go back": _edit_feed_forward(lambda s, a, n: _set(a, f"{n}.ptr", np.r_[0, a[f"{n}.ptr"][-1],
                                                                                               a[f"{n}.ptr"][2:]])),
    "a column past the width": _edit_feed_forward(lambda s, a, n: _set(a, f"{n}.idx", a[f"{n}.idx"] + 10**6)),
    "columns out of order in a row": _edit_feed_forward(lambda s, a, n: _set(a, f"{n}.idx", a[f"{n}.idx"][::-1])),
    "a hidden width that does not match the biases": _edit_feed_forward(lambda s, a, n: s.update(shape=[1, 1])),
    "a float array of positions": _edit_feed_forward(lambda s, a, n: a.update({f"{n}.idx": a[f"{n}.idx"] * 1.0})),
}


@pytest.mark.parametrize("name", EDITS)
def test_nonzeros_that_describe_no_matrix_are_refused_with_the_digest_recomputed(subleq_file, tmp_path, name):
    meta, arrays = _arrays(subleq_file)
    EDITS[name](meta, arrays)
    _write(tmp_path / "edited.npz", meta, arrays)
    with pytest.raises(FleqError) as error:
        load_weights(tmp_path / "edited.npz")
    assert error.value.code == ErrorCode.BAD_WEIGHTS
    assert str(tmp_path / "edited.npz") in error.value.message
