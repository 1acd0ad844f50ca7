"""Issue 11, section 5: messages that used to mislead, and options that used to do nothing."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from fleqc.cli import main
from fleqc.errors import ErrorCode, FleqError, Span
from fleqc.machines import compile_source


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("source, glued", [
    (".machine fleq\n.data\nv: .vector 2 1.5.5\n.text\nhalt\n", "1.5.5"),
    (".data\nx: .word 12abc\n", "12abc"),
    (".data\nx: .word 0x\n", "0x"),
    (".data\nx: .word 1 2x\n", "2x"),
])
def test_glued_literals_are_an_error_not_two_values(source, glued):
    with pytest.raises(FleqError) as err:
        compile_source(source, "m.fleq")
    assert err.value.code is ErrorCode.UNEXPECTED_TOKEN and f"'{glued}'" in err.value.message
    assert err.value.span.line == source.count("\n", 0, source.index(glued)) + 1


@pytest.mark.parametrize("source, values", [
    (".data\nx: .word 1 -2, 3\n.text\nhalt\n", [1, -2, 3]),
    (".data\nx: .word 1,2\n.text\nhalt\n", [1, 2]),
])
def test_separated_values_still_read(source, values):
    assert [c.value for c in compile_source(source, "m.fleq").cells][:len(values)] == values


@pytest.mark.parametrize("args", [
    ["--columns", "0"], ["--bits", "0"], ["--machine", "fleq", "--cell", "0"], ["--columns", "3"],
])
def test_weights_never_silently_builds_the_defaults(tmp_path, args):
    result = invoke("weights", *args, "-o", tmp_path / "w.npz")
    assert result.exit_code == 1 and "error[bad-config]" in result.output, result.output
    assert not (tmp_path / "w.npz").exists()


def test_weights_help_states_its_own_defaults():
    text = " ".join(invoke("weights", "--help").output.split())
    assert "smallest that fits" not in text and "default 64 for SUBLEQ, 128 for FLEQ" in text


@pytest.mark.parametrize("length", [17, 1048576])
def test_a_vector_too_large_for_any_cell_is_located(tmp_path, length):
    program = tmp_path / "v.fleq"
    program.write_text(f".machine fleq\n.data\nv: .vector {length}\n.text\nhalt\n")
    result = invoke("build", program)
    assert result.exit_code == 1 and f"{program}:3:4: error[program-too-large]" in result.output, result.output
    assert "--columns" not in result.output and "--cell" not in result.output


@pytest.mark.parametrize("args, word", [
    (["samples/gcd.fleq", "--backend", "reference", "--mode", "hardmax"], "--mode"),
    (["samples/gcd.fleq", "--backend", "reference", "--weights", "w.npz"], "--weights"),
    (["samples/gcd.fleq", "--cell", "4"], "--cell"),
    (["samples/fleq_polynomial.fleq", "--bits", "8"], "--bits"),
])
def test_options_that_would_do_nothing_are_usage_errors(args, word):
    result = invoke("run", *args)
    assert result.exit_code == 2 and word in result.output, result.output


def test_weights_of_another_size_run_at_their_own_size(tmp_path):
    weights = tmp_path / "w64.npz"
    assert invoke("weights", "--columns", "64", "-o", weights).exit_code == 0
    result = invoke("run", "samples/factorial.fleq", "--weights", weights)  # the program alone fits n = 32
    assert result.exit_code == 0 and "result = 5040" in result.output, result.output


def test_a_domain_error_names_the_operand_its_value_and_the_window(tmp_path):
    program = tmp_path / "r.fleq"
    program.write_text(".machine fleq\n.data\nx: .word 1e30\ny: .word 0.0\n.text\n  recip y, x\n  halt\n")
    result = invoke("run", program)
    assert result.exit_code == 1 and f"{program}:6:" in result.output, result.output
    assert "operand a = 1e+30" in result.output and "2^-81 < |x| <= 2^81" in result.output


def test_call_without_its_include_names_the_stdlib_part(tmp_path):
    program = tmp_path / "c.fleq"
    program.write_text(".machine fleq\n.data\nx: .word 2.0\n.text\n  call div\n  halt\n")
    result = invoke("run", program)
    assert result.exit_code == 1 and '.include "arith_div.fleq"' in result.output, result.output


def test_control_characters_are_never_echoed_raw():
    error = FleqError(ErrorCode.UNEXPECTED_CHARACTER, "unexpected character U+001B", Span("m.fleq", 1, 3),
                      "x \x1b[31m red \x07")
    text = error.render()
    assert "\x1b" not in text and "\x07" not in text
    assert text.splitlines()[1] == "    x ?[31m red ?" and text.splitlines()[2] == "      ^"


@pytest.mark.parametrize("special", ["/dev/zero", "fifo"])
def test_a_program_that_is_not_a_regular_file_is_refused(tmp_path, special):
    if special == "fifo":
        special = tmp_path / "p.fleq"
        os.mkfifo(special)
    result = invoke("build", special, "-o", tmp_path / "out.npz")
    assert result.exit_code == 1 and "error[file-not-found]" in result.output and "regular file" in result.output


@pytest.mark.parametrize("command", ["build", "run", "inspect"])
def test_an_unreadable_input_is_file_not_found_not_a_usage_error(tmp_path, command):
    target = tmp_path / ("p.npz" if command == "inspect" else "p.fleq")
    target.mkdir()
    result = invoke(command, target, *(["-o", tmp_path / "out.npz"] if command == "build" else []))
    assert result.exit_code == 1 and "error[file-not-found]" in result.output, result.output


def test_a_span_that_knows_only_its_line_underlines_the_statement():
    error = FleqError(ErrorCode.DOMAIN_ERROR, "x", Span("m.fleq", 8, 1), "    call log   ; the log")
    assert error.render().splitlines()[2] == "        ^^^^^^^^"
