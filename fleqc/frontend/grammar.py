"""The Lark parsers of fleqc, built once per process and cached on disk between processes.

Building an LALR(1) parser from a grammar takes tens of milliseconds at every start; Lark can pickle
the built parser (its ``cache`` option). fleqc keeps those files in the user's cache folder
(``$XDG_CACHE_HOME/fleqc``, else ``~/.cache/fleqc``; ``FLEQC_CACHE_DIR`` overrides), never in a
shared temporary folder; Lark stores a hash of the grammar and options in each file and rebuilds
the parser whenever they differ. A folder that cannot be written only costs the rebuild.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

from lark import Lark

from fleqc.resources import grammar_path
from fleqc.safe_io import cache_folder


def cached_lark(text: str, name: str, **options: Any) -> Lark:
    """``Lark(text, parser="lalr", **options)``, loaded from its cache file when it is current."""
    folder = cache_folder()
    if folder is not None:
        import lark

        options["cache"] = str(folder / f"{name}-lark{lark.__version__}-py{sys.version_info[0]}{sys.version_info[1]}.pickle")
    return Lark(text, parser="lalr", **options)


@functools.cache
def parser() -> Lark:
    """The LALR(1) parser (contextual lexer, positions propagated, no ``[]`` placeholders)."""
    return cached_lark(grammar_path().read_text(encoding="utf-8"), "fleq", lexer="contextual",
                       propagate_positions=True, maybe_placeholders=False)
