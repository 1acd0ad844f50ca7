"""Issue 11, section 2: weights files and foreign .npz files are checked before they are trusted.

The weights digest covers every metadata field; the metadata is checked field by field and against
the machine it names; an .npz is checked (regular file, zip, .npy headers, declared sizes) before
anything is allocated.
"""

from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

from fleqc.machines import load_card
import fleqc
from fleqc.runner import run
from fleqc.cli import main
from fleqc.errors import ErrorCode, FleqError
from fleqc.card.card import Card
from fleqc.machines.subleq.config import SubleqConfig
from fleqc.machines import weights_for
from fleqc.transformer.weights_io import digest, load_weights, save_weights

CONFIG = SubleqConfig(columns=32, bits=16)


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "m.npz"
    save_weights(weights_for(CONFIG), path)
    return path


def _rewrite(source, target, edit, redigest):
    with np.load(source, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    meta = json.loads(str(arrays.pop("meta")[()]))
    edit(meta)
    if redigest:
        meta["sha256"] = digest(arrays, meta)
    np.savez(target, meta=np.array(json.dumps(meta)), **arrays)
    return target


def _set(key, value, inner=None):
    def edit(meta):
        (meta[inner] if inner else meta)[key] = value
    return edit


WEIGHT_EDITS = [
    ("layers emptied", _set("layers", [])),
    ("a layer kind changed", lambda m: m["layers"][2].update(kind="attention")),
    ("ternary rows emptied", _set("ternary_rows", [])),
    ("ternary rows beyond d", _set("ternary_rows", [10**6])),
    ("ternary rows as strings", _set("ternary_rows", ["1"])),
    ("fault rows added", _set("fault_rows", [3], "metadata")),
    ("machine changed", _set("machine", {"kind": "subleq", "columns": 64, "bits": 16, "scratch": 1}, "metadata")),
    ("machine a string", _set("machine", "subleq", "metadata")),
    ("row labels shortened", lambda m: m["row_labels"].pop()),
    ("row labels renamed", lambda m: m["row_labels"].__setitem__(0, "bias")),
    ("metadata a list", _set("metadata", [])),
]


@pytest.mark.parametrize("name, edit", WEIGHT_EDITS, ids=[e[0] for e in WEIGHT_EDITS])
def test_metadata_edits_break_the_digest(weights_file, tmp_path, name, edit):
    path = _rewrite(weights_file, tmp_path / "w.npz", edit, redigest=False)
    with pytest.raises(FleqError) as err:
        load_weights(path)
    assert err.value.code is ErrorCode.BAD_WEIGHTS and "SHA-256" in err.value.message


@pytest.mark.parametrize("name, edit", WEIGHT_EDITS, ids=[e[0] for e in WEIGHT_EDITS])
def test_metadata_edits_with_a_new_digest_are_still_refused(weights_file, tmp_path, name, edit):
    """Someone who recomputes the digest still cannot switch checks off or crash the run."""
    path = _rewrite(weights_file, tmp_path / "w.npz", edit, redigest=True)
    card = fleqc.build("samples/factorial.fleq", columns=32)
    with pytest.raises(FleqError) as err:
        run(card, weights=load_weights(path))
    assert err.value.code in (ErrorCode.BAD_WEIGHTS, ErrorCode.MACHINE_MISMATCH), err.value.message
    result = CliRunner().invoke(main, ["run", "samples/factorial.fleq", "--columns", "32", "--weights", str(path)])
    assert result.exit_code == 1 and "error[" in result.output and result.exception.__class__ is SystemExit


def test_saved_weights_load_and_run(weights_file):
    model = load_weights(weights_file)
    result = run(fleqc.build("samples/factorial.fleq", columns=32), weights=model)
    assert result.memory["result"] == 5040


# -- foreign files ------------------------------------------------------------------------------


def _npy_bytes(header: bytes, body: bytes = b"") -> bytes:
    """A version 1.0 .npy with a hand-written header dict."""
    header = header + b" " * ((64 - (10 + len(header) + 1) % 64) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + body


def _zip(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def _bare_npy(path):
    np.save(path.with_suffix(".npy"), np.zeros((3, 3)))
    os.replace(path.with_suffix(".npy"), path)
    return path


def _huge_header(path):
    """11 kB of zip whose X claims a (200000, 200000) float64 array (320 GB)."""
    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (200000, 200000), }"
    return _zip(path, {"X.npy": _npy_bytes(header, b"\0" * 10_000), "meta.npy": _npy_bytes(b"{}")})


def _bomb(path):
    """A deflate bomb: 64 MiB of zeros in about 64 kB, honestly declared (the limit is 16 MiB here)."""
    body = bytes(64 << 20)
    header = f"{{'descr': '<f8', 'fortran_order': False, 'shape': ({len(body) // 8},), }}".encode()
    return _zip(path, {"X.npy": _npy_bytes(header, body)}, zipfile.ZIP_DEFLATED)


def _malformed_header(path):
    return _zip(path, {"X.npy": _npy_bytes(b"{'descr': '<f8', 'shape': ((((("), "meta.npy": _npy_bytes(b"{}")})


def _long_header(path):
    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'x': '" + b"a" * 20000 + b"'}"
    return _zip(path, {"X.npy": b"\x93NUMPY\x02\x00" + (len(header) + 1).to_bytes(4, "little") + header + b"\n",
                       "meta.npy": _npy_bytes(b"{}")})


def _int_array(path):
    np.savez(path, X=np.zeros((3, 3), dtype=np.int64), meta=np.array("{}"))
    return path


def _text(path):
    path.write_text(".data\nx: .word 1\n")
    return path


def _random_bytes(path):
    path.write_bytes(np.random.default_rng(0).bytes(5000))
    return path


def _not_npy_member(path):
    return _zip(path, {"X.npy": _npy_bytes(b"{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", bytes(8)),
                       "readme.txt": b"hello"})


def _weights_as_card(path):
    save_weights(weights_for(SubleqConfig(columns=16)), path)
    return path


# (name, how to make the file, a fragment of the message)
FOREIGN = [
    ("bare .npy renamed", _bare_npy, "bare .npy"),
    ("header claims 320 GB", _huge_header, "declares shape (200000, 200000)"),
    ("deflate bomb", _bomb, "more than the"),
    ("malformed header", _malformed_header, "malformed .npy header"),
    ("header over 10 kB", _long_header, "malformed .npy header"),
    ("int64 array", _int_array, "dtype int64"),
    ("program text", _text, "not an .npz archive"),
    ("random bytes", _random_bytes, "not an .npz archive"),
    ("a member that is not .npy", _not_npy_member, "not an .npy array"),
    ("a weights file", _weights_as_card, "a fleqc weights file, not a punch card"),
]


@pytest.mark.parametrize("name, make, fragment", FOREIGN, ids=[f[0] for f in FOREIGN])
def test_foreign_file_is_a_clean_bad_card(tmp_path, monkeypatch, name, make, fragment):
    monkeypatch.setenv("FLEQC_MEMORY_LIMIT", str(16 << 20))
    path = make(tmp_path / "foreign.npz")
    with pytest.raises(FleqError) as err:
        load_card(path)
    assert err.value.code is ErrorCode.BAD_CARD and fragment in err.value.message, err.value.message
    for command in (["inspect", str(path)], ["run", str(path)]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 1 and "error[bad-card]" in result.output, result.output


def test_foreign_weights_file_is_a_clean_bad_weights(tmp_path):
    path = _huge_header(tmp_path / "w.npz")
    with pytest.raises(FleqError) as err:
        load_weights(path)
    assert err.value.code is ErrorCode.BAD_WEIGHTS


@pytest.mark.parametrize("special", ["/dev/null", "/dev/zero", "fifo", "dir"])
def test_reading_something_that_is_not_a_regular_file(tmp_path, special):
    if special == "fifo":
        special = tmp_path / "fifo.npz"
        os.mkfifo(special)
    elif special == "dir":
        special = tmp_path / "d.npz"
        special.mkdir()
    with pytest.raises(FleqError) as err:
        load_card(special)
    assert err.value.code is ErrorCode.FILE_NOT_FOUND


def test_fortran_ordered_arrays_read_correctly(tmp_path):
    card = fleqc.build("samples/factorial.fleq")
    path = tmp_path / "f.npz"
    np.savez(path, X=np.asfortranarray(card.X), meta=np.array(json.dumps(card.meta())))
    assert np.array_equal(load_card(path).X, card.X)


def test_npy_helper_is_a_valid_npy():
    data = _npy_bytes(b"{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", bytes(16))
    assert np.load(io.BytesIO(data)).tolist() == [0.0, 0.0]


# -- machines too large for the memory --------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["--columns", "65536"],  # the documented maximum: about 1.2 GiB for the incremental engine
    ["--columns", "8192", "--engine", "dense"],  # about 4 GiB of attention scores
])
def test_a_machine_too_large_is_refused_before_running(args, monkeypatch):
    monkeypatch.setenv("FLEQC_MEMORY_LIMIT", str(1 << 30))
    result = CliRunner().invoke(main, ["run", "samples/factorial.fleq", *args])
    assert result.exit_code == 1 and "error[out-of-memory]" in result.output, result.output
    assert "GiB" in result.output and "--columns" in result.output


