"""What a machine adds to the FLEQ language: its instruction forms, literals, data directives and
its pass two of the linker.

The grammar knows no mnemonics; the linker asks the dialect of the program's machine (chosen by
``.machine``, see :mod:`fleqc.frontend.ast_to_program`) what an instruction may be and how it is
encoded. A machine written in the language has one :class:`Dialect` (``Machine.language``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

# A machine of the language, as the front end sees it: any object with ``name``, ``title`` and
# ``language`` (its Dialect); fleqc.machines.base.Machine is one.
Machine = Any

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


@dataclass(frozen=True)
class Language:
    """The machines a program in the FLEQ language may name with ``.machine``, the first of them the
    default. The front end receives it (``fleqc.machines.language()`` builds it from the registry);
    a machine is any object with ``name``, ``title`` and ``language`` (its :class:`Dialect`).
    ``load(name)`` gives a machine by its name: a program loads only the machine it names (the
    default unless a ``.machine`` says otherwise); the others only for an error's hint."""

    names: tuple[str, ...]
    load: Callable[[str], Any]

    @property
    def machines(self) -> tuple[Any, ...]:
        return tuple(self.load(name) for name in self.names)

    @property
    def default(self) -> Any:
        return self.load(self.names[0])

    def named(self, name: str) -> Any:
        return self.load(name)

    def owner_of(self, flag: str) -> Any:
        """The first machine whose dialect has ``flag`` (``reals``, ``shaped_cells``, ``routines``):
        for the hint "add '.machine NAME'"."""
        return next(m for m in self.machines if getattr(m.language, flag))

    def machine_knowing(self, mnemonic: str) -> Optional[Any]:
        """The first machine that has the instruction or function ``mnemonic``."""
        return next((m for m in self.machines if m.language.knows(mnemonic)), None)
