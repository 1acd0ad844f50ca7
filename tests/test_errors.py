"""Front-end errors: each kind has its code and points at the offending token; nothing else escapes.

Tests assert ``err.code`` and ``err.span`` (line, column), never the message text.
"""

from __future__ import annotations

import re
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleqc import resources
from fleqc.errors import ErrorCode as E
from fleqc.errors import FleqError
from fleqc.machines import compile_file, compile_source
from fleqc.machines import program_to_card
from fleqc.program import FleqInstruction

D = ".data\n"
T = ".text\n"
FLEQ = ".machine fleq\n"
VEC = FLEQ + D + "v: .vector 2 1 2\nm: .matrix 2 3\ns: .word 1\n" + T  # v=0, m=1, s=2; text from line 7

# (id, source, code, line, column)
CASES = [
    # lexical and syntactic
    ("character", "halt\n  $x\n", E.UNEXPECTED_CHARACTER, 2, 3),
    ("character-control", "halt\nsubleq \x01\n", E.UNEXPECTED_CHARACTER, 2, 8),
    ("unterminated-string", '.include "lib.fleq\n', E.UNEXPECTED_CHARACTER, 1, 10),
    ("bad-dot", "halt\n. word 1\n", E.UNEXPECTED_CHARACTER, 2, 1),
    ("token-missing-comma", "subleq a b\n", E.UNEXPECTED_TOKEN, 1, 10),
    ("token-label-without-colon", "loop subleq a, b\n", E.UNEXPECTED_TOKEN, 1, 13),
    ("token-number-at-line-start", "halt\n42\n", E.UNEXPECTED_TOKEN, 2, 1),
    ("token-string-operand", 'jmp "x"\n', E.UNEXPECTED_TOKEN, 1, 5),
    ("token-close-paren", D + "x: .word (1 + 2))\n", E.UNEXPECTED_TOKEN, 2, 17),
    ("end-of-line", D + "x: .word 1 +\n", E.UNEXPECTED_END, 2, 13),
    ("end-of-line-comment", "subleq a, ; no operand\n", E.UNEXPECTED_END, 1, 23),
    ("end-of-file", "halt\nsubleq x,", E.UNEXPECTED_END, 2, 10),
    ("end-open-paren", D + ".word (1\n", E.UNEXPECTED_END, 2, 9),
    # directives
    ("unknown-directive", D + "  .wrod 1\n", E.UNKNOWN_DIRECTIVE, 2, 3),
    ("directive-case", "halt\n.DATA\n", E.UNKNOWN_DIRECTIVE, 2, 1),
    ("const-without-equals", ".const N 5\nhalt\n", E.BAD_DIRECTIVE, 1, 8),
    ("equals-outside-const", D + ".word a = 1\n", E.BAD_DIRECTIVE, 2, 7),
    ("include-without-quotes", ".include lib\n", E.BAD_DIRECTIVE, 1, 10),
    ("string-in-word", D + '.word 1, "x"\n', E.BAD_DIRECTIVE, 2, 10),
    ("machine-not-a-name", ".machine 1\nhalt\n", E.BAD_DIRECTIVE, 1, 10),
    ("size-uses-label", D + "buf: .zero end\nend: .word 0\n" + T + "halt\n", E.BAD_DIRECTIVE, 2, 12),
    ("size-negative", D + ".zero 2 - 3\n" + T + "halt\n", E.BAD_DIRECTIVE, 2, 7),
    ("size-zero-vector", FLEQ + D + ".vector 0\n" + T + "halt\n", E.BAD_DIRECTIVE, 3, 9),
    ("size-real", FLEQ + D + ".zero 1.5\n" + T + "halt\n", E.BAD_DIRECTIVE, 3, 7),
    ("const-cycle", ".const A = B + 1\n.const B = A\nhalt\n", E.BAD_DIRECTIVE, 2, 12),
    ("const-self", ".const A = A\nhalt\n", E.BAD_DIRECTIVE, 1, 12),
    ("unknown-machine", ".machine x86\nhalt\n", E.UNKNOWN_MACHINE, 1, 10),
    ("machine-mismatch", ".machine fleq\nhalt\n.machine subleq\n", E.MACHINE_MISMATCH, 3, 10),
    ("bits-too-large", ".bits 33\nhalt\n", E.BAD_BITS, 1, 7),
    ("bits-too-small", ".bits 1\nhalt\n", E.BAD_BITS, 1, 7),
    ("bits-disagree", ".bits 8\nhalt\n.bits 16\n", E.BAD_BITS, 3, 7),
    ("bits-uses-label", ".bits x\nx: halt\n", E.BAD_BITS, 1, 7),
    # instructions and operands
    ("unknown-instruction", "halt\n  subleqq a, b\n", E.UNKNOWN_INSTRUCTION, 2, 3),
    ("unknown-instruction-case", "HALT\n", E.UNKNOWN_INSTRUCTION, 1, 1),
    ("unknown-function", FLEQ + "halt\n  tanh x, y\n", E.UNKNOWN_FUNCTION, 3, 3),
    ("unknown-function-in-fleq", VEC + "fleq s, tanh, s, s, s, 0\n", E.UNKNOWN_FUNCTION, 7, 9),
    ("function-not-a-name", VEC + "fleq s, 3, s, s, s, 0\n", E.UNKNOWN_FUNCTION, 7, 9),
    ("count-too-few", "halt\nsubleq 0\n", E.OPERAND_COUNT, 2, 1),
    ("count-too-many", "subleq 0, 0, 0, 0\n", E.OPERAND_COUNT, 1, 17),
    ("count-halt", "halt 0\n", E.OPERAND_COUNT, 1, 6),
    ("count-jmp", "jmp\n", E.OPERAND_COUNT, 1, 1),
    ("count-binary-sugar", VEC + "add s, s\n", E.OPERAND_COUNT, 7, 1),
    ("count-unary-sugar", VEC + "relu s, s, s\n", E.OPERAND_COUNT, 7, 12),
    ("count-fleq", VEC + "fleq s, add, s, s, s\n", E.OPERAND_COUNT, 7, 1),
    ("count-jle", VEC + "jle s\n", E.OPERAND_COUNT, 7, 1),
    ("count-vector-values", FLEQ + D + ".vector 3 1 2\n" + T + "halt\n", E.OPERAND_COUNT, 3, 1),
    ("count-matrix-values", FLEQ + D + ".matrix 1 2 1 2 3\n" + T + "halt\n", E.OPERAND_COUNT, 3, 17),
    ("count-zero", D + ".zero 1, 2\n" + T + "halt\n", E.OPERAND_COUNT, 2, 10),
    ("count-word", D + ".word\n", E.OPERAND_COUNT, 2, 1),
    ("count-section", ".text 1\nhalt\n", E.OPERAND_COUNT, 1, 7),
    ("wrong-section-instruction-in-data", "halt\n.data\n  halt\n", E.WRONG_SECTION, 3, 3),
    ("wrong-section-data-in-text", "halt\n.word 1\n", E.WRONG_SECTION, 2, 1),
    ("wrong-section-included-file-starts-in-text", "", None, 0, 0),  # see test_included_file_starts_in_text
    ("real-in-subleq", D + "x: .word 1.5\n" + T + "halt\n", E.NOT_IN_MACHINE, 2, 10),
    ("vector-in-subleq", D + "v: .vector 2 1 2\n" + T + "halt\n", E.NOT_IN_MACHINE, 2, 4),
    ("fleq-in-subleq", "halt\nfleq 0, add, 0, 0, 0, 0\n", E.NOT_IN_MACHINE, 2, 1),
    ("function-in-subleq", "  add x, y, z\n", E.NOT_IN_MACHINE, 1, 3),
    ("jle-in-subleq", "jle x, 0\n", E.NOT_IN_MACHINE, 1, 1),
    ("ret-outside-routine", FLEQ + "halt\n  ret\n", E.BAD_ROUTINE, 3, 3),
    # names and values
    ("undefined-label", D + "loop: .word 0\n" + T + "jmp lop\n", E.UNDEFINED_LABEL, 4, 5),
    ("undefined-in-expression", D + "x: .word 1 + (2 - nope)\n" + T + "halt\n", E.UNDEFINED_LABEL, 2, 19),
    ("undefined-in-const", ".const N = M\nhalt\n", E.UNDEFINED_LABEL, 1, 12),
    ("duplicate-label", "x: halt\ny: halt\n  x: halt\n", E.DUPLICATE_LABEL, 3, 3),
    ("duplicate-same-line", "x: x: halt\n", E.DUPLICATE_LABEL, 1, 4),
    ("duplicate-const", ".const x = 1\nx: halt\n", E.DUPLICATE_LABEL, 2, 1),
    ("duplicate-const-second", "x: halt\n.const x = 1\n", E.DUPLICATE_LABEL, 2, 8),
    ("reserved-label", "__x: halt\n", E.RESERVED_NAME, 1, 1),
    ("reserved-reference", "jmp __zero\n", E.RESERVED_NAME, 1, 5),
    ("reserved-const", ".const __N = 1\nhalt\n", E.RESERVED_NAME, 1, 8),
    ("jump-to-data-label", D + "x: .word 1\n" + T + "jmp x\n", E.WRONG_KIND, 4, 5),
    ("branch-to-data-label", D + "x: .word 1\n" + T + "subleq x, x, x\n", E.WRONG_KIND, 4, 14),
    ("operand-a-code-label", D + "x: .word 1\n" + T + "l: subleq l, x\n", E.WRONG_KIND, 4, 11),
    ("operand-b-code-label", D + "x: .word 1\n" + T + "l: subleq x, l + 1\n", E.WRONG_KIND, 4, 14),
    ("fleq-dst-code-label", VEC + "l: mov l, s\n", E.WRONG_KIND, 7, 8),
    ("fleq-flag-code-label", VEC + "l: jle l, l\n", E.WRONG_KIND, 7, 8),
    ("fleq-src-code-label", VEC + "l: fleq s, add, s, l, s, 0\n", E.WRONG_KIND, 7, 20),
    ("mixed-kinds", D + "x: .word l + x\n" + T + "l: halt\n", E.WRONG_KIND, 2, 10),
    ("const-keeps-kind", ".const P = x\n" + D + "x: .word 1\n" + T + "jmp P\n", E.WRONG_KIND, 5, 5),
    ("address-too-large", D + "x: .word 1\n" + T + "subleq x, 1\n", E.ADDRESS_RANGE, 4, 11),
    ("address-negative", D + "x: .word 1\n" + T + "subleq x - 1, x\n", E.ADDRESS_RANGE, 4, 8),
    ("address-hidden-cell", D + "x: .word 1\n" + T + "subleq x+1, x\n", E.ADDRESS_RANGE, 4, 8),
    ("target-too-large", "jmp 2\n", E.ADDRESS_RANGE, 1, 5),
    ("target-negative", "halt\nsubleq 0, 0, -1\n.data\n.word 0\n", E.ADDRESS_RANGE, 2, 14),
    ("address-real", VEC + "mov s, 2.0\n", E.ADDRESS_RANGE, 7, 8),
    ("literal-too-large", D + "x: .word 1, 65536\n" + T + "halt\n", E.LITERAL_RANGE, 2, 13),
    ("literal-too-small", D + "x: .word -32769\n" + T + "halt\n", E.LITERAL_RANGE, 2, 10),
    ("literal-8-bits", ".bits 8\n" + D + "x: .word 256\n" + T + "halt\n", E.LITERAL_RANGE, 3, 10),
    ("literal-sum", D + "x: .word 0xFFFF + 1\n" + T + "halt\n", E.LITERAL_RANGE, 2, 10),
    ("literal-huge-decimal", D + "x: .word " + "9" * 5000 + "\n" + T + "halt\n", E.LITERAL_RANGE, 2, 10),
    ("literal-real-overflow", FLEQ + D + "x: .word 1e400\n" + T + "halt\n", E.LITERAL_RANGE, 3, 10),
    ("literal-beyond-fleq-range", FLEQ + D + "x: .vector 2 1, -1e305\n" + T + "halt\n", E.LITERAL_RANGE, 3, 17),
    (
        "literal-real-sum-overflow",
        FLEQ + D + "x: .word 1e308 + 1e308\n" + T + "halt\n",
        E.LITERAL_RANGE,
        3,
        10,
    ),
    (
        "literal-int-too-large-for-float",
        FLEQ + D + "x: .word 0x" + "F" * 300 + "\n" + T + "halt\n",
        E.LITERAL_RANGE,
        3,
        10,
    ),
    ("shape-destination", VEC + "add s, v, v\n", E.SHAPE_MISMATCH, 7, 5),
    ("shape-operands", VEC + "add v, v, s\n", E.SHAPE_MISMATCH, 7, 1),
    ("shape-matmul", VEC + "matmul v, m, v\n", E.SHAPE_MISMATCH, 7, 1),
    ("shape-fleq-function", VEC + "fleq v, add, v, s, s, 0\n", E.SHAPE_MISMATCH, 7, 9),
    ("shape-flag", VEC + "fleq v, add, v, v, v, 0\n", E.SHAPE_MISMATCH, 7, 20),
    ("shape-jle-flag", VEC + "jle m, 0\n", E.SHAPE_MISMATCH, 7, 5),
    ("shape-subleq-vector", VEC + "subleq v, v\n", E.SHAPE_MISMATCH, 7, 11),
    # programs
    ("empty-program", D + "x: .word 1\n", E.EMPTY_PROGRAM, 1, 1),
    ("empty-text", "", E.EMPTY_PROGRAM, 1, 1),
    ("only-comments", "; nothing\n# here\n", E.EMPTY_PROGRAM, 1, 1),
    ("too-many-cells", D + ".zero 40000\n.zero 40000\n" + T + "halt\n", E.PROGRAM_TOO_LARGE, 3, 1),
    ("zero-too-large", D + ".zero 99999999999\n" + T + "halt\n", E.PROGRAM_TOO_LARGE, 2, 7),
    ("matrix-too-large", FLEQ + D + ".matrix 10000 10000\n" + T + "halt\n", E.PROGRAM_TOO_LARGE, 3, 1),
]
CASES = [case for case in CASES if case[2] is not None]


