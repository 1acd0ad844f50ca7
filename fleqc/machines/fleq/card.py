"""Lay a linked FLEQ program out as a punch card, and read one back.

The card builder lowers each FLEQ function onto a function block of the machine and chooses the
operand views from the linked shapes, as the function's record says (``block``, ``views`` in
fleqc.machines.fleq.functions; the views are named in :mod:`fleqc.machines.fleq.rows`):

==========================  =========  =====================================
function, operand shapes    block      views (lane (i, j) reads ...)
==========================  =========  =====================================
add, sub                    add, sub   A[i, j], B[i, j]
mul (same shapes)           prod       A[i, j], B[i, j]
mul (a scalar, b not)       prod       A[0, 0], B[i, j]   (and the mirror case)
matmul M @ M, v @ M         prod       A[i, k], B[k, j]
matmul M @ v                prod       A[j, k], B[i, k]   (vectors are stored as row 0)
matmul v @ v                prod       A[i, k], B[i, k]
transpose (matrix)          copy       A[j, i]
transpose (vector, scalar)  copy       A[i, j]            (a vector is its own transpose)
mov, relu, sigmoid, ...     same name  A[i, j]
==========================  =========  =====================================
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fleqc.errors import ErrorCode, FleqError, shown
from fleqc.machines.fleq.functions import FLEQ_FUNCTIONS, VALUE_LIMIT, ShapeError
from fleqc.card.card import Card, instruction_origins
from fleqc.card.codes import position_codes
from fleqc.card.columns import fitting_columns
from fleqc.machines.fleq.config import DEFAULT_CELL, MAX_CELL, FleqConfig
from fleqc.machines.fleq.rows import TABLE_OPS, OPS, VIEWS, entry_index, fits_cell, fleq_rows
from fleqc.card.columns import ColumnRegions, check_fits
from fleqc.program import Cell, FleqInstruction, LinkedProgram

def lower(func: str, a: tuple[int, ...], b: tuple[int, ...]) -> tuple[str, tuple[str, ...]]:
    """The function block and operand views of ``func`` on operands of shapes ``a`` and ``b``."""
    function = FLEQ_FUNCTIONS[func]
    return function.block, function.views(a, b)


def raise_function(block: str, views: tuple[str, ...]) -> str:
    """The FLEQ function a (block, views) pair came from (``lower`` read backwards): of the
    functions on ``block`` whose views include ``views``, the one with the fewest (``mov`` rather
    than ``transpose`` for a vector: the two are the same there). Views no function on the block
    uses (an edited card) give the block's first function: the check of the card then names the
    view row that differs from that function's card."""
    on_block = [f for f in FLEQ_FUNCTIONS.values() if f.block == block]
    candidates = [f for f in on_block if set(views) <= f.view_set] or on_block[:1]
    return min(candidates, key=lambda f: len(f.view_set)).name


def choose_fleq_config(program: LinkedProgram, columns: int | None = None, cell: int | None = None) -> FleqConfig:
    """The smallest machine that fits (or the one asked for): every cell's shape within cell x cell."""
    largest = max((size for c in program.cells for size in c.shape), default=1)
    if largest > MAX_CELL:
        big = next(c for c in program.cells if max(c.shape, default=1) == largest)
        raise FleqError(ErrorCode.PROGRAM_TOO_LARGE,
                        f"cell {big.address} has shape {big.shape}, larger than the largest FLEQ machine's "
                        f"{MAX_CELL}x{MAX_CELL} cells", big.span)
    if cell is None:
        cell = max(DEFAULT_CELL, largest)
    for c in program.cells:
        if not fits_cell(c.shape, cell):
            raise FleqError(
                ErrorCode.PROGRAM_TOO_LARGE,
                f"cell {c.address} has shape {c.shape}, larger than the machine's {cell}x{cell} cells; "
                f"use --cell {largest} or more",
                c.span,
            )
    needed = 1 + cell * cell + program.memory_size + len(program.instructions)
    config = FleqConfig(columns=columns if columns is not None else fitting_columns(needed), cell=cell)
    check_fits(program.memory_size, len(program.instructions), config.columns, config.scratch,
               scratch_name="reference and lane")
    return config


