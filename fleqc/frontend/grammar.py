"""The Lark parser for fleqc assembly, built once from ``grammar/fleq.lark``."""

from __future__ import annotations

import functools

from lark import Lark

from fleqc.resources import grammar_path


@functools.cache
def parser() -> Lark:
    """The LALR(1) parser (contextual lexer, positions propagated, no ``[]`` placeholders)."""
    return Lark(
        grammar_path().read_text(encoding="utf-8"),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=False,
    )