def compile_error(source: str, **kwargs) -> FleqError:
    with pytest.raises(FleqError) as info:
        compile_source(source, "main.fleq", **kwargs)
    return info.value


@pytest.mark.parametrize("source, code, line, column", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_error_kind_and_location(source, code, line, column):
    error = compile_error(source)
    assert error.code == code
    assert (error.span.file, error.span.line, error.span.column) == ("main.fleq", line, column)
    assert error.source_line == source.split("\n")[line - 1]
    assert error.render().startswith(f"main.fleq:{line}:{column}: error[{code.value}]")


def test_every_front_end_error_code_is_exercised():
    front_end = set(E) - {E.FILE_NOT_FOUND, E.BAD_CONFIG, E.BAD_CARD, E.BAD_WEIGHTS, E.DOMAIN_ERROR,
                          E.BAD_OUTPUT, E.OUT_OF_MEMORY}
    front_end -= {E.INCLUDE_NOT_FOUND, E.INCLUDE_CYCLE}  # tested with files below
    front_end -= {E.UNKNOWN_FORMAT, E.ADDRESS_FAULT}  # the classic machine's: test_sqasm, test_classic_reference
    front_end -= {E.UNDEFINED_NAME, E.RECURSION}  # Flow's (the language above the assembly): test_lang.py
    assert front_end <= {case[2] for case in CASES}


def test_bits_from_the_caller_out_of_range_has_no_location():
    error = compile_error("halt\n", bits=40)
    assert error.code == E.BAD_BITS and error.span is None


def test_bits_from_the_caller_disagreeing_points_at_the_directive():
    error = compile_error("halt\n.bits 8\n", bits=16)
    assert (error.code, error.span.line, error.span.column) == (E.BAD_BITS, 2, 7)


# Files and includes --------------------------------------------------------------------------------


def write(path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_missing_main_file(tmp_path):
    with pytest.raises(FleqError) as info:
        compile_file(tmp_path / "nope.fleq")
    assert info.value.code == E.FILE_NOT_FOUND


def test_main_file_that_is_a_directory(tmp_path):
    with pytest.raises(FleqError) as info:
        compile_file(tmp_path)
    assert info.value.code == E.FILE_NOT_FOUND


def test_include_not_found(tmp_path, monkeypatch):
    monkeypatch.setattr(resources, "stdlib_dir", lambda: tmp_path / "std")
    main = write(tmp_path / "main.fleq", 'halt\n  .include "missing.fleq"\n')
    with pytest.raises(FleqError) as info:
        compile_file(main)
    error = info.value
    assert error.code == E.INCLUDE_NOT_FOUND
    assert (error.span.file, error.span.line, error.span.column) == (str(main), 2, 12)
    assert error.source_line == '  .include "missing.fleq"'


def test_include_of_a_directory_is_not_found(tmp_path):
    (tmp_path / "dir.fleq").mkdir()
    main = write(tmp_path / "main.fleq", '.include "dir.fleq"\nhalt\n')
    with pytest.raises(FleqError) as info:
        compile_file(main)
    assert info.value.code == E.INCLUDE_NOT_FOUND


def test_include_cycle_points_at_the_include_that_closes_it(tmp_path):
    write(tmp_path / "a.fleq", '.include "b.fleq"\n')
    b = write(tmp_path / "b.fleq", 'halt\n.include "a.fleq"\n')
    main = write(tmp_path / "main.fleq", '.include "a.fleq"\nhalt\n')
    with pytest.raises(FleqError) as info:
        compile_file(main)
    error = info.value
    assert error.code == E.INCLUDE_CYCLE
    assert (error.span.file, error.span.line, error.span.column) == (str(b), 2, 10)


def test_a_file_including_itself_is_a_cycle(tmp_path):
    main = write(tmp_path / "main.fleq", 'halt\n.include "main.fleq"\n')
    with pytest.raises(FleqError) as info:
        compile_file(main)
    assert (info.value.code, info.value.span.line) == (E.INCLUDE_CYCLE, 2)


def test_errors_in_an_included_file_carry_that_file_and_line(tmp_path):
    lib = write(tmp_path / "lib.fleq", ".data\nok: .word 1\nbad: .word 1 +, 2\n")
    main = write(tmp_path / "main.fleq", '.include "lib.fleq"\nhalt\n')
    with pytest.raises(FleqError) as info:
        compile_file(main)
    error = info.value
    assert error.code == E.UNEXPECTED_TOKEN
    assert (error.span.file, error.span.line, error.span.column) == (str(lib), 3, 15)
    assert error.source_line == "bad: .word 1 +, 2"


def test_link_errors_in_an_included_file_carry_that_file_and_line(tmp_path):
    lib = write(tmp_path / "lib.fleq", "helper:\n  jmp nowhere\n")
    main = write(tmp_path / "main.fleq", '.include "lib.fleq"\nhalt\n')
    with pytest.raises(FleqError) as info:
        compile_file(main)
    error = info.value
    assert (error.code, error.span.file, error.span.line, error.span.column) == (
        E.UNDEFINED_LABEL,
        str(lib),
        2,
        7,
    )
    assert error.source_line == "  jmp nowhere"


def test_included_file_starts_in_text(tmp_path):
    lib = write(tmp_path / "lib.fleq", "x: .word 1\n")
    main = write(tmp_path / "main.fleq", '.data\n.include "lib.fleq"\n.text\nhalt\n')
    with pytest.raises(FleqError) as info:
        compile_file(main)
    assert (info.value.code, info.value.span.file, info.value.span.line) == (E.WRONG_SECTION, str(lib), 1)


def test_machine_disagreeing_across_files(tmp_path):
    write(tmp_path / "lib.fleq", ".machine fleq\n")
    main = write(tmp_path / "main.fleq", '.machine subleq\n.include "lib.fleq"\nhalt\n')
    with pytest.raises(FleqError) as info:
        compile_file(main)
    assert (info.value.code, info.value.span.file, info.value.span.line) == (
        E.MACHINE_MISMATCH,
        str(tmp_path / "lib.fleq"),
        1,
    )


def test_duplicate_label_across_files_points_at_the_second(tmp_path):
    write(tmp_path / "lib.fleq", "shared: halt\n")
    main = write(tmp_path / "main.fleq", '.include "lib.fleq"\nshared: halt\n')
    with pytest.raises(FleqError) as info:
        compile_file(main)
    assert (info.value.code, info.value.span.file, info.value.span.line) == (E.DUPLICATE_LABEL, str(main), 2)


def test_invalid_utf8_is_an_unexpected_character(tmp_path):
    main = tmp_path / "main.fleq"
    main.write_bytes(b"halt\nx: .word \xff\n")
    with pytest.raises(FleqError) as info:
        compile_file(main)
    assert (info.value.code, info.value.span.line, info.value.span.column) == (E.UNEXPECTED_CHARACTER, 2, 10)


# Fuzzing: only FleqError may escape, and what links is consistent ---------------------------------

SEEDS = [
    """\
    ; countdown
    .const N = 3
    .data
    n: .word N
    one: .word 1
    arr: .word 1, 2 -3 0xFFFF, 0b11
    end_arr:
    buf: .zero 2
    .text
    loop: subleq one, n, done
          subleq arr+1, buf
          jmp loop
    done: halt
    """,
    """\
    .machine fleq
    .bits 8
    .data
    v: .vector 3 1 -2 3.5
    m: .matrix 2 3 1 2 3 4 5 6
    r: .vector 2
    s: .word 1.5e-3, .5
    .text
    start: matmul r, m, v
           add s, s, s
           jle s, out
           fleq s, mul, s, s, s, start
           relu r, r
           subleq s, s
           jmp out
    out:   halt
    """,
    '.include "x.fleq"\n.const A = (1 + 2) - -3\nhalt\n',
]
SEED_TOKENS = [
    re.findall(r"\s+|\.?[A-Za-z_][A-Za-z0-9_]*|\d+\.?\d*|\"[^\"\n]*\"?|.", textwrap.dedent(s)) for s in SEEDS
]
EXTRA_TOKENS = [
    ".word",
    ".zero",
    ".vector",
    ".matrix",
    ".const",
    ".machine fleq",
    ".bits",
    ".data",
    ".text",
    "=",
    ",",
    ":",
    "-",
    "+",
    "(",
    ")",
    "\n",
    "1.5",
    "0x",
    "__x",
    '"',
    "fleq",
    "add",
    "jle",
    "halt",
    "jmp",
    "9" * 30,
    "1e999",
    "-1",
    "0",
    "65535",
]


def check_only_fleq_errors(text: str) -> None:
    """Parse + link + layout of ``text`` either gives a consistent program and punch card or raises
    a located FleqError; nothing else escapes."""
    try:
        program = compile_source(text, "fuzz.fleq")
    except FleqError as error:
        error.render()
        if error.span is not None:
            assert error.span.line >= 1 and error.span.column >= 1
            assert error.source_line is not None
        return
    check_consistent(program)
    if program.machine == "subleq":
        try:
            card = program_to_card(program)
        except FleqError as error:
            assert error.code is E.PROGRAM_TOO_LARGE
            return
        assert card.read_memory() == [cell.value for cell in program.cells]


def check_consistent(program) -> None:
    memory, code = len(program.cells), len(program.instructions)
    assert code >= 2 and [i.index for i in program.instructions] == list(range(code))
    for instruction in program.instructions:
        assert 0 <= instruction.target < code
        if isinstance(instruction, FleqInstruction):
            operands = (instruction.dst, instruction.src_a, instruction.src_b, instruction.flag)
            assert program.cells[instruction.flag].shape == ()
        else:
            operands = (instruction.a, instruction.b)
        assert all(0 <= address < memory for address in operands)
    for cell in program.cells:
        if program.machine == "subleq":
            assert -(1 << (program.bits - 1)) <= cell.value < 1 << (program.bits - 1)
        else:
            assert cell.value.dtype == np.float64 and cell.value.shape == cell.shape
            assert np.all(np.isfinite(cell.value))


@st.composite
def mutated_programs(draw) -> str:
    tokens = list(draw(st.sampled_from(SEED_TOKENS)))
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(tokens) - 1))
        action = draw(st.sampled_from(["delete", "duplicate", "swap", "insert"]))
        if action == "delete" and len(tokens) > 1:
            del tokens[position]
        elif action == "duplicate":
            tokens.insert(position, tokens[position])
        elif action == "swap":
            other = draw(st.integers(0, len(tokens) - 1))
            tokens[position], tokens[other] = tokens[other], tokens[position]
        else:
            tokens.insert(position, draw(st.sampled_from(EXTRA_TOKENS)))
    return "".join(tokens)