def program_to_fleq_card(program: LinkedProgram, config: FleqConfig, start: int = 0, machine: Any = None) -> Card:
    """The punch card of a FLEQ program; the pc of every lane names instruction ``start``."""
    rows = fleq_rows(config)
    regions = ColumnRegions.plan(program.memory_size, len(program.instructions), config.columns, config.scratch)
    codes = position_codes(config.columns)
    S, c = config.lanes, config.cell
    lanes = slice(1, 1 + S)

    X = np.zeros((rows.d, config.columns))
    X[rows["one"].slice] = 1.0
    X[rows["ref"][0], 0] = 1.0
    X[rows["not_ref"][0], 1:] = 1.0
    X[rows["lane"][0], lanes] = 1.0
    X[rows["not_lane"][0]] = 1.0 - X[rows["lane"][0]]
    X[rows["pos"].slice] = codes
    X[rows["pos_one"].slice, 1:] = codes[:, 1:] > 0
    X[rows["pos_zero"].slice, 1:] = codes[:, 1:] < 0
    for block in ("not_entry", "not_row", "not_col"):
        X[rows[block].slice] = 1.0
    for r in range(S):
        column = 1 + r
        X[rows["not_entry"][r], column] = 0.0
        X[rows["not_row"][r // c], column] = 0.0
        X[rows["not_col"][r % c], column] = 0.0
    X[rows["pc"].slice, lanes] = codes[:, [regions.instruction_column(start)]]

    for cell_ in program.cells:
        X[[rows["mem"][k] for k in entry_index(cell_.shape, c)], regions.memory_column(cell_.address)] = (
            np.asarray(cell_.value, dtype=np.float64).reshape(-1)
        )
    shapes = [cell_.shape for cell_ in program.cells]
    for instr in program.instructions:
        assert isinstance(instr, FleqInstruction)
        column = regions.instruction_column(instr.index)
        block, views = lower(instr.func, shapes[instr.src_a], shapes[instr.src_b])
        for field, address in (("dst", instr.dst), ("a", instr.src_a), ("b", instr.src_b), ("flag", instr.flag)):
            X[rows[f"i_{field}"].slice, column] = codes[:, regions.memory_column(address)]
        X[rows["i_p"].slice, column] = codes[:, regions.instruction_column(instr.target)]
        X[rows["i_not_op"].slice, column] = [0.0 if op == block else 1.0 for op in OPS]
        X[rows["i_not_tab"][0], column] = 0.0 if block in TABLE_OPS else 1.0
        X[rows["i_not_view"].slice, column] = [0.0 if v in views else 1.0 for v in VIEWS]
        inside = set(entry_index(shapes[instr.dst], c))
        X[rows["i_not_mask"].slice, column] = [0.0 if r in inside else 1.0 for r in range(S)]
        X[rows["i_flag_is_dst"][0], column] = float(instr.flag == instr.dst)
        X[rows["i_not_flag_is_dst"][0], column] = float(instr.flag != instr.dst)
    return Card(X, config, rows, regions, dict(program.symbols), program.source_name, machine=machine,
                cell_shapes=tuple(shapes), **instruction_origins(program))


def fleq_card_to_program(card: Card) -> LinkedProgram:
    """The linked FLEQ program a card holds (spans reduced to the instruction lines)."""
    X, rows = card.X, card.rows
    ins0, ins1 = card.regions.instructions

    def chosen(block: str, column: int, names: tuple[str, ...]) -> list[str]:
        return [name for k, name in enumerate(names) if X[rows[block][k], column] == 0.0]

    cells = tuple(Cell(i, value, value.shape) for i, value in enumerate(card.read_memory()))
    instructions = []
    for j, column in enumerate(range(ins0, ins1)):
        ops = chosen("i_not_op", column, OPS)
        if len(ops) != 1:
            raise card.bad_entry("i_not_op", column, f"selects {len(ops)} function blocks "
                                 f"({', '.join(ops) or 'none'}); exactly one row must be 0, the others 1")
        func = raise_function(ops[0], tuple(chosen("i_not_view", column, VIEWS)))
        instructions.append(FleqInstruction(
            j, func,
            card.pointer("i_dst", column, "memory"),
            card.pointer("i_a", column, "memory"),
            card.pointer("i_b", column, "memory"),
            card.pointer("i_flag", column, "memory"),
            card.pointer("i_p", column, "instructions"),
            card.instruction_span(j),
        ))
    program = LinkedProgram("fleq", 64, cells, tuple(instructions), dict(card.symbols), card.source_name)
    _check_fleq_shapes(card, program)
    return program


def check_fleq_cells(card: Card) -> None:
    """One shape per memory cell, each within the machine's cell; every value within |x| <= 2^1000."""
    m = card.memory_size
    if len(card.cell_shapes) != m:
        raise FleqError(ErrorCode.BAD_CARD,
                        f"it gives the shapes of {len(card.cell_shapes)} cells, but has {m} memory cells")
    c = card.config.cell
    for address, shape in enumerate(card.cell_shapes):
        if len(shape) > 2 or not all(1 <= size <= c for size in shape):
            raise FleqError(ErrorCode.BAD_CARD, f"memory cell {address} has shape {list(shape)}, not a scalar, "
                                                f"vector or matrix within the machine's {c}x{c} cells")
    mem = card.X[card.rows["mem"].slice, card.regions.memory[0]:card.regions.memory[1]]
    beyond = np.argwhere(~(np.abs(mem) <= VALUE_LIMIT))
    if len(beyond):
        row, column = beyond[0]
        raise card.bad_entry(f"mem[{row}]", card.regions.memory[0] + int(column),
                             f"holds {shown(mem[row, column])}, beyond the machine's range |x| <= 2^1000")


def _check_fleq_shapes(card: Card, program: LinkedProgram) -> None:
    """Each instruction's function takes its operands' shapes and gives its destination's; the
    flag is a scalar (the linker's rules, for a card that may have been edited)."""
    shapes = card.cell_shapes
    for instr in program.instructions:
        column = card.regions.instruction_column(instr.index)
        function = FLEQ_FUNCTIONS[instr.func]
        a, b, dst = shapes[instr.src_a], shapes[instr.src_b], shapes[instr.dst]
        try:
            result = function.result_shape(a, b if function.arity == 2 else None)
        except ShapeError as exc:
            raise card.bad_entry("i_a", column, f"{instr.func}: {exc}") from None
        if not function.gives(result, dst):
            raise card.bad_entry("i_dst", column, f"{instr.func} gives shape {list(result)}, but the "
                                                  f"destination cell {instr.dst} has shape {list(dst)}")
        if shapes[instr.flag] != ():
            raise card.bad_entry("i_flag", column, f"the flag cell {instr.flag} is not a scalar")



def read_fleq_cell(card: Card, X: np.ndarray, address: int) -> np.ndarray:
    """Memory cell ``address`` as a float64 array of its shape."""
    return fleq_cell_in_mem(card, X[card.rows["mem"].slice], address)


def fleq_cell_in_mem(card: Card, mem: np.ndarray, address: int) -> np.ndarray:
    """Memory cell ``address`` read from ``mem``, the card's ``mem`` rows only (the health check keeps
    just those rows of the state before a pass)."""
    shape = card.cell_shapes[address]
    value = mem[entry_index(shape, card.config.cell), card.regions.memory_column(address)].reshape(shape)  # a copy
    value += 0.0  # -0.0 reads as 0.0 (the machine's gates make no negative zeros)
    return value
