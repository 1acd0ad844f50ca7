"""Issue 11: a fuzzer of punch cards and weights files, comparing both backends.

Every mutated card (arrays and metadata) is written to disk and read back. It is either refused
with ``bad-card`` (at load, by both backends alike), or both backends run it from the same state
and agree: SUBLEQ exactly (halted, steps, memory); FLEQ on halting, steps and memory within the
machine's accuracy, or on the same error code (one table of windows: both refuse the same
operands). Mutated weights files (metadata, with or without a recomputed digest;
arrays, without one) are refused (``bad-weights``, ``machine-mismatch``) or run exactly as the
originals. Arrays changed *with* a recomputed digest are other weights, which only the health
checks guard, so they are not fuzzed here. Nothing else, and never a traceback, may come out.

The default suite runs a few dozen cases; ``make test-slow`` runs thousands.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fleqc.machines import load_card
import fleqc
from fleqc.runner import run
from fleqc.errors import ErrorCode, FleqError
from fleqc.card.card import Card
from fleqc.machines.subleq.config import SubleqConfig
from fleqc.machines import weights_for
from fleqc.transformer import MachineFault
from fleqc.transformer.weights_io import digest, load_weights, save_weights

JUNK = [None, True, -1, 0, 1, 7, 2**31, 10**18, 1.5, -0.0, math.inf, math.nan, "", "x", "fleq", [], [1], [1, 2, 3],
        [-5, 8], {}, {"kind": "subleq"}, [[1, 2]], "9" * 400]
VALUES = [0.0, 1.0, -1.0, 0.5, -0.5, 2.0, 1e-300, 1e300, 3.0, -2.0]
SUBLEQ_FIELDS = ("instr_a", "instr_b", "instr_c", "pc")
FLEQ_FIELDS = ("i_dst", "i_a", "i_b", "i_flag", "i_p", "pc")


# -- mutations ------------------------------------------------------------------------------------


def _paths(value, prefix=()):
    """Every path into a JSON value (dict keys and list indices)."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _paths(item, prefix + (i,))


def mutate_meta(rng, meta: dict) -> None:
    paths = [p for p in _paths(meta) if p and p[0] not in ("format", "version")]
    path = paths[rng.integers(len(paths))]
    parent = meta
    for key in path[:-1]:
        parent = parent[key]
    if rng.random() < 0.15 and isinstance(parent, dict):
        del parent[path[-1]]
    elif rng.random() < 0.3 and isinstance(parent[path[-1]], int) and not isinstance(parent[path[-1]], bool):
        parent[path[-1]] += int(rng.choice([-1, 1, 2, -100, 1000]))
    else:
        parent[path[-1]] = JUNK[rng.integers(len(JUNK))]


def mutate_X(rng, card: Card, X: np.ndarray) -> None:
    d, n = X.shape
    kind = rng.integers(4)
    if kind == 0:  # any entry, any value
        X[rng.integers(d), rng.integers(n)] = VALUES[rng.integers(len(VALUES))]
    elif kind == 1:  # a pointer or the pc names another column (often a valid, different program)
        fields = FLEQ_FIELDS if card.config.kind == "fleq" else SUBLEQ_FIELDS
        block = card.rows[fields[rng.integers(len(fields))]]
        target = X[card.rows["pos"].slice, rng.integers(n)]
        if block.name == "pc":
            lo, hi = card.regions.scratch
            columns = slice(lo + 1, hi) if card.config.kind == "fleq" else slice(lo, hi)
            X[block.slice, columns] = target[:, None]
        else:
            X[block.slice, rng.integers(*card.regions.instructions)] = target
    elif kind == 2:  # a memory value: a bit flipped (SUBLEQ), negated or halved (FLEQ)
        row = card.rows["mem"][rng.integers(card.rows["mem"].size)]
        column = rng.integers(*card.regions.memory) if card.memory_size else 0
        X[row, column] = -X[row, column] if card.config.kind == "subleq" or rng.random() < 0.5 else X[row, column] / 2
    else:  # a whole row block of one column zeroed
        blocks = list(card.rows)
        block = blocks[rng.integers(len(blocks))]
        X[block.slice, rng.integers(n)] = 0.0


def mutated_card_file(rng, card: Card, path) -> None:
    X, meta = card.X.copy(), card.meta()
    for _ in range(1 + rng.integers(2)):
        if rng.random() < 0.35:
            mutate_meta(rng, meta)
        else:
            mutate_X(rng, card, X)
    np.savez(path, X=X, meta=np.array(json.dumps(meta)))


# -- outcomes ----------------------------------------------------------------------------------------


def outcome(run, card, max_steps):
    """('result', Result) or ('error', code, message); a MachineFault or any other exception fails."""
    try:
        return ("result", run(card, max_steps))
    except FleqError as err:
        return ("error", err.code, err.message)


