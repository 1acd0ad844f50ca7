"""Flow, the language above the FLEQ assembly (docs/flow.md): ``.flow`` files compiled to readable
FLEQ assembly linked with only the stdlib parts they use, with a source map back to the user's lines.

    text --syntax.parse_module--> tree --compiler.Compiler--> Translation (assembly + line spans)
    assembly --the FLEQ language front end (the caller's compile)--> LinkedProgram
    LinkedProgram, Translation --attach_source_map--> the program the run path sees

The registry (fleqc.machines.LANGUAGES) picks this package by the suffix ``.flow`` and hands it the
assembler (``assemble``), so that this package needs nothing above it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from fleqc.errors import FleqError, Span
from fleqc.lang.compiler import Translation, translate
from fleqc.program import LinkedProgram

SUFFIX = ".flow"

__all__ = ["SUFFIX", "Translation", "translate", "attach_source_map", "compile_text"]


def attach_source_map(program: LinkedProgram, translation: Translation) -> LinkedProgram:
    """``program`` (linked from ``translation.assembly``) as the user wrote it: every instruction
    generated for a line of the Flow file carries that line's span (stdlib instructions keep
    theirs), each variable's cell its name and first assignment, temporaries and constants hidden."""
    generated = translation.generated_name
    ends = [s for s in translation.line_spans.values()]
    fallback = max(ends, key=lambda s: (s.line, s.column)) if ends else Span(translation.file, 1, 1)

    def mapped(span):
        if span is None:  # the halt the assembler appends: the program's end
            return fallback
        if span.file == generated:
            return translation.line_spans.get(span.line, fallback)
        return span

    instructions = tuple(dataclasses.replace(i, span=mapped(i.span)) for i in program.instructions)
    cells = tuple(dataclasses.replace(c, span=mapped(c.span)) for c in program.cells)
    symbols: dict[str, Any] = {}
    renamed = {}
    for name, symbol in program.symbols.items():
        if symbol.kind == "data" and symbol.span is not None and symbol.span.file == generated:
            shown = translation.display.get(name, name)
            if shown is None:
                shown = "__" + name.lstrip("_")
            if shown != name:  # a hidden name, or a function's cell (f__x): unique among the labels
                while shown in program.symbols or shown in renamed.values():
                    shown += "_"
            renamed[name] = shown
            span = translation.spans.get(name) or mapped(symbol.span)
            symbol = dataclasses.replace(symbol, name=shown, span=span)
            symbols[shown] = symbol
        else:
            symbols[name] = dataclasses.replace(symbol, span=mapped(symbol.span))
    return dataclasses.replace(program, instructions=instructions, cells=cells, symbols=symbols,
                               source_name=translation.file)


def compile_text(text: str, path: str, assemble: Callable[[str, str], LinkedProgram]) -> LinkedProgram:
    """The linked program of the Flow source ``text`` read from ``path``; ``assemble(assembly,
    name)`` is the FLEQ language front end (the registry's)."""
    translation = translate(text, path)
    try:
        program = assemble(translation.assembly, translation.generated_name)
    except FleqError as error:  # a limit of the machine (too many cells or instructions): the user's line
        raise _relocated(error, translation) from None
    return attach_source_map(program, translation)


def _relocated(error: FleqError, translation: Translation) -> FleqError:
    span = error.span
    if span is None or span.file != translation.generated_name:
        return error
    spans = list(translation.line_spans.values())
    mapped = translation.line_spans.get(span.line) or (
        max(spans, key=lambda s: (s.line, s.column)) if spans else Span(translation.file, 1, 1))
    line = translation.lines[mapped.line - 1] if 0 < mapped.line <= len(translation.lines) else None
    return FleqError(error.code, error.message, mapped, line)
