"""Every ```flow block of docs/flow.md and docs/flow-tutorial.md compiles, or fails with the code its
first line names (``# error: CODE``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fleqc import api
from fleqc.errors import FleqError

DOCS = Path(__file__).resolve().parents[1] / "docs"
BLOCK = re.compile(r"^```flow\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks():
    for page in ("flow.md", "flow-tutorial.md"):
        text = (DOCS / page).read_text(encoding="utf-8")
        for k, match in enumerate(BLOCK.finditer(text)):
            yield pytest.param(match.group(1), id=f"{page}-{k}")


@pytest.mark.parametrize("source", list(_blocks()))
def test_every_flow_block_compiles_or_fails_as_it_says(source, tmp_path):
    path = tmp_path / "block.flow"
    path.write_text(source, encoding="utf-8")
    first = source.splitlines()[0]
    if first.startswith("# error: "):
        with pytest.raises(FleqError) as info:
            api.compile(path)
        assert info.value.code.value == first.split(": ", 1)[1].strip(), info.value.render()
        assert info.value.span is not None and info.value.span.file == str(path)
    else:
        program = api.compile(path)
        assert api.run(program, backend="reference", max_steps=200_000).halted
