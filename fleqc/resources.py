"""Where fleqc's data files live: the grammar and the assembly standard library.

In an installed wheel they are package data (``fleqc/grammar``, ``fleqc/stdlib``, see
pyproject.toml); in the editable source tree they sit at the repository's top level. The package
location is tried first.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_SOURCE_TREE = _PACKAGE.parent


def _data_dir(name: str) -> Path:
    packaged = _PACKAGE / name
    return packaged if packaged.is_dir() else _SOURCE_TREE / name


def grammar_path() -> Path:
    """The Lark grammar of the assembly language."""
    return _data_dir("grammar") / "fleq.lark"


def flow_grammar_path() -> Path:
    """The Lark grammar of Flow, the language above the assembly (and of `fleqc calc` expressions)."""
    return _data_dir("grammar") / "flow.lark"


def stdlib_dir() -> Path:
    """The directory ``.include`` searches after the including file's own directory."""
    return _data_dir("stdlib")

