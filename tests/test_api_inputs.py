"""Issue 11, section 4: the Python API under hostile arguments (no hang, no traceback)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import fleqc
from fleqc.errors import ErrorCode, FleqError


@pytest.mark.parametrize("max_steps", [2.5, math.nan, math.inf, True, "10", None])
def test_max_steps_must_be_an_integer(max_steps):
    with pytest.raises(FleqError) as err:
        fleqc.run("samples/gcd.fleq", max_steps=max_steps)
    assert err.value.code is ErrorCode.BAD_CONFIG


@pytest.mark.parametrize("name", ["columns", "cell"])
@pytest.mark.parametrize("value", [64.0, "64", True])
def test_sizes_must_be_integers(name, value):
    with pytest.raises(FleqError) as err:
        fleqc.build("samples/fleq_polynomial.fleq", **{name: value})
    assert err.value.code is ErrorCode.BAD_CONFIG


def test_numpy_integers_are_integers():
    card = fleqc.build("samples/gcd.fleq", columns=np.int64(64), bits=np.int64(16))
    assert card.config.columns == 64 and type(card.config.columns) is int
    result = fleqc.run("samples/gcd.fleq", max_steps=np.int32(1000), columns=np.int64(64), backend="reference")
    assert result.memory["a"] == 21
    assert fleqc.compile("samples/gcd.fleq", bits=np.int16(16)).bits == 16


def test_a_long_one_line_program_is_text_not_a_path():
    text = "halt ; " + "x" * 300
    assert len(fleqc.compile(text).instructions) >= 1


@pytest.mark.parametrize("source, is_path", [
    ("samples/gcd.fleq", True), (Path("samples/gcd.fleq"), True), ("halt", False), ("halt\n", False),
    ("nonexistent.fleq", True),
])
def test_path_or_text(source, is_path):
    from fleqc.api import _is_path

    assert _is_path(source) is is_path


def test_source_of_another_type_is_a_clear_error():
    with pytest.raises(FleqError) as err:
        fleqc.compile(42)
    assert err.value.code is ErrorCode.BAD_CONFIG
