"""A classic SUBLEQ program's image from its text or file, by the suffix: ``.sq``/``.asq`` assembled
(:mod:`fleqc.machines.classic.sqasm`), ``.dec``/``.txt`` read raw (:mod:`fleqc.machines.classic.image`)."""

from __future__ import annotations

import os
from pathlib import Path

from fleqc.errors import ErrorCode, FleqError
from fleqc.machines.classic.image import ASSEMBLY_SUFFIXES, RAW_SUFFIXES, SubleqImage, read_raw, read_text
from fleqc.machines.classic.sqasm import assemble


def load_image(source: str | os.PathLike, *, name: str | None = None, bits: int) -> SubleqImage:
    """The image of program text (a ``str`` given with ``name``, whose suffix says the format) or of
    a program file (a path: a ``str`` without ``name``, or any path-like object; ``name``, if given,
    is then only what messages call it). ``.sq``/``.asq`` are assembled, ``.dec``/``.txt`` read raw."""
    if isinstance(source, str) and name is not None:
        text = source
    else:
        name = os.fspath(source) if name is None else name
        text = read_text(Path(source))
    suffix = Path(name).suffix.lower()
    if suffix in ASSEMBLY_SUFFIXES:
        return assemble(text, name=name, bits=bits)
    if suffix in RAW_SUFFIXES:
        return read_raw(text, name=name, bits=bits)
    known = ", ".join(ASSEMBLY_SUFFIXES + RAW_SUFFIXES)
    raise FleqError(ErrorCode.UNKNOWN_FORMAT,
                    f"'{name}' is not a classic SUBLEQ program: its suffix should be one of {known}")
