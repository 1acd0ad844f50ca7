"""docs/language.md matches the assembler: every ```fleq block compiles, or fails with its stated code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fleqc.errors import ErrorCode, FleqError
from fleqc.machines import compile_source

DOC = Path(__file__).resolve().parent.parent / "docs" / "language.md"
BLOCKS = re.findall(r"```fleq\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
EXPECTED = re.compile(r"; error: ([a-z-]+)\n")


def test_the_language_reference_has_examples():
    assert len(BLOCKS) >= 30


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_documented_example(block):
    expected = EXPECTED.match(block)
    if expected is None:
        compile_source(block, "doc.fleq")
        return
    with pytest.raises(FleqError) as info:
        compile_source(block, "doc.fleq")
    assert info.value.code == ErrorCode(expected.group(1))


def test_every_front_end_error_code_is_documented():
    text = DOC.read_text(encoding="utf-8")
    for code in ErrorCode:
        assert f"`{code.value}`" in text, code
