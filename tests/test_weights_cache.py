"""The built weights kept on disk between processes (fleqc.transformer.weights_io.cached_build,
issue 25): read back exactly as the builder gives them, never from a file other code wrote, and a
file that cannot be read is built again."""

from __future__ import annotations

import pytest

from fleqc.machines import machine, weights_for
from fleqc.machines.fleq.config import FleqConfig
from fleqc.transformer import weights_io
from tests.support.weights import assert_same_weights


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FLEQC_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "weights"


class Counting:
    def __init__(self, config):
        self.config, self.calls = config, 0

    def __call__(self):
        self.calls += 1
        return machine(self.config.kind).build(self.config)


@pytest.mark.parametrize("config", [FleqConfig(columns=128, cell=8), FleqConfig(columns=64, cell=2)],
                         ids=["n128-cell8", "n64-cell2"])
def test_the_weights_read_back_are_exactly_the_builders(cache, config):
    built = machine("fleq").build(config)
    build = Counting(config)
    first = weights_io.cached_build(config, build)  # built and written
    again = weights_io.cached_build(config, build)  # read back
    assert build.calls == 1 and len(list(cache.glob("fleq-*.npz"))) == 1
    assert_same_weights(first, built)
    assert_same_weights(again, built)


def test_a_file_written_by_other_code_is_never_read(cache, monkeypatch):
    config = FleqConfig(columns=64, cell=2)
    build = Counting(config)
    weights_io.cached_build(config, build)
    monkeypatch.setattr(weights_io, "code_digest", lambda: "another version of fleqc")
    assert_same_weights(weights_io.cached_build(config, build), machine("fleq").build(config))
    assert build.calls == 2 and len(list(cache.glob("fleq-*.npz"))) == 2  # each version its own file


def test_the_code_digest_covers_the_weight_builders():
    weights_io.code_digest.cache_clear()
    first = weights_io.code_digest()
    assert first == weights_io.code_digest() and len(first) == 64
    source = weights_io.Path(weights_io.__file__).resolve().parent.parent / "machines" / "fleq" / "weights.py"
    assert source.is_file()  # the FLEQ machine's builder is among the hashed files (fleqc/**/*.py)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_damaged_file_is_built_again_and_replaced(cache, damage):
    config = FleqConfig(columns=64, cell=2)
    build = Counting(config)
    weights_io.cached_build(config, build)
    (path,) = cache.glob("fleq-*.npz")
    data = path.read_bytes()
    path.write_bytes({"truncated": data[: len(data) // 2], "garbage": b"PK\x03\x04" + bytes(1000),
                      "empty": b""}[damage])
    assert_same_weights(weights_io.cached_build(config, build), machine("fleq").build(config))
    assert build.calls == 2
    assert_same_weights(weights_io.cached_build(config, build), machine("fleq").build(config))
    assert build.calls == 2  # the replaced file is read


def test_a_cache_folder_that_cannot_be_made_costs_only_the_build(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("FLEQC_CACHE_DIR", str(blocker))
    config = FleqConfig(columns=64, cell=2)
    assert_same_weights(weights_io.cached_build(config, Counting(config)), machine("fleq").build(config))


def test_weights_for_keeps_only_the_slow_builders_weights(cache):
    from fleqc.machines.subleq.config import SubleqConfig

    weights_for.cache_clear()
    weights_for(SubleqConfig(columns=32, bits=8))
    assert not cache.exists() or not list(cache.iterdir())  # SUBLEQ builds in milliseconds: not kept
    weights_for(FleqConfig(columns=64, cell=2))
    assert len(list(cache.glob("fleq-*.npz"))) == 1
    weights_for.cache_clear()
