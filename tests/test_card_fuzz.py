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


# -- the classic machine: images, cards and inputs -------------------------------------------------------
#
# Mutated classic sources (.sq text and .dec images) are refused as located errors, or run on both
# backends with equal halting, steps, memory and output bytes; mutated classic cards are refused at
# load or run alike; random inputs give the same output on both backends.


CLASSIC_CAT = "loop: (-1) ch\n      Z ch end\n      ch (-1)\n      ch ch\n      Z Z loop\nend:  Z Z (-1)\n. Z:0 ch:0\n"
CLASSIC_HELLO = "c (-1)\nZ Z (-1)\n. Z:0 c:65\n"
CLASSIC_TOKENS = ["(-1)", "-1", "0", "1", "3", "9", "65535", "Z", "ch", "loop", "end", "?", ":", ".", ";", "#",
                  "\n", " ", "x:", "-", "+", "'", '"', "\\"]


def classic_outcome(subject, backend, max_steps, given_input: bytes):
    """('result', halted, steps, memory, output bytes) or ('error', code) of one classic run."""
    printed = bytearray()
    try:
        result = run(subject, backend, max_steps=max_steps, output=printed, input=given_input)
    except FleqError as err:
        return ("error", err.code)
    return ("result", result.halted, result.steps, result.memory, bytes(printed))


def mutate_text(rng, text: str) -> str:
    for _ in range(1 + rng.integers(3)):
        at = int(rng.integers(len(text) + 1))
        choice = rng.random()
        if choice < 0.4:
            text = text[:at] + CLASSIC_TOKENS[rng.integers(len(CLASSIC_TOKENS))] + text[at:]
        elif choice < 0.7:
            text = text[:at] + text[at + 1 + int(rng.integers(4)):]
        else:
            text = text[:at] + chr(int(rng.integers(1, 0x2FF))) + text[at:]
    return text


def fuzz_classic_sources(cases, seed, tmp_path, max_steps=300):
    rng = np.random.default_rng(seed)
    seen: dict[str, int] = {}
    bases = [("cat.sq", CLASSIC_CAT), ("hello.sq", CLASSIC_HELLO), ("hello.dec", "3 -1 3 0 0 -1 65 0\n")]
    for i in range(cases):
        name, base = bases[i % len(bases)]
        path = tmp_path / name
        path.write_text(mutate_text(rng, base), encoding="utf-8")
        given = bytes(rng.integers(1, 256, size=int(rng.integers(0, 40))).astype(np.uint8))
        try:
            program = fleqc.compile(path)
        except FleqError as err:
            assert err.code is not ErrorCode.BAD_CARD and (err.span is None or err.span.line >= 1), err
            seen["refused"] = seen.get("refused", 0) + 1
            continue
        reference = classic_outcome(program, "reference", max_steps, given)
        transformer = classic_outcome(program, "transformer", max_steps, given)
        assert reference == transformer, (path.read_text(), given, reference, transformer)
        seen[reference[0]] = seen.get(reference[0], 0) + 1
    return seen


def fuzz_classic_cards(cases, seed, tmp_path, max_steps=200):
    source = tmp_path / "cat.sq"
    source.write_text(CLASSIC_CAT)
    card = fleqc.build(source, input=b"hi")
    rng = np.random.default_rng(seed)
    seen: dict[str, int] = {}
    for i in range(cases):
        path = tmp_path / f"c{i % 4}.npz"
        X, meta = card.X.copy(), card.meta()
        if rng.random() < 0.35:
            mutate_meta(rng, meta)
        else:
            for _ in range(1 + rng.integers(3)):
                X[rng.integers(X.shape[0]), rng.integers(X.shape[1])] = VALUES[rng.integers(len(VALUES))]
        np.savez(path, X=X, meta=np.array(json.dumps(meta)))
        try:
            loaded = load_card(path)
        except FleqError as err:
            assert err.code is ErrorCode.BAD_CARD, err.message
            seen["refused at load"] = seen.get("refused at load", 0) + 1
            continue
        reference = classic_outcome(loaded, "reference", max_steps, None)
        transformer = classic_outcome(loaded, "transformer", max_steps, None)
        assert reference == transformer, (reference, transformer)
        seen["ran alike"] = seen.get("ran alike", 0) + 1
    return seen