def _agree_fleq(a, b) -> bool:
    """Same outcome (both backends refuse the same operands: one table of windows), results within
    the machine's error bounds."""
    if a[0] != b[0]:
        return False
    if a[0] == "error":
        return a[1] == b[1] and (a[1] is not ErrorCode.BAD_CARD or a[2] == b[2])
    ra, rb = a[1], b[1]
    if (ra.halted, ra.steps) != (rb.halted, rb.steps) or ra.memory.keys() != rb.memory.keys():
        return False
    return all(np.allclose(np.asarray(ra.memory[k], dtype=float), np.asarray(rb.memory[k], dtype=float),
                           rtol=1e-6, atol=1e-9) for k in ra.memory)


def check_card(path, max_steps) -> str:
    """Load and run one mutated card on both backends; returns what happened."""
    try:
        card = load_card(path)
    except FleqError as err:
        assert err.code is ErrorCode.BAD_CARD, err.message
        return "refused at load"
    try:
        reference = outcome(lambda c, m: run(c, "reference", max_steps=m), card, max_steps)
        transformer = outcome(lambda c, m: run(c, max_steps=m), card, max_steps)
    except MachineFault as fault:  # a validated card never faults
        raise AssertionError(f"machine fault on a validated card: {fault}") from None
    if card.config.kind == "subleq":
        key = (lambda o: (o[0], o[1].halted, o[1].steps, o[1].memory, o[1].pc) if o[0] == "result" else o)
        assert key(reference) == key(transformer), (reference, transformer)
    else:
        assert _agree_fleq(reference, transformer), (reference, transformer)
    return "ran alike" if reference[0] == "result" else f"both refused: {reference[1].value}"


def fuzz_cards(sample, cases, seed, max_steps, tmp_path):
    card = fleqc.build(sample)
    rng = np.random.default_rng(seed)
    seen: dict[str, int] = {}
    for i in range(cases):
        path = tmp_path / f"m{i % 4}.npz"
        mutated_card_file(rng, card, path)
        what = check_card(path, max_steps)
        seen[what.split(":")[0]] = seen.get(what.split(":")[0], 0) + 1
    return seen


def test_mutated_subleq_cards(tmp_path):
    seen = fuzz_cards("samples/factorial.fleq", 60, 11, 300, tmp_path)
    assert seen.get("refused at load", 0) > 10 and seen.get("ran alike", 0) > 5, seen


def test_mutated_fleq_cards(tmp_path):
    seen = fuzz_cards("samples/fleq_polynomial.fleq", 8, 12, 20, tmp_path)
    assert sum(seen.values()) == 8, seen


@pytest.mark.slow
@pytest.mark.parametrize("sample, cases, max_steps", [
    ("samples/factorial.fleq", 1500, 400),
    ("samples/giannou_linear_search.fleq", 500, 400),
    ("samples/fleq_polynomial.fleq", 150, 20),
    ("samples/fleq_counter_loop.fleq", 100, 50),
])
def test_mutated_cards_many(tmp_path, sample, cases, max_steps):
    seen = fuzz_cards(sample, cases, 2011, max_steps, tmp_path)
    assert sum(seen.values()) == cases, seen


# -- weights files -------------------------------------------------------------------------------------


CONFIG = SubleqConfig(columns=32, bits=16)


def fuzz_weights(cases, seed, tmp_path):
    original = tmp_path / "w.npz"
    save_weights(weights_for(CONFIG), original)
    with np.load(original, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    base_meta = json.loads(str(arrays.pop("meta")[()]))
    card = fleqc.build("samples/factorial.fleq", columns=32)
    expected = run(card, "reference")
    rng = np.random.default_rng(seed)
    refused = 0
    for i in range(cases):
        meta, mutated = json.loads(json.dumps(base_meta)), dict(arrays)
        redigest = rng.random() < 0.5
        if redigest or rng.random() < 0.5:
            mutate_meta(rng, meta)
        else:
            name = sorted(mutated)[rng.integers(len(mutated))]
            a = mutated[name].copy()
            if a.size:
                a.flat[rng.integers(a.size)] = VALUES[rng.integers(len(VALUES))]
            mutated[name] = a
        if redigest:  # whoever edits the metadata may recompute the digest: the checks must still hold
            try:
                meta["sha256"] = digest(mutated, meta)
            except (TypeError, ValueError):
                pass
        path = tmp_path / "m.npz"
        np.savez(path, meta=np.array(json.dumps(meta)), **mutated)
        try:
            result = run(card, weights=load_weights(path))
        except FleqError as err:
            assert err.code in (ErrorCode.BAD_WEIGHTS, ErrorCode.MACHINE_MISMATCH), err.message
            refused += 1
            continue
        assert (result.halted, result.steps, result.memory) == (expected.halted, expected.steps, expected.memory)
    return refused


def test_mutated_weights_files(tmp_path):
    assert fuzz_weights(30, 5, tmp_path) >= 20


@pytest.mark.slow
def test_mutated_weights_files_many(tmp_path):
    fuzz_weights(1000, 2011, tmp_path)