LANGUAGE_ALPHABET = st.sampled_from(
    list('abcxyz_019.,:;#=+-()"\n \t\r') + ["subleq ", "halt", ".data\n", ".word "]
)
random_bytes = st.binary(max_size=300).map(lambda data: data.decode("utf-8", errors="replace"))
random_text = st.lists(LANGUAGE_ALPHABET, max_size=80).map("".join)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ_SLOW = settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(random_bytes)
def test_fuzz_random_bytes(text):
    check_only_fleq_errors(text)


@FUZZ
@given(random_text)
def test_fuzz_random_text_in_the_language_alphabet(text):
    check_only_fleq_errors(text)


@FUZZ
@given(mutated_programs())
def test_fuzz_mutated_programs(text):
    check_only_fleq_errors(text)


def test_fuzz_seeds_are_valid_or_fail_only_on_the_missing_include():
    compile_source(textwrap.dedent(SEEDS[0]))
    compile_source(textwrap.dedent(SEEDS[1]))
    assert compile_error(SEEDS[2]).code == E.INCLUDE_NOT_FOUND


@pytest.mark.slow
@FUZZ_SLOW
@given(random_bytes)
def test_fuzz_random_bytes_slow(text):
    check_only_fleq_errors(text)


@pytest.mark.slow
@FUZZ_SLOW
@given(random_text)
def test_fuzz_random_text_slow(text):
    check_only_fleq_errors(text)


@pytest.mark.slow
@FUZZ_SLOW
@given(mutated_programs())
def test_fuzz_mutated_programs_slow(text):
    check_only_fleq_errors(text)
