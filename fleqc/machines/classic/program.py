"""A program of the classic machine: its memory image, its labels, and the input it reads.

Classic programs are not written in the FLEQ language: they are raw images (``.dec``) or Mazonka's
sqasm assembly (``.sq``, ``.asq``), read by :mod:`fleqc.machines.classic.image` and
:mod:`fleqc.machines.classic.sqasm`. Labels become data symbols of one word each (a label may name code or
data: memory is both), so ``--json`` and the Python API can report their final values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fleqc.machines.classic.image import SubleqImage
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
    origins: tuple = field(default=(), compare=False, repr=False)  # where each word was written (a Span)

    @classmethod
    def of_image(cls, image: SubleqImage, bits: int) -> "ClassicProgram":
        symbols = {name: Symbol(name, "data", address) for name, address in image.labels.items()
                   if address < len(image.words)}
        return cls(tuple(image.words), bits, symbols, image.path, origins=tuple(image.origins or ()))

    def listing(self) -> str:
        """sqasm text that assembles to exactly these words: ``.`` data lines of three words (no
        completion), each word after its labels; the input, if any, as a comment."""
        labels: dict[int, list[str]] = {}
        for symbol in self.symbols.values():
            labels.setdefault(symbol.address, []).append(symbol.name)
        lines = [f"# {self.source_name}: {len(self.words)} words of {self.bits} bits"]
        if self.input:
            lines.append(f"# input: {self.input!r}")
        for start in range(0, len(self.words), 3):
            items = ["".join(f"{name}:" for name in sorted(labels.get(a, [])))
                     + (f"({self.words[a]})" if self.words[a] < 0 else str(self.words[a]))  # "a -1" would be a-1
                     for a in range(start, min(start + 3, len(self.words)))]
            lines.append(". " + " ".join(items))
        return "\n".join(lines) + "\n"
