"""Punch cards on disk: round trip, and every way a file can be wrong."""

from __future__ import annotations

import json
import os
import pickle
import zipfile

import numpy as np
import pytest

from fleqc.machines import load_card
from fleqc.errors import ErrorCode, FleqError
from fleqc.card.card import Card
from fleqc.machines import card_to_program
from fleqc.machines import program_to_card
from tests.support.programs import subleq_program


@pytest.fixture
def card():
    return program_to_card(subleq_program(8, [5, -3, 127, -128], [(0, 1, 1), (2, 3, 0)]))


def test_round_trip_keeps_every_field(card, tmp_path):
    path = tmp_path / "p.npz"
    card.save(path)
    again = load_card(path)
    assert np.array_equal(again.X, card.X)
    assert again.config == card.config and again.rows == card.rows and again.regions == card.regions
    assert again.symbols == card.symbols
    assert again.decode() == {"m0": 5, "m1": -3, "m2": 127, "m3": -128}


def test_card_to_program_recovers_the_linked_program(card):
    program = card_to_program(card)
    assert [(i.a, i.b, i.target) for i in program.instructions] == [(0, 1, 1), (2, 3, 0)]
    assert [c.value for c in program.cells] == [5, -3, 127, -128]


def _bad(path) -> FleqError:
    with pytest.raises(FleqError) as err:
        load_card(path)
    return err.value


def test_missing_file(tmp_path):
    assert _bad(tmp_path / "nope.npz").code is ErrorCode.FILE_NOT_FOUND


def test_not_an_npz(tmp_path):
    path = tmp_path / "text.npz"
    path.write_text("this is not a card")
    assert _bad(path).code is ErrorCode.BAD_CARD


def test_truncated(card, tmp_path):
    path = tmp_path / "p.npz"
    card.save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert _bad(path).code is ErrorCode.BAD_CARD


def test_corrupted_bytes(card, tmp_path):
    path = tmp_path / "p.npz"
    card.save(path)
    data = bytearray(path.read_bytes())
    for i in range(40, len(data), 97):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    assert _bad(path).code is ErrorCode.BAD_CARD


def test_foreign_npz(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, weights=np.ones(3))
    assert _bad(path).code is ErrorCode.BAD_CARD


def test_wrong_version(card, tmp_path):
    meta = card.meta()
    meta["version"] = 99
    path = tmp_path / "v99.npz"
    np.savez(path, X=card.X, meta=np.array(json.dumps(meta)))
    err = _bad(path)
    assert err.code is ErrorCode.BAD_CARD and "version" in err.message


def test_shape_that_does_not_match_the_machine(card, tmp_path):
    path = tmp_path / "shape.npz"
    np.savez(path, X=card.X[:-1], meta=np.array(json.dumps(card.meta())))
    assert _bad(path).code is ErrorCode.BAD_CARD


class Boom:
    """Unpickling this would create a file: proof that the payload ran."""

    def __reduce__(self):
        return (open, (os.environ["FLEQC_PICKLE_CANARY"], "w"))


def test_pickled_object_is_never_executed(card, tmp_path, monkeypatch):
    canary = tmp_path / "canary"
    monkeypatch.setenv("FLEQC_PICKLE_CANARY", str(canary))
    path = tmp_path / "evil.npz"
    payload = np.array([Boom()], dtype=object)
    np.savez(path, X=payload, meta=np.array(json.dumps(card.meta())))
    with zipfile.ZipFile(path) as z:
        assert "X.npy" in z.namelist()
    err = _bad(path)
    assert err.code is ErrorCode.BAD_CARD and "pickle" in err.message
    assert not canary.exists()
    # the payload is real: unpickling it by hand would have run it
    pickle.loads(pickle.dumps(Boom()))
    assert canary.exists()


def test_atomic_write_leaves_existing_card_untouched_on_failure(card, tmp_path, monkeypatch):
    path = tmp_path / "p.npz"
    card.save(path)
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError):
        card.save(path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["p.npz"]
