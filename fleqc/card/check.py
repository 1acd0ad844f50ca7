"""A punch card is checked completely before any pass runs on it.

A card is valid when it is exactly the card fleqc would build for some program and some starting
instruction: the check reads the program back out of X (pointers, function selectors, memory),
reads the program counter, builds that program's card again with the same machine, regions and pc,
and requires the two matrices to be equal entry for entry. So every static row (the ``one``,
positional-code and indicator rows, every instruction field, the scratchpad's zero fields), every
temp row (zero between passes) and the state rows (pc in every column that holds one, memory bits)
are checked against what the metadata and the machine allow, without a list of rules that could
miss one. Before that, the parts whose failure would make the rebuild meaningless get their own
messages: the column regions, the cell shapes and symbols (inside n and inside their regions), the
pc (on an instruction column), and what the machine checks as it reads the program back
(``Machine.check_cells`` and ``Machine.decode``: each pointer a code of a column of the right
region; FLEQ: each function selector one-hot, the operand shapes it implies, the cells' shapes).

Every failure is a ``bad-card`` FleqError naming the row block and the column. Both backends start
from the state this check returns, so on any card they either refuse with the same message or run
the same program from the same pc.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Optional

import numpy as np

from fleqc.errors import ErrorCode, FleqError, Span, shown
from fleqc.card.card import CARD_FORMAT, CARD_VERSION, Card
from fleqc.card.columns import MAX_COLUMNS
from fleqc.card.columns import ColumnRegions
from fleqc.program import LinkedProgram, Symbol
from fleqc.npzfile import read_json_entry, read_npz
from fleqc.schema import SchemaError, array, field, integer, integers, string

# -- metadata --------------------------------------------------------------------------------------


def card_fields(meta: dict, where: str, machines: Mapping[str, Any]) -> dict[str, Any]:
    """The Card constructor's fields (all but X) from a card's metadata, every field checked for
    type and range; BAD_CARD naming the field otherwise. ``machines``: name -> machine, the
    machines a card may name (the registry)."""
    try:
        config = _config(field(meta, "machine", ""), machines)
        machine = machines[config.kind]
        rows = machine.rows(config)
        if field(meta, "rows", "") != rows.to_list():
            raise SchemaError("rows: the row blocks do not match the machine it names (written by another "
                              "fleqc version?)")
        n = config.columns
        return {
            "machine": machine,
            "config": config,
            "rows": rows,
            "regions": _regions(field(meta, "regions", ""), n),
            "symbols": _symbols(field(meta, "symbols", ""), n),
            "source_name": string(meta.get("source", "<card>"), "source"),
            "instruction_lines": tuple(integers(meta.get("instruction_lines", []), "instruction_lines", 0,
                                                max_length=n)),
            "instruction_files": tuple(string(x, f"instruction_files[{i}]") for i, x in
                                       enumerate(array(meta.get("instruction_files", []), "instruction_files",
                                                       max_length=n))),
            "cell_shapes": tuple(tuple(integers(s, f"cell_shapes[{i}]", 1, n, max_length=2)) for i, s in
                                 enumerate(array(meta.get("cell_shapes", []), "cell_shapes", max_length=n))),
        }
    except SchemaError as exc:
        raise FleqError(ErrorCode.BAD_CARD, f"{where}: metadata: {exc}") from None


def _config(data: Any, machines: Mapping[str, Any]) -> Any:
    kind = field(data, "kind", "machine")
    integer(field(data, "columns", "machine"), "machine.columns", 1, MAX_COLUMNS)
    if not isinstance(kind, str) or kind not in machines:
        raise SchemaError(f"machine.kind is {kind!r}; expected {' or '.join(map(repr, machines))}")
    try:
        return machines[kind].config_from_dict(data)
    except FleqError as exc:
        raise SchemaError(f"machine: {exc.message}") from None


def _regions(data: Any, n: int) -> ColumnRegions:
    spans = {name: tuple(integers(field(data, name, "regions"), f"regions.{name}", 0, n, length=2))
             for name in ("scratch", "memory", "instructions")}
    columns = integer(field(data, "columns", "regions"), "regions.columns", n, n)
    return ColumnRegions(spans["scratch"], spans["memory"], spans["instructions"], columns)  # type: ignore[arg-type]


def _symbols(data: Any, n: int) -> dict[str, Symbol]:
    symbols: dict[str, Symbol] = {}
    for i, entry in enumerate(array(data, "symbols", max_length=2 * n)):
        path = f"symbols[{i}]"
        name = string(field(entry, "name", path), f"{path}.name", 256)
        kind = field(entry, "kind", path)
        if kind not in ("data", "code"):
            raise SchemaError(f"{path}.kind is {kind!r}; expected 'data' or 'code'")
        if name in symbols:
            raise SchemaError(f"{path}.name: the label {name!r} is defined twice")
        file = entry.get("file")
        symbols[name] = Symbol(
            name, kind, integer(field(entry, "address", path), f"{path}.address", 0, n),
            tuple(integers(field(entry, "shape", path), f"{path}.shape", 1, n, max_length=2)),
            Span(string(file, f"{path}.file"), 0, 0) if file else None,  # only the file is kept
            integer(field(entry, "length", path), f"{path}.length", 0, n),
        )
    _check_empty_labels(list(symbols.values()))
    return symbols


def _check_empty_labels(symbols: list[Symbol]) -> None:
    """A data label of no cells is what the assembler makes of a label with nothing after it in
    .data (``end:``) or of ``.zero 0``: it names the address where the next data label's cells
    start, or the end of the labelled cells. Anywhere else (over a cell that no other label names)
    a length of 0 is an edit."""
    data = [s for s in symbols if s.kind == "data"]
    starts = {s.address for s in data if s.length > 0}
    end = max((s.address + s.length for s in data), default=0)
    for i, s in enumerate(symbols):
        if s.kind == "data" and s.length == 0 and s.address not in starts and s.address < end:
            raise SchemaError(f"symbols[{i}].length is 0 for {s.name!r}, a label over a cell that no other "
                              "label names; a data label of no cells stands where the next label starts or "
                              "after the last cell")
        if s.kind == "code" and s.length != 1:
            raise SchemaError(f"symbols[{i}].length is {s.length} for the code label {s.name!r}; expected 1")


# -- the whole card --------------------------------------------------------------------------------


def validate_card(card: Card, where: str | None = None) -> tuple[LinkedProgram, int]:
    """The program a card holds and the instruction its pc names; BAD_CARD unless the card is
    exactly the card of that program started there (see the module docstring). Messages start
    with ``where`` (the card's file), else the card's source name."""
    try:
        return card.machine.check_card(card)
    except FleqError as exc:
        if exc.code is not ErrorCode.BAD_CARD:
            raise
        raise FleqError(ErrorCode.BAD_CARD, f"{where or card.source_name}: {exc.message}") from None


def rebuilt_card_check(card: Card) -> tuple[LinkedProgram, int]:
    """The check of the module docstring (the default ``Machine.check_card``): the parts in turn,
    then the card rebuilt from the program read out of it must equal it entry for entry."""
    _check_matrix(card)
    _check_regions(card)
    _check_cells(card)
    _check_symbols(card)
    pc = _read_pc(card)
    program = card.machine.decode(card)
    _compare(card, card.machine.encode(program, card.config, start=pc).X)
    return program, pc


def _bad(card: Card, why: str) -> FleqError:
    return FleqError(ErrorCode.BAD_CARD, why)


def _check_matrix(card: Card) -> None:
    X = card.X
    expected = (card.rows.d, card.config.columns)
    if not isinstance(X, np.ndarray) or X.dtype != np.float64 or X.shape != expected:
        raise _bad(card, f"X has shape {getattr(X, 'shape', None)} and dtype {getattr(X, 'dtype', None)}; "
                         f"expected float64 {expected}")
    finite = np.isfinite(X)
    if not finite.all():
        row, column = np.argwhere(~finite)[0]
        raise card.bad_entry(card.rows.labels()[row], int(column), f"holds {X[row, column]}")


def _check_regions(card: Card) -> None:
    r, n = card.regions, card.config.columns
    if r.columns != n:
        raise _bad(card, f"its regions are planned for {r.columns} columns, but the machine has {n}")
    scratch = (0, card.config.scratch)
    if r.scratch != scratch:
        raise _bad(card, f"scratch region {list(r.scratch)}; this machine's is {list(scratch)}")
    if r.memory[0] != scratch[1] or r.memory[1] < r.memory[0]:
        raise _bad(card, f"memory region {list(r.memory)} does not start right after the scratch columns "
                         f"({scratch[1]})")
    if r.instructions[0] != r.memory[1] or not r.instructions[0] < r.instructions[1] <= n:
        raise _bad(card, f"instruction region {list(r.instructions)} must be non-empty, follow the memory "
                         f"region ({r.memory[1]}) and end within n = {n}")


def _check_cells(card: Card) -> None:
    k = card.instruction_count
    for name in ("instruction_lines", "instruction_files"):
        if len(getattr(card, name)) not in (0, k):
            raise _bad(card, f"{name} has {len(getattr(card, name))} items, but the card holds {k} instructions")
    card.machine.check_cells(card)


def _check_symbols(card: Card) -> None:
    m, k = card.memory_size, card.instruction_count
    for key, s in card.symbols.items():
        if key != s.name:
            raise _bad(card, f"symbol {key!r} is stored under the name {s.name!r}")
        if s.kind == "code" and not 0 <= s.address < k:
            raise _bad(card, f"code label {s.name!r} names instruction {s.address}; the card has {k}")
        if s.kind == "data" and not (0 <= s.address and s.address + s.length <= m):
            raise _bad(card, f"data label {s.name!r} names cells {s.address}..{s.address + s.length - 1}; "
                             f"the card has {m}")


def _read_pc(card: Card) -> int:
    """The instruction the pc names; it must be an instruction column."""
    column = card.pc_column
    target = card.read_pc() + card.regions.instructions[0]
    if not 0 <= target - card.regions.instructions[0] < card.instruction_count:
        raise card.bad_entry("pc", column, f"the program counter names column {target} "
                                           f"({card.column_kind(target)}), not an instruction column")
    return target - card.regions.instructions[0]


def _compare(card: Card, expected: np.ndarray) -> None:
    differ = card.X != expected
    if not differ.any():
        return
    row, column = (int(i) for i in np.argwhere(differ)[0])
    label = card.rows.labels()[row]
    raise card.bad_entry(label, column, f"holds {shown(card.X[row, column])}, but a card with this program, "
                                        f"machine and pc holds {shown(expected[row, column])} there")


# -- files -----------------------------------------------------------------------------------------


def load_card_file(path: str | os.PathLike, machines: Mapping[str, Any]) -> Card:
    """The card in ``path``, read by the machine its metadata names among ``machines`` (name ->
    machine; fleqc.machines.load_card passes the registry) and checked completely."""
    def expect(read: dict, name: str) -> Optional[tuple[int, ...]]:
        """X's shape, d x n, from the metadata read before it (which is checked here first)."""
        if name != "X":
            return None
        meta = read_json_entry(read["meta"], CARD_FORMAT, CARD_VERSION, ErrorCode.BAD_CARD, str(path))
        fields = card_fields(meta, str(path), machines)
        return (fields["rows"].d, fields["config"].columns)

    arrays = read_npz(path, ("meta", "X"), ErrorCode.BAD_CARD, "punch card", expect)
    return card_from_arrays(arrays["X"], arrays["meta"], str(path), machines)


def card_from_arrays(X: np.ndarray, meta_array: np.ndarray, where: str, machines: Mapping[str, Any]) -> Card:
    """A card read from a file: metadata checked field by field, then the whole card
    (fleqc.card.check); BAD_CARD naming the field, or the row block and column."""
    meta = read_json_entry(meta_array, CARD_FORMAT, CARD_VERSION, ErrorCode.BAD_CARD, where)
    card = Card(X, **card_fields(meta, where, machines))
    validate_card(card, where)
    return card
