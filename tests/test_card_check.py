"""Issue 11, sections 1 and 2: a punch card is validated completely before any pass.

Every edited card is either refused by both backends with the same ``bad-card`` message naming the
row block and column, or run by both from the same state to the same result.
"""

from __future__ import annotations

import dataclasses
import glob
import json

import numpy as np
import pytest
from click.testing import CliRunner

from fleqc.machines import load_card
import fleqc
from fleqc.runner import run
from fleqc.state import DEFAULT_MAX_STEPS


def run_card_reference(card, max_steps=DEFAULT_MAX_STEPS):
    return run(card, "reference", max_steps=max_steps)


def run_transformer(card, max_steps=DEFAULT_MAX_STEPS):
    return run(card, max_steps=max_steps)
from fleqc.cli import main
from fleqc.errors import ErrorCode, FleqError
from fleqc.card.card import Card
from fleqc.card.check import validate_card


@pytest.fixture(scope="module")
def factorial():
    return fleqc.build("samples/factorial.fleq")


@pytest.fixture(scope="module")
def polynomial():
    return fleqc.build("samples/fleq_polynomial.fleq")


def edited(card, edit):
    X = card.X.copy()
    edit(card, X)
    return dataclasses.replace(card, X=X)


def refusals(card) -> tuple[FleqError, FleqError]:
    """The errors of both backends on ``card`` (each must refuse it)."""
    errors = []
    for run in (run_card_reference, run_transformer):
        with pytest.raises(FleqError) as err:
            run(card)
        errors.append(err.value)
    return errors[0], errors[1]


def code_of(card, column):
    return card.X[card.rows["pos"].slice, column]


# (name, edit of X, row block named, column named) on the SUBLEQ factorial card
SUBLEQ_EDITS = [
    ("pc on a padding column", lambda c, X: X.__setitem__((c.rows["pc"].slice, 0), code_of(c, c.config.columns - 1)),
     "pc", 0),
    ("pc on a memory column", lambda c, X: X.__setitem__((c.rows["pc"].slice, 0), code_of(c, 2)), "pc", 0),
    ("operand a on a padding column",
     lambda c, X: X.__setitem__((c.rows["instr_a"].slice, c.regions.instructions[0]), code_of(c, c.config.columns - 1)),
     "instr_a", "instructions"),
    ("branch target on a memory column",
     lambda c, X: X.__setitem__((c.rows["instr_c"].slice, c.regions.instructions[0] + 3), code_of(c, 1)),
     "instr_c", "instructions+3"),
    ("+1 in the scratchpad's instr_b", lambda c, X: X.__setitem__((c.rows["instr_b"][0], 0), 1.0), "instr_b[0]", 0),
    ("a memory bit of 0.4", lambda c, X: X.__setitem__((c.rows["mem"][2], c.regions.memory[0]), 0.4), "mem[2]", 1),
    ("a temp row not zero", lambda c, X: X.__setitem__((c.rows["wen"][0], 5), 1.0), "wen", 5),
    ("a positional code changed", lambda c, X: X.__setitem__((c.rows["pos"][0], 3), -X[c.rows["pos"][0], 3]),
     "pos[0]", 3),
    ("the one row zeroed", lambda c, X: X.__setitem__((c.rows["one"][0], 7), 0.0), "one", 7),
    ("pc in a second column", lambda c, X: X.__setitem__((c.rows["pc"].slice, 4), code_of(c, 9)), "pc[0]", 4),
    ("NaN in a temp row", lambda c, X: X.__setitem__((c.rows["val_a"][0], 5), np.nan), "val_a[0]", 5),
    ("a code entry halfway", lambda c, X: X.__setitem__((c.rows["instr_b"][1], c.regions.instructions[0]), 0.5),
     "instr_b[1]", "instructions"),
]

