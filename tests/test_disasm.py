"""`fleqc disasm`: every sample's card disassembles to text that reassembles to the same program."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import fleqc
from fleqc.cli import main
from fleqc.observe.disasm import disassemble
from fleqc.machines import compile_text, program_to_card
from fleqc.program import FleqInstruction, SubleqInstruction
from tests.support.cases import all_cases, compile_case

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
    # nothing added (.linked: no second final halt, no second hidden zero cell)
    assert len(again.instructions) == k and len(again.cells) == m
    assert [operands(i) for i in again.instructions] == [operands(i) for i in source.instructions]
    for old, new in zip(source.cells, again.cells):
        assert old.shape == new.shape and same_value(old.value, new.value), old.address
    # the program's own labels keep their names, kinds and addresses
    for name, symbol in source.symbols.items():
        if symbol.hidden:
            continue
        assert again.symbols[name].kind == symbol.kind and again.symbols[name].address == symbol.address, name
        if symbol.kind == "data":
            assert again.symbols[name].length == symbol.length, name
    assert set(again.symbols) == set(source.symbols)  # the hidden ones too, under their own names
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


def same_card(card, again) -> bool:
    def symbols(c):
        return {n: (s.kind, s.address, s.length, tuple(s.shape)) for n, s in c.symbols.items()}

    return (card.X.shape == again.X.shape and card.X.tobytes() == again.X.tobytes()
            and card.config == again.config and symbols(card) == symbols(again))


CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_disasm_then_build_gives_the_same_card(case):
    """Card equal to card: X bit for bit, the machine's configuration and every symbol."""
    program = compile_case(case)
    card = program_to_card(program)
    again = program_to_card(compile_text(disassemble(card), "again.sq" if program.machine == "classic"
                                         else "<stdin>", machine=program.machine))
    assert same_card(card, again)


def test_a_fleq_cards_size_is_recorded_and_honoured(tmp_path):
    """A FLEQ card built at n = 32, cell 1 comes back at n = 32, cell 1 (not the defaults 128, 8),
    through the command line's pipe: fleqc disasm CARD | fleqc build - -o AGAIN."""
    card, again = tmp_path / "p.npz", tmp_path / "again.npz"
    runner = CliRunner()
    built = runner.invoke(main, ["build", str(ROOT / "samples" / "fleq_polynomial.fleq"), "--columns", "32",
                                 "--cell", "1", "-o", str(card)])
    assert built.exit_code == 0, built.output
    text = runner.invoke(main, ["disasm", str(card)])
    assert ".linked 32, 1" in text.stdout
    rebuilt = runner.invoke(main, ["build", "-", "-o", str(again)], input=text.stdout)
    assert rebuilt.exit_code == 0, rebuilt.output
    assert same_card(fleqc.load_card(card), fleqc.load_card(again))
    needs_output = runner.invoke(main, ["build", "-"], input=text.stdout)
    assert needs_output.exit_code == 2 and "-o" in needs_output.stderr


def test_linked_sugar_without_its_hidden_cell_is_a_located_error():
    from fleqc.errors import FleqError

    with pytest.raises(FleqError, match="does not define it"):
        fleqc.compile(".linked 16\n.data\nx: .word 0\n.text\nhalt\n")
