"""Weights as .safetensors with the row labels, row blocks and machine in the header
(fleqc.interop.safetensors_io); loading refuses a file whose digest or labels do not match.
Skipped without the extra ``fleqc[safetensors]``."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("safetensors", reason="the safetensors extra is not installed: pip install 'fleqc[safetensors]'")

from click.testing import CliRunner  # noqa: E402
from safetensors.numpy import load_file, save_file  # noqa: E402

import fleqc  # noqa: E402
from fleqc.cli import main  # noqa: E402
from fleqc.errors import ErrorCode, FleqError  # noqa: E402
from fleqc.interop.safetensors_io import (  # noqa: E402
    _digest,
    load_safetensors,
    read_metadata,
    save_safetensors,
    tensors_and_metadata,
    torch_state_dict_names,
)
from fleqc.machines.fleq.config import FleqConfig  # noqa: E402
from fleqc.machines.subleq.config import SubleqConfig
from fleqc.machines import weights_for  # noqa: E402
from fleqc.transformer import forward  # noqa: E402

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


@pytest.fixture(scope="module")
def model():
    return weights_for(SubleqConfig(columns=32, bits=16))


def same_model(a, b) -> bool:
    arrays_a, meta_a = tensors_and_metadata(a)
    arrays_b, meta_b = tensors_and_metadata(b)
    return meta_a == meta_b and all(np.array_equal(arrays_a[k], arrays_b[k]) for k in arrays_a)


def rewrite_header(path: Path, edit) -> None:
    """Change the JSON header of a safetensors file in place (the tensors' bytes untouched)."""
    data = path.read_bytes()
    size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + size])
    edit(header)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + size:])


def test_round_trip_with_labels_in_the_header(model, tmp_path):
    path = tmp_path / "m.safetensors"
    save_safetensors(model, path)
    loaded = load_safetensors(path)
    assert same_model(model, loaded) and loaded.row_labels == model.row_labels
    meta = read_metadata(path)
    labels = json.loads(meta["row_labels"])
    blocks = {name: (start, size) for name, start, size in json.loads(meta["row_blocks"])}
    assert labels[blocks["pc"][0]] == "pc[0]" and blocks["mem"][1] == 16 and blocks["one"] == (0, 1)
    assert json.loads(meta["machine"])["machine"] == {"columns": 32, "bits": 16, "scratch": 1, "kind": "subleq"}
    tensors = load_file(path)  # any safetensors reader sees plain float64 tensors
    assert tensors["layer0.query"].dtype == np.float64 and len(tensors) == 4 * len(model.layers)
    card = fleqc.build(str(SAMPLES / "gcd.fleq"))
    assert np.array_equal(forward(loaded, card.X), forward(model, card.X))


def test_a_changed_weight_is_refused(model, tmp_path):
    path = tmp_path / "m.safetensors"
    save_safetensors(model, path)
    tensors, meta = load_file(path), read_metadata(path)
    tensors["layer2.w1"][0, 0] += 2.0**-40
    save_file(tensors, path, metadata=meta)
    with pytest.raises(FleqError, match="digest") as error:
        load_safetensors(path)
    assert error.value.code == ErrorCode.BAD_WEIGHTS


def test_changed_labels_are_refused(model, tmp_path):
    path = tmp_path / "m.safetensors"
    save_safetensors(model, path)

    def swap(header):
        labels = json.loads(header["__metadata__"]["row_labels"])
        labels[3], labels[4] = labels[4], labels[3]
        header["__metadata__"]["row_labels"] = json.dumps(labels)

    rewrite_header(path, swap)
    with pytest.raises(FleqError, match="digest"):
        load_safetensors(path)
    # the same change with a recomputed digest: refused because the labels are not the machine's
    meta = read_metadata(path)
    meta["sha256"] = _digest(load_file(path), meta)
    save_file(load_file(path), path, metadata=meta)
    with pytest.raises(FleqError, match="row labels do not match"):
        load_safetensors(path)


def test_labels_other_than_expected_are_refused(model, tmp_path):
    path = tmp_path / "m.safetensors"
    save_safetensors(model, path)
    other = weights_for(SubleqConfig(columns=32, bits=8))
    with pytest.raises(FleqError, match="row labels do not match"):
        load_safetensors(path, expected_labels=other.row_labels)
    assert same_model(load_safetensors(path, expected_labels=model.row_labels), model)


def test_foreign_and_broken_files_are_refused(model, tmp_path):
    path = tmp_path / "x.safetensors"
    path.write_bytes(b"not a safetensors file at all")
    with pytest.raises(FleqError, match="not a readable safetensors file"):
        load_safetensors(path)
    save_file({"w": np.zeros(3)}, path, metadata={"format": "something-else"})
    with pytest.raises(FleqError, match="not a fleqc weights file"):
        load_safetensors(path)
    save_safetensors(model, path)
    rewrite_header(path, lambda h: h["__metadata__"].update(version="99"))
    with pytest.raises(FleqError, match="version"):
        load_safetensors(path)


def test_torch_parameter_names_map_both_ways(model, tmp_path):
    torch = pytest.importorskip("torch", reason="the torch extra is not installed")
    from safetensors.torch import load_file as load_torch

    from fleqc.interop.torch_module import to_torch

    path = tmp_path / "m.safetensors"
    save_safetensors(model, path)
    machine = to_torch(model)
    state = {torch_state_dict_names(k): v for k, v in load_torch(path).items()}
    assert set(state) == set(machine.state_dict())
    machine.load_state_dict(state)
    assert torch_state_dict_names("layers.3.w1") == "layer3.w1"


def test_cli_weights_and_run_with_safetensors(tmp_path):
    runner = CliRunner()
    path = tmp_path / "m.safetensors"
    out = runner.invoke(main, ["weights", "--columns", "32", "-o", str(path)])
    assert out.exit_code == 0, out.output
    out = runner.invoke(main, ["run", str(SAMPLES / "gcd.fleq"), "--columns", "32", "--weights", str(path), "--json"])
    assert out.exit_code == 0 and '"steps": 67' in out.stdout, out.output
    out = runner.invoke(main, ["run", str(SAMPLES / "gcd.fleq"), "--columns", "64", "--weights", str(path)])
    assert out.exit_code == 1 and "machine-mismatch" in out.output
    out = runner.invoke(main, ["export", "--safetensors", str(tmp_path / "f.safetensors"), "--machine", "fleq",
                               "--columns", "128", "--cell", "2"])
    assert out.exit_code == 0, out.output
    assert load_safetensors(tmp_path / "f.safetensors").metadata["machine"] == FleqConfig(128, 2).to_dict()
