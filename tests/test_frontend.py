"""Front end: every construct of the language parses and links to the right LinkedProgram."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from fleqc import resources
from fleqc.machines import compile_file, compile_source
from fleqc.frontend import syntax as ast
from fleqc.frontend.text_to_ast import parse_source
from fleqc.program import FleqInstruction, SubleqInstruction


def build(text: str, **kwargs):
    return compile_source(textwrap.dedent(text), "test.fleq", **kwargs)


def values(program) -> list:
    return [cell.value for cell in program.cells]


def user_values(program) -> list:
    hidden = {s.address for s in program.symbols.values() if s.hidden}
    return [cell.value for cell in program.cells if cell.address not in hidden]


# Resources and parsing -----------------------------------------------------------------------------


def test_grammar_and_stdlib_are_found():
    assert resources.grammar_path().is_file()
    assert resources.stdlib_dir().is_dir()


def test_parse_source_builds_typed_statements_with_spans():
    source = parse_source("loop: subleq a, b+1, -c ; comment\n.data\nx: .word 0x10 0b11\n", "f.fleq")
    label, instruction, section, label2, word = source.statements
    assert label == ast.Label("loop", label.span) and (label.span.line, label.span.column) == (1, 1)
    assert isinstance(instruction, ast.Instruction) and instruction.mnemonic == "subleq"
    a, b, c = instruction.operands
    assert a == ast.Name("a", a.span) and (a.span.line, a.span.column) == (1, 14)
    assert isinstance(b, ast.BinaryOp) and b.op == "+" and b.right == ast.Integer(1, b.right.span)
    assert isinstance(c, ast.Negate) and c.operand.name == "c"
    assert section == ast.SectionDirective("data", section.span)
    assert isinstance(word, ast.WordDirective)
    assert [v.value for v in word.values] == [16, 3]
    assert word.span.file == "f.fleq" and word.span.line == 3


def test_real_literals_parse_as_reals():
    source = parse_source(".word 1.5e-3, .5 2. 1e3 -2.0 7\n", "f")
    (word,) = source.statements
    numbers = [v if not isinstance(v, ast.Negate) else v.operand for v in word.values]
    assert [type(v).__name__ for v in numbers] == ["Real", "Real", "Real", "Real", "Real", "Integer"]
    assert [v.value for v in numbers] == [1.5e-3, 0.5, 2.0, 1000.0, 2.0, 7]


# SUBLEQ --------------------------------------------------------------------------------------------


COUNTDOWN = """\
    ; counts n down to zero
    # both comment styles work
    .data
    n:    .word 3
    one:  .word 1

    .text
    loop: subleq one, n, done   ; n -= 1; stop at 0
          jmp loop
    done: halt
