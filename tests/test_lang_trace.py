"""A Flow program's steps inside stdlib routines are shown at the user's calling line (issue 27):
the trace (text and JSON), the HTML report and the debugger, on the reference interpreter and on
the transformer; an assembly program's routine steps keep their own lines."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from fleqc import api
from fleqc.cli import main
from fleqc.observe.debug import Debugger
from fleqc.observe.trace import trace_program
from fleqc.runner import Run
from tests.support.flow import write

# line 3 calls solve (which calls inverse, which calls norm1, norminf and vmax8); line 4 calls
# inverse itself: the same routine entered from two lines
SOURCE = "A = [[4, 1], [2, 3]]\nb = [1, 2]\nx = solve(A, b)\nB = inv(A)\ny = B @ b\n"
SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def _steps(output: str) -> list[str]:
    return [line for line in output.splitlines() if re.match(r"\s+\d+  pc ", line)]


def test_every_traced_step_shows_the_users_line_with_the_routines_it_is_in(tmp_path):
    path = write(tmp_path, SOURCE)
    result = CliRunner().invoke(main, ["run", str(path), "--backend", "reference", "--trace"])
    assert result.exit_code == 0, result.output
    lines = _steps(result.output)
    assert len(lines) > 400
    assert all(" prog.flow:" in line for line in lines), [line for line in lines if "prog.flow" not in line][:3]
    assert not any("stdlib" in line or ".fleq:" in line for line in lines)
    at3 = [line for line in lines if "prog.flow:3 " in line]
    at4 = [line for line in lines if "prog.flow:4 " in line]
    assert all("x = solve(A, b)" in line for line in at3) and all("B = inv(A)" in line for line in at4)
    assert any("(in solve)" in line for line in at3)
    assert any("(in solve > inverse)" in line for line in at3)
    assert any("(in solve > inverse > norm1)" in line for line in at3)
    assert any("(in inverse)" in line and "(in solve" not in line for line in at4)
    assert not any("(in solve" in line for line in at4)
    assert "(in " not in lines[0] and "(in " not in lines[-1]  # the user's own instructions
    assert "prog.flow:5" in lines[-1]


def test_the_json_trace_names_the_routines_and_where_their_instruction_was_written(tmp_path):
    path = write(tmp_path, SOURCE)
    out = tmp_path / "t.jsonl"
    result = CliRunner().invoke(main, ["run", str(path), "--backend", "reference", "--trace-json", str(out)])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert {e["file"] for e in events} == {str(path)}
    inside = [e for e in events if "routines" in e]
    assert inside and all(e["routine_file"].endswith(".fleq") and "stdlib" in e["routine_file"] for e in inside)
    assert {tuple(e["routines"][:1]) for e in inside} == {("solve",), ("inverse",)}
    assert all(e["line"] == 3 for e in inside if e["routines"][0] == "solve")
    assert all(e["line"] == 4 for e in inside if e["routines"][0] == "inverse")
    assert not any("routines" in e for e in events if e["line"] == 5)


def test_the_transformer_trace_attributes_the_same_steps_as_the_reference(tmp_path):
    program = api.compile(write(tmp_path, "a = 3\nb = 4\nc = sqrt(a * a + b * b)\nd = c + 1\n"))
    on_reference = trace_program(program, "reference")
    on_transformer = trace_program(program, "transformer")
    assert len(on_reference) == len(on_transformer) > 10
    assert [(e.file, e.line, e.routines, e.written_at) for e in on_reference] == \
        [(e.file, e.line, e.routines, e.written_at) for e in on_transformer]
    assert {e.line for e in on_transformer} == {3, 4}
    assert any(e.routines == ("sqrt",) for e in on_transformer)


def test_a_users_function_calling_the_stdlib_shows_the_functions_line(tmp_path):
    source = "def hyp(a, b):\n    return sqrt(a * a + b * b)\nc = hyp(3, 4)\nd = hyp(5, 12)\n"
    events = trace_program(api.compile(write(tmp_path, source)), "reference")
    assert {e.file for e in events} == {str(tmp_path / "prog.flow")}
    inside = [e for e in events if e.routines]
    assert inside and {e.line for e in inside} == {2} and {e.routines for e in inside} == {("sqrt",)}


def test_the_report_highlights_the_calling_line(tmp_path):
    path = write(tmp_path, SOURCE)
    report = tmp_path / "r.html"
    result = CliRunner().invoke(main, ["run", str(path), "--backend", "reference", "--report", str(report)])
    assert result.exit_code == 0, result.output
    html = report.read_text(encoding="utf-8")
    opening = '<script id="data" type="application/json">'
    start = html.index(opening) + len(opening)
    data = json.loads(html[start:html.index("</script>", start)])
    steps = data["steps"][1:]
    assert len(steps) > 400
    assert {s["file"] for s in steps} == {str(path)}
    assert {s["next_file"] for s in data["steps"]} == {str(path)}
    assert any("(in solve > inverse)" in s["text"] for s in steps)


def test_the_debugger_shows_the_calling_line_inside_a_routine(tmp_path):
    path = write(tmp_path, SOURCE)
    d = Debugger(Run(api.compile(path), "reference"))
    assert d.location() == (str(path), 3) and d.routines() == ()
    d.step(3)  # the call: now inside solve
    assert d.location() == (str(path), 3) and d.routines() == ("solve",)
    d.step(2)
    assert d.location() == (str(path), 3) and d.routines() == ("solve", "inverse")
    assert d.last.line == 3 and d.last.routines == ("solve",)
    assert d.toggle(str(path), 4)
    d.cont()
    assert d.location() == (str(path), 4) and d.routines() == ()
    d.step(2)
    assert d.location() == (str(path), 4) and d.routines() == ("inverse",)


def test_an_assembly_program_keeps_the_stdlib_lines():
    program = api.compile(SAMPLES / "apps" / "app_inverse4.fleq")
    events = trace_program(program, "reference", max_steps=200)
    assert any("stdlib" in e.file for e in events)
    assert not any(e.routines for e in events)


@pytest.mark.parametrize("name, text", [("prog.flow", b"x = 1\ny = \xff\n"), ("prog.fleq", b".data\nx: .word \xff\n")])
def test_flow_and_the_assembler_say_a_syntax_error_alike(tmp_path, name, text):
    """One home for the syntax errors' pieces (fleqc.frontend.diagnostics): text that is not UTF-8
    is named so in Flow as in the assembly, located, without a traceback."""
    path = tmp_path / name
    path.write_bytes(text)
    result = CliRunner().invoke(main, ["run", str(path), "--backend", "reference"])
    assert result.exit_code == 1
    assert "error[unexpected-character]: unexpected character (the file is not valid UTF-8 text)" in result.output
    assert f"{name}:2:" in result.output and "Traceback" not in result.output


def test_a_routines_arguments_are_computed_in_its_own_cells():
    """`(1 + 2) * 7 / 3`: the dividend is computed straight into div's argument cell (no temporary
    and no move), so the program's card needs 256 columns, not 512 (issue 25: fleqc calc)."""
    from fleqc.calc import compile_expression
    from fleqc.machines import program_to_card

    compiled = compile_expression("(1 + 2) * 7 / 3")
    code = [line.split(";")[0].strip() for line in compiled.source.splitlines()]
    assert "mul div_x, _k_3, div_x" in code and "add div_x, _k, _k_2" in code
    program = api.compile(compiled.source)
    assert program_to_card(program).config.columns == 256
    result = api.run(program, backend="reference")
    assert result.memory["result"] == 7.0 and result.steps == 70
