"""The front end: assembly text -> parse tree -> AST -> LinkedProgram.

``text_to_ast`` parses one file into typed syntax (:mod:`fleqc.frontend.syntax`); ``ast_to_program``
expands includes and links the whole program. Every mistake in the input is raised as a
:class:`fleqc.errors.FleqError` with a code and a source location; no other exception escapes.
"""

from __future__ import annotations

import os
from pathlib import Path

from fleqc.errors import ErrorCode, FleqError
from fleqc.frontend.ast_to_program import link
from fleqc.frontend.text_to_ast import parse_source
from fleqc.machines import machine as machine_named
from fleqc.machines import machine_for_file
from fleqc.program import LinkedProgram
from fleqc.safe_io import read_source

__all__ = ["compile_file", "compile_source", "compile_text"]


def compile_source(
    text: str,
    name: str = "<string>",
    *,
    bits: int | None = None,
    base_dir: str | os.PathLike | None = None,
) -> LinkedProgram:
    """Compile assembly ``text`` (called ``name`` in messages) into a LinkedProgram.

    ``.include`` looks in ``base_dir`` first (when given), then in the standard library. ``bits``
    (from the command line) must agree with every ``.bits`` directive.
    """
    main = parse_source(text, name)
    return link(main, main_dir=Path(base_dir) if base_dir is not None else None, bits=bits)


def compile_file(path: str | os.PathLike, *, bits: int | None = None, machine: str | None = None,
                 **options) -> LinkedProgram:
    """Compile the program file at ``path`` with the machine that claims its suffix
    (fleqc.machines.machine_for_file; ``.fleq``: the FLEQ language), or the machine named
    ``machine`` (a program in the FLEQ language must then say the same with ``.machine``)."""
    path = Path(path)
    try:
        data = read_source(path)
    except OSError as exc:
        reason = "no such file" if isinstance(exc, FileNotFoundError) else (exc.strerror or str(exc))
        raise FleqError(ErrorCode.FILE_NOT_FOUND, f"cannot read '{path}': {reason}") from None
    chosen = machine_named(machine) if machine is not None else machine_for_file(path)
    program = chosen.compile(data.decode("utf-8", errors="replace"), str(path), {"bits": bits, **options})
    if machine is not None and program.machine != machine:
        raise FleqError(ErrorCode.UNKNOWN_MACHINE, f"{path} is a {program.machine} program (its .machine "
                                                   f"directive), not a {machine} program")
    return program


def compile_text(text: str, path: str | os.PathLike, *, bits: int | None = None) -> LinkedProgram:
    """Compile ``text``, read from the file ``path``; its includes are searched next to it first."""
    path = Path(path)
    return link(parse_source(text, str(path)), main_dir=path.parent, main_path=path, bits=bits)
