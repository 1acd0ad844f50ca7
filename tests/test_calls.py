"""Routines: `.routine`/`.endroutine`, `call` and `ret` (fleqc.frontend.routines), the calling
convention of the FLEQ machine without a stack: results, dispatch size and steps, and errors with
their file, line and column."""

from __future__ import annotations

import math

import pytest

import fleqc
from fleqc.errors import ErrorCode as E
from fleqc.errors import FleqError
from fleqc.machines import compile_file, compile_source
from fleqc.machines.fleq import reference as fleq

HEAD = ".machine fleq\n.data\nx: .word 3\ny: .word 0\nacc: .word 0\ntwo: .word 2\n.text\n"
DOUBLE = ".routine dbl\n    mul y, x, two\n    ret\n.endroutine\n"


def run(source: str):
    program = compile_source(source, "main.fleq")
    result = fleq.run(program)
    assert result.halted
    return program, result


@pytest.mark.parametrize("sites", [1, 2, 3, 4, 5, 8, 13])
def test_every_call_site_returns_to_its_own_place(sites):
    # each site adds y = 2x to acc and then x += 1, so acc = 2 * (3 + 4 + ... + (3 + sites - 1))
    body = "    call dbl\n    add acc, acc, y\n    add x, x, one\n" * sites
    source = HEAD.replace("two: .word 2\n", "two: .word 2\none: .word 1\n") + body + "    jmp end\n" + DOUBLE + "end: halt\n"
    program, result = run(source)
    acc = float(result.state.memory[program.symbols["acc"].address])
    assert acc == 2 * sum(3 + k for k in range(sites))
    # steps: per site call + mul + dispatch + add + add; the dispatch runs at most ceil(log2 K) + 1
    depth = math.ceil(math.log2(sites)) + 1 if sites > 1 else 1
    assert 4 * sites + 1 <= result.steps <= (4 + depth) * sites + 1
    ret_line = source.split("\n").index("    ret") + 1
    ret = [i for i in program.instructions if i.span is not None and i.span.line == ret_line]
    assert len(ret) == 2 * sites - 1  # the `ret` line: 2K - 1 instructions


def test_routine_before_its_calls_and_routines_calling_routines():
    source = """.machine fleq
.data
quad_x:   .word 0
quad_out: .word 0
sq_x:     .word 0
sq_out:   .word 0
r1: .word 0
r2: .word 0
.text
    jmp main
.routine sq
    mul sq_out, sq_x, sq_x
    ret
.endroutine
.routine quad              ; x^4 = sq(sq(x))
    mov sq_x, quad_x
    call sq
    mov sq_x, sq_out
    call sq
    mov quad_out, sq_out
    ret
.endroutine
main:
    mov quad_x, two
    call quad
    mov r1, quad_out
    mov sq_x, two
    call sq
    mov r2, sq_out
    halt
.data
two: .word 2
"""
    program, result = run(source)
    memory = fleqc.run(program, backend="reference").memory
    assert float(memory["r1"]) == 16.0 and float(memory["r2"]) == 4.0
    assert "quad" in program.symbols and program.symbols["quad"].kind == "code"


def test_hidden_cells_of_the_dispatch():
    source = HEAD + "    call dbl\n    call dbl\n    call dbl\n    halt\n" + DOUBLE
    program = compile_source(source)
    hidden = {s.name: float(program.cells[s.address].value) for s in program.symbols.values() if s.hidden}
    assert hidden["__ret_dbl"] == 0 and hidden["__dispatch"] == 0
    assert [hidden[f"__call_{k}"] for k in (1, 2, 3)] == [1, 2, 3]
    assert [hidden[f"__split_{k}"] for k in (1, 2)] == [1.5, 2.5]
    assert "__call_4" not in hidden and "__split_3" not in hidden
    # no values are printed for them
    assert not any(name.startswith("__") for name in fleqc.run(program, backend="reference").memory)


def test_single_site_ret_is_a_jump_and_an_uncalled_routine_keeps_a_halt():
    one = compile_source(HEAD + "    call dbl\n    halt\n" + DOUBLE)
    assert "__dispatch" not in one.symbols and "__split_1" not in one.symbols
    never = compile_source(HEAD + "    halt\n" + DOUBLE)
    assert not any(name.startswith(("__ret", "__call", "__split")) for name in never.symbols)
    ret = never.instructions[2]  # halt, mul, ret
    assert ret.target == ret.index and ret.func == "mov"