"""


def test_subleq_program_links_to_addresses_and_indices():
    program = build(COUNTDOWN)
    assert program.machine == "subleq" and program.bits == 16
    assert program.source_name == "test.fleq"
    zero = program.symbols["__zero"].address
    assert zero == 2
    assert values(program) == [3, 1, 0]
    assert program.instructions == (
        SubleqInstruction(0, 1, 0, 2, program.instructions[0].span),
        SubleqInstruction(1, zero, zero, 0, program.instructions[1].span),
        SubleqInstruction(2, zero, zero, 2, program.instructions[2].span),  # halt: jump to self
        SubleqInstruction(3, zero, zero, 3, None),  # the implicit halt
    )
    span = program.instructions[0].span
    assert (span.file, span.line, span.column) == ("test.fleq", 8, 7)


def test_symbols_record_kind_address_span_and_length():
    program = build(COUNTDOWN)
    n, loop, done = program.symbols["n"], program.symbols["loop"], program.symbols["done"]
    assert (n.kind, n.address, n.shape, n.length) == ("data", 0, (), 1)
    assert (loop.kind, loop.address) == ("code", 0)
    assert (done.kind, done.address) == ("code", 2)
    assert (n.span.line, n.span.column) == (4, 1)
    assert [s.name for s in program.data_labels()] == ["n", "one"]


def test_two_operand_subleq_falls_through():
    program = build(".data\nx: .word 1\n.text\nsubleq x, x\nsubleq x, x\n")
    assert [i.target for i in program.instructions] == [1, 2, 2]


def test_implicit_halt_is_always_appended_and_an_end_label_names_it():
    program = build(".data\nx: .word 5\n.text\nstart: subleq x, x, end\n  jmp start\nend:\n")
    assert len(program.instructions) == 3
    assert program.symbols["end"].address == 2
    assert program.instructions[0].target == 2
    halt = program.instructions[2]
    assert (halt.a, halt.b, halt.target) == (program.symbols["__zero"].address,) * 2 + (2,)


def test_raw_numeric_addresses_are_allowed():
    program = build(".data\n.word 1, 2\n.text\nsubleq 0, 1, 0\n")
    first = program.instructions[0]
    assert (first.a, first.b, first.target) == (0, 1, 0)


def test_labels_on_their_own_line_and_several_labels_attach_to_the_next_item():
    program = build(
        """\
        .data
        first:
        second: third:
          ; a comment between label and item
        .word 7, 8
        .text
        entry:
        also:
            halt
        """
    )
    symbols = program.symbols
    assert symbols["first"].address == symbols["second"].address == symbols["third"].address == 0
    assert symbols["first"].length == symbols["third"].length == 2
    assert symbols["entry"].address == symbols["also"].address == 0
    assert symbols["entry"].kind == "code"


def test_a_label_names_the_next_item_of_the_section_it_is_written_in():
    program = build(".data\n.word 1\nend_of_data:\n.text\nstart:\n.data\n.word 2\n.text\nhalt\n")
    assert (program.symbols["end_of_data"].kind, program.symbols["end_of_data"].address) == ("data", 1)
    assert (program.symbols["start"].kind, program.symbols["start"].address) == ("code", 0)


def test_a_data_label_at_the_end_names_the_first_address_after_the_data():
    program = build(".data\narr: .word 1, 2, 3\narr_end:\n.text\nsubleq arr, arr, 0\n")
    end = program.symbols["arr_end"]
    assert (end.kind, end.address, end.length) == ("data", 3, 0)


def test_label_length_runs_to_the_next_label():
    program = build(
        """\
        .data
        a: .word 1, 2
           .zero 3
        b: .word 4
        .text
        halt
        .data
           .word 5          ; still part of b: no label in between
        c: .zero 0
        """
    )
    symbols = program.symbols
    assert (symbols["a"].address, symbols["a"].length) == (0, 5)
    assert (symbols["b"].address, symbols["b"].length) == (5, 2)
    assert (symbols["c"].address, symbols["c"].length) == (7, 0)


def test_a_data_label_runs_to_the_next_data_label_even_across_code():
    program = build(".data\na: .word 1\n.text\nloop: halt\n.data\n.word 2\nb: .word 3\n")
    assert (program.symbols["a"].length, program.symbols["b"].length) == (2, 1)


@pytest.mark.parametrize(
    "literal, value",
    [
        ("0", 0),
        ("42", 42),
        ("0x2A", 42),
        ("0X2a", 42),
        ("0b101010", 42),
        ("0B11", 3),
        ("-5", -5),
        ("32767", 32767),
        ("32768", -32768),  # the upper half reads as two's complement
        ("0xFFFF", -1),
        ("65535", -1),
        ("-32768", -32768),
        ("0x8000", -32768),
    ],
)
def test_integer_literals_and_wrapping_at_16_bits(literal, value):
    program = build(f".data\nx: .word {literal}\n.text\nhalt\n")
    assert program.cells[0].value == value


@pytest.mark.parametrize(
    "bits, literal, value",
    [(8, "255", -1), (8, "127", 127), (8, "-128", -128), (2, "3", -1), (32, "0xFFFFFFFF", -1)],
)
def test_bits_directive_sets_the_wrap_width(bits, literal, value):
    program = build(f".bits {bits}\n.data\n.word {literal}\n.text\nhalt\n")
    assert program.bits == bits and program.cells[0].value == value


def test_bits_from_the_caller_agrees_with_the_directive():
    assert build(".bits 8\nhalt\n", bits=8).bits == 8
    assert build("halt\n", bits=12).bits == 12
    assert build(".bits 8\n.bits 8\nhalt\n").bits == 8


def test_expressions_with_labels_constants_and_parentheses():
    program = build(
        """\
        .const BASE = 10
        .const TWICE = BASE + BASE
        .data
        arr: .word 1, 2, 3
        x:   .word TWICE - (3 - -1), -BASE, arr + 2, end - arr, x
        end:
        .text
        subleq arr+1, arr + 2
        """
    )
    assert user_values(program)[3:] == [16, -10, 2, 8, 3]
    first = program.instructions[0]
    assert (first.a, first.b) == (1, 2)


def test_constants_may_be_used_before_their_definition_and_name_labels():
    program = build(
        """\
        .data
        buf: .zero SIZE
        .const SIZE = 2 + 1
        .const LAST = buf + SIZE - 1
        .text
        subleq LAST, LAST, START
        .const START = 0
        """
    )
    assert len(user_values(program)) == 3
    assert program.instructions[0].a == 2 and program.instructions[0].target == 0
    assert "SIZE" not in program.symbols  # constants are numbers, not symbols


def test_a_blank_before_minus_starts_a_new_value_in_lists_only():
    program = build(
        """\
        .const N = 5 -1      ; one value: 5 - 1
        .data
        a: .word N -1        ; two values
        b: .word N - 1, N-1  ; two subtractions
        c: .zero 3 -1        ; .zero takes one value: 3 - 1
        .text
        subleq a, b -1       ; operands: always a subtraction
        """
    )
    assert user_values(program) == [4, -1, 3, 3, 0, 0]
    assert program.symbols["c"].length == 2
    assert program.instructions[0].b == 1


def test_data_and_text_sections_interleave():
    program = build(".data\na: .word 1\n.text\nsubleq a, b\n.data\nb: .word 2\n.text\njmp 0\n")
    assert program.symbols["b"].address == 1
    assert program.instructions[0].b == 1
    assert len(program.instructions) == 3


def test_only_the_zero_hidden_cell_exists_in_subleq_and_it_follows_the_user_cells():
    program = build(".data\n.zero 4\n.text\nhalt\n")
    hidden = {s.name: s for s in program.symbols.values() if s.hidden}
    assert set(hidden) == {"__zero"}
    assert hidden["__zero"].address == 4 and program.cells[4].value == 0


def test_crlf_tabs_and_a_byte_order_mark_are_accepted():
    program = compile_source("\ufeff.data\r\n\tx:\t.word\t1\r\n.text\r\nhalt\r\n")
    assert program.cells[0].value == 1


# FLEQ ----------------------------------------------------------------------------------------------


FLEQ_PROGRAM = """\
    .machine fleq
    .data
    v:   .vector 3 1 -2 3.5
    m:   .matrix 2 3  1, 2, 3,  4, 5, 6
    r:   .vector 2
    s:   .word 1.5, 0
    k:   .matrix 2 2
    .text
         matmul r, m, v         ; binary sugar: no branch
         relu r, r              ; unary sugar
         jle s, out
         fleq s, add, s, s, s, out
         fleq s, sqrt, s, v, s, 0
         subleq s, s
         jmp out
    out: halt