FLEQ_EDITS = [
    ("no function block selected",
     lambda c, X: X.__setitem__((c.rows["i_not_op"].slice, c.regions.instructions[0]), 1.0), "i_not_op",
     "instructions"),
    ("every function block selected",
     lambda c, X: X.__setitem__((c.rows["i_not_op"].slice, c.regions.instructions[0]), 0.0), "i_not_op",
     "instructions"),
    ("a selector half set",
     lambda c, X: X.__setitem__((c.rows["i_not_op"][0], c.regions.instructions[0]), 0.5), "i_not_op[0]",
     "instructions"),
    ("a view row changed",
     lambda c, X: X.__setitem__((c.rows["i_not_view"][2], c.regions.instructions[0]), 0.0), "i_not_view[2]",
     "instructions"),
    ("lanes disagree on pc",
     lambda c, X: X.__setitem__((c.rows["pc"].slice, 6), code_of(c, c.regions.instructions[0] + 2)), "pc[1]", 6),
    ("a value beyond 2^1000", lambda c, X: X.__setitem__((c.rows["mem"][0], c.regions.memory[0]), 2.0**1010),
     "mem[0]", "memory"),
    ("an entry outside the cell's shape", lambda c, X: X.__setitem__((c.rows["mem"][5], c.regions.memory[0]), 1.0),
     "mem[5]", "memory"),
    ("the fault row set", lambda c, X: X.__setitem__((c.rows["fault"][0], 1), 1.0), "fault", 1),
    ("pc on the reference column", lambda c, X: X.__setitem__((c.rows["pc"].slice, slice(1, 1 + c.config.lanes)),
                                                              code_of(c, 0)[:, None]), "pc", 1),
]


def _column(card, where) -> int:
    if isinstance(where, int):
        return where
    region, _, offset = where.partition("+")
    return getattr(card.regions, region)[0] + int(offset or 0)


def _check_refused(card, block, where):
    reference, transformer = refusals(card)
    assert reference.code is transformer.code is ErrorCode.BAD_CARD
    assert reference.message == transformer.message
    assert f"row block {block}, column {_column(card, where)} " in reference.message, reference.message


@pytest.mark.parametrize("name, edit, block, where", SUBLEQ_EDITS, ids=[e[0] for e in SUBLEQ_EDITS])
def test_edited_subleq_card_is_refused_by_both_backends(factorial, name, edit, block, where):
    _check_refused(edited(factorial, edit), block, where)


@pytest.mark.parametrize("name, edit, block, where", FLEQ_EDITS, ids=[e[0] for e in FLEQ_EDITS])
def test_edited_fleq_card_is_refused_by_both_backends(polynomial, name, edit, block, where):
    _check_refused(edited(polynomial, edit), block, where)


def test_edited_card_file_is_refused_at_load(factorial, tmp_path):
    card = edited(factorial, SUBLEQ_EDITS[0][1])
    path = tmp_path / "edited.npz"
    card.save(path)
    with pytest.raises(FleqError) as err:
        load_card(path)
    assert err.value.code is ErrorCode.BAD_CARD
    assert err.value.message.startswith(f"{path}: row block pc, column 0 (the scratchpad)")
    result = CliRunner().invoke(main, ["run", str(path)])
    assert result.exit_code == 1 and "error[bad-card]" in result.output and "Traceback" not in result.output


def test_both_backends_start_from_the_cards_pc(factorial):
    """A valid card whose pc names instruction 7 (j -= 1; stop at 0): both backends start there."""
    card = edited(factorial, lambda c, X: X.__setitem__((c.rows["pc"].slice, 0),
                                                        code_of(c, c.regions.instructions[0] + 7)))
    reference, transformer = run_card_reference(card), run_transformer(card)
    assert (reference.halted, reference.steps, reference.memory) == \
        (transformer.halted, transformer.steps, transformer.memory)
    assert reference.steps != fleqc.run(factorial, backend="reference").steps


def test_valid_edits_run_alike_on_both_backends(factorial):
    """Memory bits and pointers to other valid columns are a different program, not a bad card."""
    def edit(c, X):
        X[c.rows["mem"].slice, c.regions.memory[0]] = X[c.rows["mem"].slice, c.regions.memory[0] + 4]  # j = 1
        X[c.rows["instr_a"].slice, c.regions.instructions[0] + 5] = code_of(c, c.regions.memory[0] + 4)

    card = edited(factorial, edit)
    reference, transformer = run_card_reference(card, 500), run_transformer(card, 500)
    assert (reference.halted, reference.steps, reference.memory) == \
        (transformer.halted, transformer.steps, transformer.memory)


# -- metadata ----------------------------------------------------------------------------------------


def _set(path, value):
    def edit(meta):
        target = meta
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return edit


def _drop(key):
    return lambda meta: meta.pop(key)


