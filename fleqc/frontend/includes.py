"""Include expansion: the main file and everything it includes, as one list of statements.

Guarantees of :func:`expand_includes`: statements come in program order, each ``.include``
replaced by the statements of the file it names (searched next to the including file, then in the
stdlib); each file is included once (by resolved path) and an include cycle is an error at the
``.include`` that closes it; every statement is tagged with the section (``.data``/``.text``) it is
in, each file starting in ``.text``. Section directives and includes themselves are consumed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fleqc import resources
from fleqc.errors import ErrorCode
from fleqc.frontend import syntax as ast
from fleqc.frontend.diagnostics import Sources
from fleqc.frontend.text_to_ast import parse_source
from fleqc.safe_io import read_source

Section = Literal["data", "text"]
SOURCE_SUFFIX = ".fleq"  # what .include reads: an error in it shows its line, as for the program's own


@dataclass(frozen=True)
class Placed:
    """A statement in program order with the section it appears in."""

    statement: ast.Statement
    section: Section


@dataclass
class _Frame:
    """A file being expanded: where it is, how far we are, which section it is in."""

    source: ast.SourceFile
    directory: Path | None
    key: Path | None
    position: int = 0
    section: Section = "text"


def expand_includes(
    main: ast.SourceFile, main_dir: Path | None, main_path: Path | None, sources: Sources
) -> list[Placed]:
    """All statements in program order, includes expanded (iteratively: no recursion limit)."""
    sources.add(main)
    stack = [_Frame(main, main_dir, _identity(main_path) if main_path else None)]
    seen = {stack[0].key} - {None}
    placed: list[Placed] = []
    while stack:
        frame = stack[-1]
        if frame.position == len(frame.source.statements):
            stack.pop()
            continue
        statement = frame.source.statements[frame.position]
        frame.position += 1
        if isinstance(statement, ast.SectionDirective):
            frame.section = statement.section
        elif isinstance(statement, ast.IncludeDirective):
            included = _open_include(statement, frame, stack, seen, sources)
            if included is not None:
                stack.append(included)
        else:
            placed.append(Placed(statement, frame.section))
    return placed


def _open_include(
    directive: ast.IncludeDirective,
    frame: _Frame,
    stack: list[_Frame],
    seen: set[Path],
    sources: Sources,
) -> _Frame | None:
    """The frame for the file an ``.include`` names, or None if it was already included."""
    path = _find_include(directive.path, frame.directory)
    if path is None:
        where = "next to the including file or in" if frame.directory is not None else "in"
        shown = directive.path if directive.path.isprintable() else repr(directive.path)[1:-1]
        raise sources.error(
            ErrorCode.INCLUDE_NOT_FOUND,
            f"cannot find '{shown}' {where} the standard library",
            directive.path_span,
        )
    if path.suffix != SOURCE_SUFFIX:  # a file that is not a program (a system file, say): its text is
        shown = directive.path if directive.path.isprintable() else repr(directive.path)[1:-1]  # never echoed
        raise sources.error(
            ErrorCode.BAD_DIRECTIVE,
            f"'{shown}' is not a FLEQ source file; .include reads {SOURCE_SUFFIX} files only",
            directive.path_span,
        )
    key = _identity(path)
    if key in [f.key for f in stack]:
        chain = [f.source.name for f in stack[[f.key for f in stack].index(key) :]] + [str(path)]
        raise sources.error(
            ErrorCode.INCLUDE_CYCLE, "include cycle: " + " -> ".join(chain), directive.path_span
        )
    if key in seen:
        return None
    seen.add(key)
    text = _read_include(path, directive, sources)
    source = parse_source(text, str(path), sources.language)
    sources.add(source)
    return _Frame(source, path.parent, key)


def _find_include(name: str, directory: Path | None) -> Path | None:
    """The first regular file called ``name`` next to the includer, then in the stdlib."""
    roots = ([directory] if directory is not None else []) + [resources.stdlib_dir()]
    for root in roots:
        candidate = root / name
        try:
            if name and candidate.is_file():
                return candidate
        except (OSError, ValueError):  # names the OS refuses: too long, NUL bytes, ...
            continue
    return None


def _identity(path: Path) -> Path:
    """The canonical path used to include each file once and to detect cycles."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def _read_include(path: Path, directive: ast.IncludeDirective, sources: Sources) -> str:
    try:
        return read_source(path).decode("utf-8", errors="replace")
    except OSError as exc:
        raise sources.error(
            ErrorCode.INCLUDE_NOT_FOUND,
            f"cannot read '{directive.path}': {exc.strerror or exc}",
            directive.path_span,
        ) from None
