"""Disassembly: the program a punch card holds, read back out of X as assembly text.

The instructions come from the codes in the instruction columns (``card_to_program``), the data
from the memory columns, the names from the card's symbol table. The text is plain fleqc assembly
in the machine's own form (``subleq a, b, c``, or ``subleq a, b`` when c is the next instruction;
``fleq dst, f, a, b, flag, p``; no other sugar) under ``.linked COLUMNS[, CELL]``: the program as
the linker left it, so the assembler adds nothing (no final ``halt``, no hidden cells) and builds
the card at its own size. ``fleqc disasm CARD | fleqc build - -o AGAIN.npz`` gives the same card:
the same X, configuration and symbols.

Names: user labels as they are; the linker's hidden cells (``__zero``, ``__one``, ``__dummy``,
``__ret_R`` ...) keep their names (``.linked`` allows them); a cell with no
label of its own follows the previous one (it belongs to a multi-cell label); an instruction that
is jumped to but has no code label is named by its index. Each instruction carries its source line as
a comment. Reals are written with ``repr`` (they read back bit for bit).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Union

import numpy as np

from fleqc.card.card import Card
from fleqc.machines import DEFAULT, card_to_program, machine_of
from fleqc.program import HIDDEN_PREFIX, LinkedProgram
from fleqc.steps import origin, source_text


def _number(x: Any) -> str:
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    value = float(x) + 0.0
    text = repr(value)
    return text


class _Namer:
    def __init__(self, program: LinkedProgram) -> None:
        taken = set(program.symbols)
        self.rename: dict[str, str] = {}
        self.taken = taken

    def __call__(self, name: str) -> str:
        return self.rename.get(name, name)

    def fresh(self, base: str) -> str:
        name = base
        while name in self.taken:
            name = "_" + name
        self.taken.add(name)
        return name


def disassemble(source: Union[Card, LinkedProgram]) -> str:
    """The assembly text of a card (or of a linked program) that reassembles to the same cells and
    instructions (see the module doc)."""
    program = card_to_program(source) if isinstance(source, Card) else source
    if hasattr(program, "listing"):  # a program not written in the FLEQ language lists itself
        return program.listing()
    namer = _Namer(program)
    m, k = len(program.cells), len(program.instructions)

    data_labels: dict[int, list[str]] = {}
    empty_labels: dict[int, list[str]] = {}  # data labels of no cells: `NAME: .zero 0` before the cell there
    code_labels: dict[int, list[str]] = {}
    for s in program.symbols.values():
        if s.kind == "data" and s.length == 0 and s.address < m:
            empty_labels.setdefault(s.address, []).append(namer(s.name))
        elif s.kind == "data":
            data_labels.setdefault(s.address, []).append(namer(s.name))
        else:
            code_labels.setdefault(s.address, []).append(namer(s.name))
    cell_name: dict[int, str] = {}
    for s in sorted(program.symbols.values(), key=lambda s: (s.hidden, s.length == 0)):
        if s.kind == "data" and s.length > 0:
            cell_name.setdefault(s.address, namer(s.name))
            for j in range(1, s.length):
                cell_name.setdefault(s.address + j, f"{namer(s.name)}+{j}")
    # cells that no label reaches get one, so that every operand can be written
    for address in range(m):
        if address not in cell_name:
            name = namer.fresh(f"cell_{address}")
            cell_name[address] = name
            data_labels.setdefault(address, []).append(name)
    machine = source.machine if isinstance(source, Card) else machine_of(program)
    # a target with no label of its own is written as its index (a new label would be a new symbol)
    target_name = {index: names[0] for index, names in code_labels.items()}

    where = source.source_name if isinstance(source, Card) else program.source_name
    lines = [f"; disassembled from {where}: {m} cells, {k} instructions"]
    lines.append(f".machine {program.machine}" if program.machine != DEFAULT else f".bits {program.bits}")
    sizes = _card_size(source) if isinstance(source, Card) else []
    lines.append(f".linked {', '.join(map(str, sizes))}".rstrip() + "  ; as linked: the hidden cells are "
                 "defined here, nothing is added" + (", and the card's size" if sizes else ""))
    lines.append("")
    lines.append(".data")
    width = max([len(n) + 1 for names in data_labels.values() for n in names] + [8])
    for cell in program.cells:
        lines.extend(f"{n}: .zero 0" for n in empty_labels.get(cell.address, []))
        labels = data_labels.get(cell.address, [])
        prefix = " ".join(f"{n}:" for n in labels)
        lines.append(f"{prefix:<{width}} {_data_directive(cell.value)}".rstrip())
    for address in sorted(a for a in data_labels if a >= m):  # labels just past the last cell
        lines.append(" ".join(f"{n}:" for n in data_labels[address]))
    lines.append("")
    lines.append(".text")
    width = max([len(" ".join(f"{n}:" for n in names)) for names in code_labels.values()] + [8])
    for instruction in program.instructions:
        labels = " ".join(f"{n}:" for n in code_labels.get(instruction.index, []))
        text = machine.instruction_text(instruction, cell_name.__getitem__, lambda t: target_name.get(t, str(t)),
                                        short=True)
        file, line = origin(program, instruction)
        note = f"{Path(file).name}:{line}" if line else ""
        written = source_text(file, line) if line else ""
        comment = f"  ; {instruction.index:>3}  {note}  {written}".rstrip() if note else f"  ; {instruction.index:>3}"
        lines.append(f"{labels:<{width}} {text:<40}{comment}")
    for index in sorted(a for a in code_labels if a >= k):
        lines.append(" ".join(f"{n}:" for n in code_labels[index]))
    return "\n".join(lines) + "\n"


def _card_size(card: Card) -> list[int]:
    """The numbers ``.linked`` records: the card's columns, and the FLEQ machine's cell size."""
    sizes = [int(card.X.shape[1])]
    cell = getattr(card.config, "cell", None)
    return sizes + ([int(cell)] if cell is not None else [])


def _data_directive(value: Any) -> str:
    """``.word`` for an integer (SUBLEQ) or scalar, ``.vector``/``.matrix`` for the others."""
    if not isinstance(value, np.ndarray):
        return f".word {_number(value)}"
    value = np.asarray(value, dtype=np.float64)
    numbers = ", ".join(_number(x) for x in value.reshape(-1))
    if value.ndim == 0:
        return f".word {numbers}"
    if value.ndim == 1:
        return f".vector {value.shape[0]}  {numbers}"
    return f".matrix {value.shape[0]} {value.shape[1]}  {numbers}"
