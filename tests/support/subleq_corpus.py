"""The SUBLEQ corpus: real programs written by others, with expected results (issue 12).

It is not part of the repository: it sits in ``shared/corpus/subleq`` next to the repository's own
directory (``../shared/corpus/subleq`` from the repository root), or where ``$FLEQC_SUBLEQ_CORPUS``
says. Tests that need it are skipped, with this reason, when it is absent.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import pytest

CORPUS_ENV = "FLEQC_SUBLEQ_CORPUS"
ABSENT = f"the SUBLEQ corpus is absent (../shared/corpus/subleq next to the repository, or ${CORPUS_ENV})"


def corpus_dir() -> Path:
    """Where the corpus is, or would be."""
    configured = os.environ.get(CORPUS_ENV)
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[3] / "shared" / "corpus" / "subleq"


def present() -> bool:
    return (corpus_dir() / "expected.json").is_file()


def corpus() -> Path:
    """The corpus directory; skips the calling test when it is absent."""
    if not present():
        pytest.skip(ABSENT)
    return corpus_dir()


def expected() -> dict:
    """``expected.json``, inside a test; skips the calling test when the corpus is absent."""
    corpus()
    return _read()


def listing() -> dict:
    """``expected.json`` at collection time (to parametrize a test): empty when the corpus is absent,
    so pass what it gives through :func:`params`, which then yields one skipped case saying why."""
    return _read() if present() else {}


@functools.cache
def _read() -> dict:
    return json.loads((corpus_dir() / "expected.json").read_text(encoding="utf-8"))


def params(values: list) -> list:
    """``values`` for ``pytest.mark.parametrize``, or one skipped case saying why when the corpus is
    absent (an empty list would skip with pytest's less helpful reason)."""
    if present():
        return values
    return [pytest.param(None, marks=pytest.mark.skip(reason=ABSENT))]