def test_routines_in_an_included_library(tmp_path):
    (tmp_path / "lib.fleq").write_text(".data\nlib_x: .word 0\nlib_out: .word 0\n.text\n"
                                       ".routine neg\n    sub lib_out, lib_out, lib_out\n"
                                       "    sub lib_out, lib_out, lib_x\n    ret\n.endroutine\n")
    (tmp_path / "main.fleq").write_text('.machine fleq\n.data\nr: .word 0\nfive: .word 5\n.text\n'
                                        '    mov lib_x, five\n    call neg\n    mov r, lib_out\n    halt\n'
                                        '.include "lib.fleq"\n')
    program = compile_file(tmp_path / "main.fleq")
    assert float(fleqc.run(program, backend="reference").memory["r"]) == -5.0


# Errors ------------------------------------------------------------------------------------------

F = ".machine fleq\n"
ERRORS = [
    # (id, source, code, line, column)
    ("ret-outside", F + "halt\nret\n", E.BAD_ROUTINE, 3, 1),
    ("ret-after-endroutine", F + ".routine r\nret\n.endroutine\n  ret\n", E.BAD_ROUTINE, 5, 3),
    ("call-unknown", F + "call nowhere\n", E.UNDEFINED_LABEL, 2, 6),
    ("call-typo", F + "  call dbl2\n.routine dbl\nret\n.endroutine\n", E.UNDEFINED_LABEL, 2, 8),
    ("call-plain-label", F + "l: call l\n", E.BAD_ROUTINE, 2, 9),
    ("call-number", F + "call 0\n", E.BAD_ROUTINE, 2, 6),
    ("nested", F + ".routine a\n.routine b\n.endroutine\n", E.BAD_ROUTINE, 3, 1),
    ("unclosed", F + "halt\n.routine a\nret\n", E.BAD_ROUTINE, 3, 1),
    ("end-without-routine", F + "halt\n.endroutine\n", E.BAD_ROUTINE, 3, 1),
    ("direct-recursion", F + ".routine a\ncall a\nret\n.endroutine\n", E.BAD_ROUTINE, 3, 6),
    ("indirect-recursion",
     F + "call a\n.routine a\ncall b\nret\n.endroutine\n.routine b\ncall a\nret\n.endroutine\n",
     E.BAD_ROUTINE, 8, 6),
    ("routine-in-data", F + ".data\n.routine a\n", E.WRONG_SECTION, 3, 1),
    ("routine-without-name", F + ".routine\n", E.OPERAND_COUNT, 2, 1),
    ("routine-number", F + ".routine 3\n", E.BAD_DIRECTIVE, 2, 10),
    ("routine-duplicate-label", F + "a: halt\n.routine a\nret\n.endroutine\n", E.DUPLICATE_LABEL, 3, 10),
    ("call-without-name", F + "call\n", E.OPERAND_COUNT, 2, 1),
    ("ret-with-operand", F + ".routine a\nret a\n.endroutine\n", E.OPERAND_COUNT, 3, 5),
    ("call-in-subleq", ".routine a\nret\n.endroutine\ncall a\n", E.NOT_IN_MACHINE, 2, 1),
    ("reserved-routine-name", F + ".routine __a\n", E.RESERVED_NAME, 2, 10),
]


@pytest.mark.parametrize("source, code, line, column", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_error_kind_and_location(source, code, line, column):
    with pytest.raises(FleqError) as info:
        compile_source(source, "main.fleq")
    error = info.value
    assert error.code == code, error.render()
    assert (error.span.file, error.span.line, error.span.column) == ("main.fleq", line, column), error.render()
    assert error.source_line == source.split("\n")[line - 1]


def test_a_routine_must_end_in_its_own_file(tmp_path):
    (tmp_path / "lib.fleq").write_text(".routine open\nret\n")
    (tmp_path / "main.fleq").write_text('.machine fleq\n.include "lib.fleq"\nhalt\n.endroutine\n')
    with pytest.raises(FleqError) as info:
        compile_file(tmp_path / "main.fleq")
    error = info.value
    assert error.code == E.BAD_ROUTINE
    assert (error.span.file, error.span.line, error.span.column) == (str(tmp_path / "lib.fleq"), 1, 1)
