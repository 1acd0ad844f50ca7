"""What a machine adds to the FLEQ language: its instruction forms, literals, data directives and
its pass two of the linker.

The grammar knows no mnemonics; the linker asks the dialect of the program's machine (chosen by
``.machine``, see :mod:`fleqc.frontend.ast_to_program`) what an instruction may be and how it is
encoded. A machine written in the language has one :class:`Dialect` (``Machine.language``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from fleqc.machines import language_machines
from fleqc.machines.base import Machine

# mnemonic -> (least operands, most operands, how to write it)
Forms = Mapping[str, tuple[int, int, str]]


@dataclass(frozen=True)
class Dialect:
    """One machine's part of the language.

    ``forms``: its instructions; ``functions``: names usable as a mnemonic (``sigmoid y, x``: the
    destination then the function's operands) and as the function operand of a form listed in
    ``function_operands`` (form -> operand position); ``reals``: real literals (``0.5``);
    ``shaped_cells``: ``.vector`` and ``.matrix``; ``routines``: ``call``/``ret`` with
    ``.routine`` bodies; ``linker``: the class (a :class:`fleqc.frontend.ast_to_program.Linker`)
    that gives cells their values and encodes instructions.
    """

    forms: Forms
    linker: type
    functions: Mapping[str, Any] = field(default_factory=dict)
    function_operands: Mapping[str, int] = field(default_factory=dict)
    reals: bool = False
    shaped_cells: bool = False
    routines: bool = False

    def knows(self, mnemonic: str) -> bool:
        return mnemonic in self.forms or mnemonic in self.functions


def owner_of(flag: str) -> Machine:
    """The first machine of the language whose dialect has ``flag`` (``reals``, ``shaped_cells``,
    ``routines``): for the hint "add '.machine NAME'"."""
    return next(m for m in language_machines() if getattr(m.language, flag))


def machine_knowing(mnemonic: str) -> Optional[Machine]:
    """The first machine of the language that has the instruction or function ``mnemonic``."""
    return next((m for m in language_machines() if m.language.knows(mnemonic)), None)
