"""Flow under hostile source: random text, mutated programs, deep nesting, odd bytes. Compiling
either succeeds (and the assembly links) or raises a FleqError located in the user's file, never
another exception; through the command line, exit status 1 and no traceback."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from fleqc import api
from fleqc.cli import main
from fleqc.errors import FleqError
from fleqc.lang import translate

FILE = "fuzz.flow"

VALID = [
    "x = 1\ny = sqrt(x) + 2 * x\n",
    "A = [[4, 1], [2, 3]]\nb = [1, 2]\nx = solve(A, b)\nr = A @ x - b\n",
    "total = 0\nfor i in range(1, 11):\n    total += i * i\n",
    "def f(a, b):\n    if a < b and not a == 0:\n        return a\n    elif a > 1:\n        return -a ** 2\n"
    "    else:\n        return b\ny = f(1, 2) + f(3, 4)\n",
    "k = 0\nwhile k < 5:\n    k += 1\n    if k == 2:\n        continue\nv = [k, 2]\nv[0] = 3\n",
    "lam, v, n = power_iteration([[2, 1], [1, 3]])\nm = max(lam, 1)\n",
]
ALPHABET = st.sampled_from(list("abxyz019 .,:()[]+-*/@^<>=!#_\n\t\\") + ["if ", "while ", "for ", "def ", "return ",
                                                                       "    ", "range(", "sqrt(", "and ", "not "])


def _compile(text: str):
    """translate, then link the assembly: a FleqError in the user's file, or a program."""
    try:
        translation = translate(text, FILE)
    except FleqError as error:
        assert error.span is not None and error.span.file == FILE, error.render()
        assert error.span.line >= 1 and error.span.column >= 1
        error.render()
        return None
    from fleqc.machines import compile_source

    compile_source(translation.assembly, translation.generated_name)  # links: no error in generated code
    return translation


@settings(max_examples=300)
@given(st.lists(ALPHABET, max_size=60).map("".join))
def test_token_soup_never_raises_anything_but_a_located_error(text):
    _compile(text)


@settings(max_examples=300)
@given(st.sampled_from(VALID), st.data())
def test_mutated_programs_never_raise_anything_but_a_located_error(program, data):
    text = program
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.integers(0, len(text)))
        if data.draw(st.booleans()) and text:
            text = text[:where] + text[where + 1:]
        else:
            text = text[:where] + data.draw(ALPHABET) + text[where:]
    _compile(text)


@settings(max_examples=200)
@given(st.text(max_size=80))
def test_any_unicode_text(text):
    _compile(text)


@pytest.mark.parametrize("text", [
    "x = " + "(" * 5000 + "1" + ")" * 5000 + "\n",
    "x = " + "-" * 3000 + "1\n",
    "x = " + " + ".join(["1"] * 3000) + "\n",
    "x = " + "sqrt(" * 300 + "1" + ")" * 300 + "\n",
    "x = 1\ny = " + "not " * 2400 + "x < 1\n",
    "x = 1\nif " + "not " * 2400 + "x < 1:\n    y = 1\n",
    "x = 1\nwhile (" + " or\n ".join(["x < 1"] * 5000) + "):\n    x = 2\n",
    "x = 1\nif " + "(" * 3000 + "x" + ")" * 3000 + ":\n    y = 2\n",
    "".join(f"def f{k}(a):\n    return f{k + 1}(a) + 1\n" for k in range(400)) + "def f400(a):\n    return a\ny = f0(1)\n",
    "".join("    " * k + f"if {k} < 1:\n" for k in range(80)) + "    " * 80 + "x = 1\n",
    "x = [" * 2000 + "1" + "]" * 2000 + "\n",
    "x = 1\n" * 3000,
    "\ufeffx = 1\r\ny = 2\r\n",
    "x = 1\0\n",
    "x = 1" + " " * 20000 + "\n",
    "x = '1'\n",
    "def f():\n    return 1\n" * 2,
    "\tx = 1\n",
    "if 1:\n\tx = 1\n        y = 2\n",
    "x = 1e308 * 1e308\n",
    "x = 2 ** 100000\n",
    "x = 0 ** -1\n",
    "x = [[1, 2], [3, 4]] ** 0.5\n",
    "for i in range(10 ** 20):\n    pass\n",
])
def test_hostile_programs(text):
    _compile(text)


def test_deep_nesting_through_the_command_line(tmp_path):
    path = tmp_path / "deep.flow"
    path.write_text("x = " + "(" * 3000 + "2" + ")" * 3000 + "\ny = " + "-" * 1001 + "x\n", encoding="utf-8")
    out = CliRunner().invoke(main, ["run", str(path), "--backend", "reference", "--json"])
    assert out.exit_code == 0, out.output
    assert '"y": -2.0' in out.stdout


@pytest.mark.parametrize("data", [b"\xff\xfe\x00x = 1", b"x = \x80\x81\n", b"\x1b[31mx = 1\n"])
def test_odd_bytes_through_the_command_line(tmp_path, data):
    path = tmp_path / "odd.flow"
    path.write_bytes(data)
    out = CliRunner().invoke(main, ["run", str(path), "--backend", "reference"])
    assert out.exit_code == 1 and "Traceback" not in out.output and "\x1b" not in out.output, out.output


def test_a_missing_file(tmp_path):
    out = CliRunner().invoke(main, ["run", str(tmp_path / "none.flow")])
    assert out.exit_code == 1 and "error[file-not-found]" in out.output
    with pytest.raises(FleqError):
        api.compile(tmp_path / "none.flow")


def test_a_limit_found_while_linking_is_located_in_the_flow_file():
    """The linker's limits (65535 instructions, 65536 cells) are met in the generated assembly: the
    error names the Flow line that assembly line came from (a stand-in linker raises it here)."""
    from fleqc.errors import ErrorCode, Span
    from fleqc.lang import compile_text

    text = "x = 0\nx += 1\ny = x * 2\n"
    translation = translate(text, FILE)
    line = next(n for n, t in enumerate(translation.assembly.splitlines(), 1) if t.strip().startswith("mul"))

    def linker(assembly, name):
        raise FleqError(ErrorCode.PROGRAM_TOO_LARGE, "too many", Span(name, line, 9), "")

    with pytest.raises(FleqError) as info:
        compile_text(text, FILE, linker)
    assert (info.value.span.file, info.value.span.line) == (FILE, 3)
    assert info.value.source_line == "y = x * 2"