"""


def test_fleq_cells_are_float64_arrays_of_their_shape():
    program = build(FLEQ_PROGRAM)
    assert program.machine == "fleq"
    v, m, r, s, s1, k = program.cells[:6]
    assert v.shape == (3,) and v.value.dtype == np.float64
    np.testing.assert_array_equal(v.value, [1.0, -2.0, 3.5])
    assert m.shape == (2, 3)
    np.testing.assert_array_equal(m.value, [[1, 2, 3], [4, 5, 6]])  # row-major
    np.testing.assert_array_equal(r.value, np.zeros(2))
    assert s.shape == () and s.value.shape == () and float(s.value) == 1.5
    assert float(s1.value) == 0.0
    np.testing.assert_array_equal(k.value, np.zeros((2, 2)))
    assert program.symbols["m"].shape == (2, 3) and program.symbols["s"].length == 2


def test_fleq_sugar_desugars_to_full_instructions():
    program = build(FLEQ_PROGRAM)
    sym = {name: s.address for name, s in program.symbols.items()}
    zero, one, dummy = sym["__zero"], sym["__one"], sym["__dummy"]
    assert (zero, one, dummy) == (6, 7, 8)  # after the six user cells, in this order
    out = sym["out"]
    expected = [
        ("matmul", sym["r"], sym["m"], sym["v"], one, 1),
        ("relu", sym["r"], sym["r"], sym["r"], one, 2),  # unary: src_b = src_a
        ("mov", dummy, dummy, dummy, sym["s"], out),  # jle s, out
        ("add", sym["s"], sym["s"], sym["s"], sym["s"], out),
        ("sqrt", sym["s"], sym["s"], sym["s"], sym["s"], 0),  # unary in full form: src_b = src_a
        ("sub", sym["s"], sym["s"], sym["s"], sym["s"], 6),  # subleq a, b = fleq b, sub, b, a, b, next
        ("mov", dummy, dummy, dummy, zero, out),  # jmp out
        ("mov", dummy, dummy, dummy, zero, out),  # halt: jump to self
        ("mov", dummy, dummy, dummy, zero, 8),  # the implicit halt
    ]
    got = [(i.func, i.dst, i.src_a, i.src_b, i.flag, i.target) for i in program.instructions]
    assert got == expected
    assert all(isinstance(i, FleqInstruction) and i.index == n for n, i in enumerate(program.instructions))


def test_fleq_hidden_values_and_one_only_when_sugar_needs_it():
    program = build(".machine fleq\n.data\nx: .word 2\n.text\nadd x, x, x\n")
    hidden = {s.name: program.cells[s.address].value for s in program.symbols.values() if s.hidden}
    assert {k: float(v) for k, v in hidden.items()} == {"__zero": 0.0, "__one": 1.0, "__dummy": 0.0}
    plain = build(".machine fleq\n.data\nx: .word 2\n.text\njle x, 0\n")
    assert "__one" not in plain.symbols
    assert {s.name for s in plain.symbols.values() if s.hidden} == {"__zero", "__dummy"}


def test_fleq_subleq_with_a_branch_target():
    program = build(".machine fleq\n.data\na: .word 1\nb: .word 5\n.text\nloop: subleq a, b, loop\n")
    first = program.instructions[0]
    assert (first.func, first.dst, first.src_a, first.src_b, first.flag, first.target) == (
        "sub",
        1,
        1,
        0,
        1,
        0,
    )


def test_fleq_integers_labels_and_reals_become_floats():
    program = build(".machine fleq\n.data\nw: .word 3\nx: .word x, 0x10, -1.25e1, .5 + 1\n.text\nhalt\n")
    assert [float(v) for v in user_values(program)] == [3.0, 1.0, 16.0, -12.5, 1.5]
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float64 for v in user_values(program))


def test_fleq_mul_broadcasts_a_scalar_and_transpose_swaps_the_shape():
    program = build(
        """\
        .machine fleq
        .data
        v: .vector 2 1 2
        c: .word 3
        m: .matrix 2 3
        t: .matrix 3 2
        .text
        mul v, c, v
        transpose t, m
        """
    )
    assert [i.func for i in program.instructions[:2]] == ["mul", "transpose"]


def test_a_bits_directive_is_accepted_in_fleq():
    assert build(".machine fleq\n.bits 8\nhalt\n").bits == 8


def test_machine_directive_may_repeat_when_it_agrees():
    assert build(".machine fleq\n.machine fleq\nhalt\n").machine == "fleq"
    assert build(".machine subleq\nhalt\n").machine == "subleq"


# Includes ------------------------------------------------------------------------------------------


def write(path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_include_next_to_the_file_comes_first_in_memory(tmp_path):
    write(tmp_path / "lib.fleq", ".data\nlibval: .word 7\n.text\nlibfn: halt\n")
    main = write(
        tmp_path / "main.fleq", '.include "lib.fleq"\n.data\nx: .word 1\n.text\nsubleq libval, x, libfn\n'
    )
    program = compile_file(main)
    assert program.source_name == str(main)
    assert program.symbols["libval"].address == 0 and program.symbols["x"].address == 1
    assert program.symbols["libfn"].address == 0
    assert program.instructions[1].target == 0
    assert program.symbols["libval"].span.file == str(tmp_path / "lib.fleq")


def test_an_included_file_starts_in_text_and_the_includer_keeps_its_section(tmp_path):
    write(tmp_path / "lib.fleq", "helper: halt\n")
    main = write(tmp_path / "main.fleq", '.data\n.include "lib.fleq"\nx: .word 1\n.text\njmp helper\n')
    program = compile_file(main)
    assert program.symbols["x"].kind == "data" and program.symbols["helper"].kind == "code"


def test_each_file_is_included_once(tmp_path):
    write(tmp_path / "common.fleq", ".data\nshared: .word 1\n")
    write(tmp_path / "a.fleq", '.include "common.fleq"\n')
    write(tmp_path / "sub/b.fleq", '.include "../common.fleq"\n')
    main = write(
        tmp_path / "main.fleq",
        '.include "a.fleq"\n.include "sub/b.fleq"\n.include "./common.fleq"\nhalt\n',
    )
    program = compile_file(main)
    assert len(user_values(program)) == 1


def test_includes_resolve_relative_to_the_including_file(tmp_path):
    write(tmp_path / "lib/inner.fleq", ".data\ninner: .word 2\n")
    write(tmp_path / "lib/outer.fleq", '.include "inner.fleq"\n.data\nouter: .word 3\n')
    main = write(tmp_path / "main.fleq", '.include "lib/outer.fleq"\nhalt\n')
    program = compile_file(main)
    assert (program.symbols["inner"].address, program.symbols["outer"].address) == (0, 1)


def test_include_falls_back_to_the_stdlib(tmp_path, monkeypatch):
    stdlib = tmp_path / "std"
    write(stdlib / "mathlib.fleq", ".data\nMATH_ONE: .word 1\n")
    monkeypatch.setattr(resources, "stdlib_dir", lambda: stdlib)
    program = compile_source('.include "mathlib.fleq"\nhalt\n')
    assert program.symbols["MATH_ONE"].address == 0
    assert program.symbols["MATH_ONE"].span.file == str(stdlib / "mathlib.fleq")


def test_a_file_next_to_the_includer_shadows_the_stdlib(tmp_path, monkeypatch):
    write(tmp_path / "std/lib.fleq", ".data\nfrom_std: .word 1\n")
    write(tmp_path / "src/lib.fleq", ".data\nfrom_src: .word 1\n")
    monkeypatch.setattr(resources, "stdlib_dir", lambda: tmp_path / "std")
    program = compile_source('.include "lib.fleq"\nhalt\n', base_dir=tmp_path / "src")
    assert "from_src" in program.symbols and "from_std" not in program.symbols


def test_machine_and_bits_may_be_set_in_an_included_file(tmp_path):
    write(tmp_path / "cfg.fleq", ".machine fleq\n.bits 12\n")
    main = write(tmp_path / "main.fleq", '.include "cfg.fleq"\n.data\nx: .word 1.5\n.text\nhalt\n')
    program = compile_file(main)
    assert (program.machine, program.bits) == ("fleq", 12)


# The samples ---------------------------------------------------------------------------------------


def test_every_sample_compiles():
    samples = sorted((resources.grammar_path().parent.parent / "samples").glob("*.fleq"))
    for sample in samples:
        program = compile_file(sample)
        assert program.instructions, sample
