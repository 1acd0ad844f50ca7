"""`fleqc disasm`: every sample's card disassembles to text that reassembles to the same program."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import fleqc
from fleqc.cli import main
from fleqc.observe.disasm import disassemble
from fleqc.program import FleqInstruction, SubleqInstruction

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted((ROOT / "samples").glob("*.fleq")) + sorted((ROOT / "samples" / "apps").glob("*.fleq"))


def operands(instruction):
    if isinstance(instruction, SubleqInstruction):
        return ("subleq", instruction.a, instruction.b, instruction.target)
    assert isinstance(instruction, FleqInstruction)
    i = instruction
    return (i.func, i.dst, i.src_a, i.src_b, i.flag, i.target)


def same_value(x, y) -> bool:
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        return x.shape == y.shape and x.tobytes() == y.tobytes()
    return x == y


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_disasm_of_the_card_reassembles_to_the_source_program(sample):
    source = fleqc.compile(sample)
    text = disassemble(fleqc.build(source))  # read back out of X
    again = fleqc.compile(text)
    m, k = len(source.cells), len(source.instructions)
    # every cell at its address with its value, every instruction at its index with its operands;
    # the assembler only appends its implicit final halt (and the hidden cells that needs)
    assert len(again.instructions) == k + 1 and len(again.cells) >= m
    assert [operands(i) for i in again.instructions[:k]] == [operands(i) for i in source.instructions]
    for old, new in zip(source.cells, again.cells):
        assert old.shape == new.shape and same_value(old.value, new.value), old.address
    # the program's own labels keep their names, kinds and addresses
    for name, symbol in source.symbols.items():
        if symbol.hidden:
            continue
        assert again.symbols[name].kind == symbol.kind and again.symbols[name].address == symbol.address, name
        if symbol.kind == "data" and symbol.address + symbol.length < m:
            assert again.symbols[name].length == symbol.length, name
    # the comments point back to the source lines
    lines = {i.span.line for i in source.instructions if i.span and i.span.file == source.source_name}
    assert all(f"{sample.name}:{line}" in text for line in lines)


def test_disasm_text_reads_like_the_source():
    text = disassemble(fleqc.build(ROOT / "samples" / "gcd.fleq"))
    assert "a:" in text and ".word 1071" in text and ".bits 16" in text
    assert "loop:" in text and "subleq zero, b, done" in text
    assert "subleq neg_b, neg_b " in text  # falls through: written without its target
    fleq = disassemble(fleqc.build(ROOT / "samples" / "fleq_matrix_chain.fleq"))
    assert ".machine fleq" in fleq and ".matrix 2 3  1.0, 2.0, 3.0, 4.0, 5.0, 6.0" in fleq
    assert "fleq AB, matmul, A, B," in fleq


def test_disasm_command(tmp_path):
    card = tmp_path / "f.npz"
    runner = CliRunner()
    assert runner.invoke(main, ["build", str(ROOT / "samples" / "factorial.fleq"), "-o", str(card)]).exit_code == 0
    result = runner.invoke(main, ["disasm", str(card)])
    assert result.exit_code == 0, result.output
    assert "result:" in result.stdout and "subleq" in result.stdout
    out = tmp_path / "f.fleq"
    assert runner.invoke(main, ["disasm", str(card), "-o", str(out)]).exit_code == 0
    rerun = runner.invoke(main, ["run", str(out), "--json"])
    assert rerun.exit_code == 0 and '"result": 5040' in rerun.stdout
    bad = runner.invoke(main, ["disasm", str(tmp_path / "missing.npz")])
    assert bad.exit_code != 0 and "Traceback" not in bad.output