# (name, edit of the metadata dict, a fragment of the message)
META_EDITS = [
    ("memory region starts before 0", _set(["regions", "memory"], [-5, 8]), "regions.memory[0]"),
    ("memory region beyond n", _set(["regions", "memory"], [1, 500]), "regions.memory[1]"),
    ("memory region as strings", _set(["regions", "memory"], ["1", "7"]), "must be an integer"),
    ("memory region with 3 values", _set(["regions", "memory"], [1, 7, 9]), "has 3 items"),
    ("instructions shifted", _set(["regions", "instructions"], [9, 20]), "instruction region"),
    ("regions a string", _set(["regions"], "all"), "regions must be an object"),
    ("columns changed", _set(["regions", "columns"], 64), "regions.columns"),
    ("symbol address 10^6", _set(["symbols", 0, "address"], 10**6), "symbols[0].address"),
    ("symbol address infinite", _set(["symbols", 0, "address"], float("inf")), "must be an integer"),
    ("symbol address a float", _set(["symbols", 0, "address"], 1.0), "must be an integer"),
    ("symbol past the memory", _set(["symbols", 0, "address"], 7), "data label"),
    ("symbol length 0", _set(["symbols", 0, "length"], 0), "symbols[0].length"),
    ("symbol kind unknown", _set(["symbols", 0, "kind"], "tape"), "symbols[0].kind"),
    ("symbol name a number", _set(["symbols", 0, "name"], 7), "symbols[0].name"),
    ("symbols not a list", _set(["symbols"], {"a": 1}), "symbols must be an array"),
    ("machine columns a float", _set(["machine", "columns"], 32.5), "machine.columns"),
    ("machine columns not a power of two", _set(["machine", "columns"], 48), "power of two"),
    ("machine bits a bool", _set(["machine", "bits"], True), "machine.bits"),
    ("machine kind unknown", _set(["machine", "kind"], "turing"), "machine.kind"),
    ("machine missing", _drop("machine"), "machine is missing"),
    ("rows edited", _set(["rows", 0, 1], 2), "row blocks"),
    ("instruction lines strings", _set(["instruction_lines"], ["x"]), "instruction_lines[0]"),
    ("source a list", _set(["source"], []), "source must be a string"),
]

FLEQ_META_EDITS = [
    ("cell shape 9x9", _set(["cell_shapes", 0], [9, 9]), "cell 0 has shape [9, 9]"),
    ("cell shape [100]", _set(["cell_shapes", 0], [100]), "cell 0 has shape [100]"),
    ("cell shape [1,1,1]", _set(["cell_shapes", 0], [1, 1, 1]), "cell_shapes[0] has 3 items"),
    ("a cell shape missing", lambda meta: meta["cell_shapes"].pop(), "shapes of"),
    ("cell columns 7", _set(["machine", "cell"], 99), "--cell must be between"),
]


def _write_with_meta(card, tmp_path, edit):
    path = tmp_path / "card.npz"
    card.save(path)
    with np.load(path, allow_pickle=False) as data:
        X, meta = data["X"], json.loads(str(data["meta"][()]))
    edit(meta)
    np.savez(path, X=X, meta=np.array(json.dumps(meta)))
    return path


@pytest.mark.parametrize("name, edit, fragment", META_EDITS, ids=[e[0] for e in META_EDITS])
def test_edited_metadata_is_a_clear_error_everywhere(factorial, tmp_path, name, edit, fragment):
    path = _write_with_meta(factorial, tmp_path, edit)
    with pytest.raises(FleqError) as err:
        load_card(path)
    assert err.value.code is ErrorCode.BAD_CARD and fragment in err.value.message, err.value.message
    for command in (["inspect", str(path)], ["run", str(path)], ["run", str(path), "--backend", "reference"]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 1 and "error[bad-card]" in result.output, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("name, edit, fragment", FLEQ_META_EDITS, ids=[e[0] for e in FLEQ_META_EDITS])
def test_edited_fleq_metadata_is_a_clear_error(polynomial, tmp_path, name, edit, fragment):
    path = _write_with_meta(polynomial, tmp_path, edit)
    with pytest.raises(FleqError) as err:
        load_card(path)
    assert err.value.code is ErrorCode.BAD_CARD and fragment in err.value.message, err.value.message


def test_every_sample_card_is_valid():
    for path in sorted(glob.glob("samples/*.fleq")):
        program, pc = validate_card(fleqc.build(path))
        assert pc == 0