def fuzz_classic_inputs(cases, seed, tmp_path):
    source = tmp_path / "cat.sq"
    source.write_text(CLASSIC_CAT)
    program = fleqc.compile(source)
    rng = np.random.default_rng(seed)
    for _ in range(cases):
        size = int(rng.choice([0, 1, 2, 63, 64, 65, 200, 4095, 4096]))
        given = bytes(rng.integers(0, 256, size=size).astype(np.uint8))
        reference = classic_outcome(program, "reference", 30_000, given)
        transformer = classic_outcome(program, "transformer", 30_000, given)
        assert reference == transformer, (given[:20], reference[:3], transformer[:3])
        if size > 4095:
            assert reference == ("error", ErrorCode.PROGRAM_TOO_LARGE)
        else:
            assert reference[0] == "result" and reference[4] == given.split(b"\0")[0]


def test_mutated_classic_sources(tmp_path):
    seen = fuzz_classic_sources(30, 7, tmp_path)
    assert sum(seen.values()) == 30 and seen.get("refused", 0) and seen.get("result", 0), seen


def test_mutated_classic_cards(tmp_path):
    seen = fuzz_classic_cards(20, 8, tmp_path)
    assert seen.get("refused at load", 0) > 5, seen


def test_classic_inputs(tmp_path):
    fuzz_classic_inputs(4, 9, tmp_path)


@pytest.mark.slow
def test_mutated_classic_sources_many(tmp_path):
    fuzz_classic_sources(1500, 2011, tmp_path)


@pytest.mark.slow
def test_mutated_classic_cards_many(tmp_path):
    fuzz_classic_cards(500, 2011, tmp_path)


@pytest.mark.slow
def test_classic_inputs_many(tmp_path):
    fuzz_classic_inputs(60, 2011, tmp_path)


# -- safetensors weights files ----------------------------------------------------------------------------


def fuzz_safetensors(cases, seed, tmp_path):
    """As fuzz_weights, for .safetensors files: the header's metadata mutated (with or without a
    recomputed digest) or one tensor entry changed (without): refused or run as the original."""
    pytest.importorskip("safetensors")
    from safetensors.numpy import load_file, save_file

    from fleqc.interop.safetensors_io import _digest, load_safetensors, read_metadata, save_safetensors

    original = tmp_path / "w.safetensors"
    save_safetensors(weights_for(CONFIG), original)
    arrays, base = load_file(original), read_metadata(original)
    card = fleqc.build("samples/factorial.fleq", columns=32)
    expected = run(card, "reference")
    rng = np.random.default_rng(seed)
    refused = 0
    for _ in range(cases):
        meta, mutated = dict(base), dict(arrays)
        redigest = rng.random() < 0.5
        if redigest or rng.random() < 0.5:
            key = sorted(meta)[rng.integers(len(meta))]
            try:
                value = json.loads(meta[key])
            except ValueError:
                value = meta[key]
            if isinstance(value, (dict, list)) and value and rng.random() < 0.6:
                paths = [p for p in _paths(value) if p]
                path = paths[rng.integers(len(paths))]
                target = value
                for step in path[:-1]:
                    target = target[step]
                target[path[-1]] = JUNK[rng.integers(len(JUNK))]
            else:
                value = JUNK[rng.integers(len(JUNK))]
            meta[key] = json.dumps(value) if rng.random() < 0.9 else str(value)
        else:
            name = sorted(mutated)[rng.integers(len(mutated))]
            a = mutated[name].copy()
            if a.size:
                a.flat[rng.integers(a.size)] = VALUES[rng.integers(len(VALUES))]
            mutated[name] = a
        if redigest:
            try:
                meta["sha256"] = _digest(mutated, meta)
            except (TypeError, ValueError, KeyError):
                pass
        path = tmp_path / "m.safetensors"
        save_file(mutated, path, metadata=meta)
        try:
            result = run(card, weights=load_safetensors(path))
        except FleqError as err:
            assert err.code in (ErrorCode.BAD_WEIGHTS, ErrorCode.MACHINE_MISMATCH), err.message
            refused += 1
            continue
        assert (result.halted, result.steps, result.memory) == (expected.halted, expected.steps, expected.memory)
    return refused


def test_mutated_safetensors_files(tmp_path):
    assert fuzz_safetensors(30, 5, tmp_path) >= 15


@pytest.mark.slow
def test_mutated_safetensors_files_many(tmp_path):
    fuzz_safetensors(1000, 2011, tmp_path)
