"""Where fleqc's data files live: the grammar and the assembly standard library; and the user's
cache folder (the parsers and the built weights kept between processes).

In an installed wheel they are package data (``fleqc/grammar``, ``fleqc/stdlib``, see
pyproject.toml); in the editable source tree they sit at the repository's top level. The package
location is tried first.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

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


def cache_folder(*parts: str) -> Optional[Path]:
    """fleqc's folder in the user's cache (``$XDG_CACHE_HOME/fleqc``, else ``~/.cache/fleqc``;
    ``FLEQC_CACHE_DIR`` overrides), or its subfolder ``parts``: made private to the user, never a
    shared temporary folder; None if it cannot be made (a cache that cannot be kept costs only the
    work it would have saved)."""
    given = os.environ.get("FLEQC_CACHE_DIR")
    base = Path(given) if given else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fleqc"
    folder = base.joinpath(*parts)
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return None
    return folder
