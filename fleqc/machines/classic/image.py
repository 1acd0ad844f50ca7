"""Memory images of the classic SUBLEQ machine, and the raw image format (``.dec``).

A :class:`SubleqImage` is what a program for the classic machine is before it runs: the words loaded
at address 0 and up, with whatever the source knew about them (labels, the text each word came
from). Two formats make one:

* raw images (``.dec``, ``.txt``): signed decimal numbers separated by blanks, newlines or commas
  (howerj's ``.dec`` has one number a line; Rosetta Code and sqasm write them on one or a few lines);
  read here;
* Mazonka's sqasm assembly (``.sq``, ``.asq``): assembled by :mod:`fleqc.machines.classic.sqasm`.

:func:`fleqc.machines.classic.source.load_image` picks the format from the file's suffix. Every mistake is a located
:class:`FleqError`, including a value that does not fit the word width (``bits``) the caller chose:
16-bit words hold -32768..65535 (a value and its unsigned pattern are the same word), 32-bit words
are signed (-2^31..2^31-1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from fleqc.errors import ErrorCode, FleqError, Span
from fleqc.frontend.diagnostics import show_number
from fleqc.machines.classic.reference import WORD_BITS
from fleqc.safe_io import read_source

RAW_SUFFIXES = (".dec", ".txt")
ASSEMBLY_SUFFIXES = (".sq", ".asq")
MAX_DIGITS = 20  # longer numbers are refused before conversion (Python converts at most 4300 digits)

_TOKEN = re.compile(r"[^\s,]+")
_DECIMAL = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True)
class SubleqImage:
    """The initial memory of a classic SUBLEQ program: ``words[i]`` is loaded at address ``i``.

    Words are kept as written (a 16-bit image may say 65535 or -1 for the same word); the machine
    reads them as N-bit patterns. ``labels`` maps each label to its address (empty for a raw image).
    ``origins[i]`` is where word ``i`` was written (the number in a raw image, the item in assembly;
    None for the ``?`` that completes ``a`` or ``a b``); None when unknown.
    """

    words: tuple[int, ...]
    labels: dict[str, int] = field(default_factory=dict)
    path: str = "<image>"
    origins: tuple[Span | None, ...] | None = None


def word_range(bits: int) -> tuple[int, int]:
    """The values a word of ``bits`` bits may be written as (see the module docstring)."""
    if bits not in WORD_BITS:
        raise FleqError(ErrorCode.BAD_BITS, f"classic SUBLEQ words have 16 or 32 bits, not {bits!r}")
    return (-(1 << 15), (1 << 16) - 1) if bits == 16 else (-(1 << 31), (1 << 31) - 1)


def check_word(value: int, bits: int, span: Span, line: str | None) -> int:
    """``value``, or a FleqError(LITERAL_RANGE) at ``span`` when a ``bits``-bit word cannot hold it."""
    low, high = word_range(bits)
    if not low <= value <= high:
        raise FleqError(ErrorCode.LITERAL_RANGE,
                        f"{show_number(value)} does not fit a {bits}-bit word ({low}..{high})", span, line)
    return value


def read_raw(text: str, *, name: str = "<image>", bits: int) -> SubleqImage:
    """The image of raw text: signed decimals separated by blanks, newlines or commas."""
    word_range(bits)  # refuse a bad width before reading anything
    lines = text.removeprefix("\ufeff").split("\n")
    words: list[int] = []
    origins: list[Span] = []
    for number, line in enumerate(lines, start=1):
        for match in _TOKEN.finditer(line):
            span = Span(name, number, match.start() + 1, number, match.end() + 1)
            words.append(check_word(_raw_number(match.group(), span, line), bits, span, line))
            origins.append(span)
    if not words:
        raise FleqError(ErrorCode.EMPTY_PROGRAM, "the image holds no numbers", Span(name, 1, 1), lines[0])
    return SubleqImage(tuple(words), {}, name, tuple(origins))


def _raw_number(token: str, span: Span, line: str) -> int:
    if not _DECIMAL.fullmatch(token):
        shown = token[:40].encode("unicode_escape").decode() if not token.isprintable() else token[:40]
        raise FleqError(ErrorCode.UNEXPECTED_TOKEN,
                        f"'{shown}' is not a decimal number (a raw image holds signed decimals only)", span, line)
    if len(token) > MAX_DIGITS:
        raise FleqError(ErrorCode.LITERAL_RANGE, f"a number of {len(token)} digits does not fit a word", span, line)
    return int(token)


def read_text(path: Path) -> str:
    try:
        return read_source(path).decode("utf-8", errors="replace")
    except OSError as exc:
        reason = "no such file" if isinstance(exc, FileNotFoundError) else (exc.strerror or str(exc))
        raise FleqError(ErrorCode.FILE_NOT_FOUND, f"cannot read '{path}': {reason}") from None
