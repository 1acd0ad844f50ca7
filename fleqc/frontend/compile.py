"""The front end's entry points: FLEQ-language text -> LinkedProgram, given the language (the
machines a ``.machine`` directive may name)."""


from __future__ import annotations

import os
from pathlib import Path

from fleqc.frontend.ast_to_program import link
from fleqc.frontend.dialect import Language
from fleqc.frontend.text_to_ast import parse_source
from fleqc.program import LinkedProgram

def compile_source(
    text: str,
    name: str = "<string>",
    *,
    language: Language,
    bits: int | None = None,
    base_dir: str | os.PathLike | None = None,
) -> LinkedProgram:
    """Compile assembly ``text`` (called ``name`` in messages) into a LinkedProgram.

    ``.include`` looks in ``base_dir`` first (when given), then in the standard library. ``bits``
    (from the command line) must agree with every ``.bits`` directive.
    """
    main = parse_source(text, name, language)
    return link(main, language, main_dir=Path(base_dir) if base_dir is not None else None, bits=bits)


def compile_text(text: str, path: str | os.PathLike, *, language: Language, bits: int | None = None) -> LinkedProgram:
    """Compile ``text``, read from the file ``path``; its includes are searched next to it first."""
    path = Path(path)
    return link(parse_source(text, str(path), language), language, main_dir=path.parent, main_path=path, bits=bits)