def test_the_incremental_engine_runs_what_the_dense_pass_cannot(monkeypatch):
    monkeypatch.setenv("FLEQC_MEMORY_LIMIT", str(1 << 30))
    result = CliRunner().invoke(main, ["run", "samples/factorial.fleq", "--columns", "8192"])
    assert result.exit_code == 0 and "result = 5040" in result.output, result.output


def test_the_estimate_matches_the_measured_fleq_size():
    """A dense FLEQ pass at n = 4,096 peaked at 2.54 GiB resident (`fleqc run
    samples/fleq_polynomial.fleq --columns 4096 --engine dense --max-steps 1`, measured with
    /usr/bin/time once the product's ladders closed their gates by the distances: the dense
    weights, 247.5 M parameters, and the read layer's 4 heads of 4096^2 scores; 2.50 GiB at 241.8 M
    parameters, when the exact product had come to work on |x y| with fewer units, and 2.75 GiB at
    293.2 M before that, measured the same way). It was 3.44 GiB when the full-range product came
    (before its ladder rows were shared), 1.67 GiB with the product of one factor in
    (2^-96, 2^96], and 8.1 GiB before the gather took one head (65 heads)."""
    from fleqc.machines.fleq.config import FleqConfig
    from fleqc.transformer.memory import estimate_run_bytes

    estimate = estimate_run_bytes(weights_for(FleqConfig(columns=4096)), 4096, engine="dense")
    assert 2.54 < estimate / 2**30 < 1.5 * 2.54
