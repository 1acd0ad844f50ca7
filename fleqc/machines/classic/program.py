"""A program of the classic machine: its memory image, its labels, and the input it reads.

Classic programs are not written in the FLEQ language: they are raw images (``.dec``) or Mazonka's
sqasm assembly (``.sq``, ``.asq``), read by :mod:`fleqc.frontend.image` and
:mod:`fleqc.frontend.sqasm`. Labels become data symbols of one word each (a label may name code or
data: memory is both), so ``--json`` and the Python API can report their final values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fleqc.frontend.image import SubleqImage
from fleqc.program import Symbol


@dataclass(frozen=True)
class ClassicProgram:
    """``words`` at addresses 0..; ``bits`` the word width; ``input`` the bytes on the input tape."""

    words: tuple[int, ...]
    bits: int
    symbols: dict[str, Symbol] = field(default_factory=dict)
    source_name: str = "<image>"
    input: bytes = b""
    machine: str = "classic"

    @classmethod
    def of_image(cls, image: SubleqImage, bits: int) -> "ClassicProgram":
        symbols = {name: Symbol(name, "data", address) for name, address in image.labels.items()
                   if address < len(image.words)}
        return cls(tuple(image.words), bits, symbols, image.path)
