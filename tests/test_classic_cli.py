"""The classic machine on the command line (issue 12): the machine comes from the file's suffix or
--machine; the program's output goes to stdout as it is produced, the run's figures to stderr or
--json; input from a file or standard input; cards; errors located, never a traceback."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from fleqc import api
from fleqc.cli import main
from tests.support.subleq_corpus import corpus

HELLO = "Hello, world!\n"


def invoke(*args, stdin: bytes | None = None):
    return CliRunner().invoke(main, [str(a) for a in args], input=stdin)


@pytest.mark.parametrize("backend", ["transformer", "reference"])
def test_run_prints_the_programs_output_and_the_figures_on_stderr(backend):
    result = invoke("run", corpus() / "01_rosetta_hello.dec", "--backend", backend)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == HELLO
    assert "halted after 71 steps" in result.stderr


def test_assembly_source_runs():
    result = invoke("run", corpus() / "06_woodman_helloworld.sq")
    assert (result.exit_code, result.stdout) == (0, "hello, world\n")


@pytest.mark.parametrize("how", ["file", "stdin"])
def test_input_from_a_file_or_standard_input(how, tmp_path):
    folder = corpus()
    given = (folder / "11_davidar_demo.input.txt").read_bytes()
    source = folder / "11_davidar_demo.asq"
    result = invoke("run", source, "--input", folder / "11_davidar_demo.input.txt") if how == "file" \
        else invoke("run", source, "--input", "-", stdin=given)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (folder / "11_davidar_demo.expected_output.txt").read_text()


def test_json_holds_output_and_figures():
    result = invoke("run", corpus() / "02_esolangs_hi.sq", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"halted": True, "steps": 3, "memory": {"H": 72, "i": 105}, "output": "Hi"}


def test_card_built_then_run_with_input(tmp_path):
    folder = corpus()
    card = tmp_path / "demo.npz"
    built = invoke("build", folder / "11_davidar_demo.asq", "-o", card)
    assert built.exit_code == 0 and "classic card" in built.stdout
    result = invoke("run", card, "--input", folder / "11_davidar_demo.input.txt")
    assert result.stdout == (folder / "11_davidar_demo.expected_output.txt").read_text()
    assert invoke("run", card, "--memory", "4096").exit_code == 2  # a card's machine is fixed


def test_machine_option_chooses_the_classic_machine_for_any_file(tmp_path):
    image = tmp_path / "hello.txt"
    image.write_bytes((corpus() / "01_rosetta_hello.dec").read_bytes())
    result = invoke("run", image, "--machine", "classic")
    assert (result.exit_code, result.stdout) == (0, HELLO)


def test_16_bit_words(tmp_path):
    image = tmp_path / "hi.dec"
    image.write_text("9 65535 3 10 65535 6 0 0 65535 72 105\n")  # 65535 is -1 in 16 bits
    result = invoke("run", image, "--bits", "16")
    assert (result.exit_code, result.stdout) == (0, "Hi")
    assert invoke("run", image).exit_code == 1  # 32-bit words: 65535 is an address outside memory


@pytest.mark.parametrize("text, code", [
    ("1 2 x 3\n", "unexpected-token"),
    ("Z Z undefined_label\nZ:0\n", "undefined-label"),
])
def test_mistakes_are_located(tmp_path, text, code):
    suffix = ".dec" if text[0].isdigit() else ".sq"
    source = tmp_path / f"bad{suffix}"
    source.write_text(text)
    result = invoke("run", source)
    assert result.exit_code == 1
    assert f"error[{code}]" in result.stderr and f"bad{suffix}:1:" in result.stderr
    assert "Traceback" not in result.stderr


def test_address_fault_is_reported(tmp_path):
    source = tmp_path / "fault.dec"
    source.write_text("100 0 3\n")
    result = invoke("run", source)
    assert result.exit_code == 1 and "error[address-fault]" in result.stderr and "--memory" in result.stderr


def test_options_of_other_machines_are_usage_errors():
    hello = corpus() / "01_rosetta_hello.dec"
    assert invoke("run", hello, "--cell", "2").exit_code == 2
    assert invoke("run", hello, "--columns", "64").exit_code == 1


def test_weights_of_the_classic_machine(tmp_path):
    weights = tmp_path / "w.npz"
    assert invoke("weights", "--machine", "classic", "--memory", "32", "-o", weights).exit_code == 0
    result = invoke("run", corpus() / "01_rosetta_hello.dec", "--weights", weights)
    assert (result.exit_code, result.stdout) == (0, HELLO)


def test_python_api_collects_output():
    printed = bytearray()
    result = api.run(corpus() / "01_rosetta_hello.dec", output=printed)
    assert (bytes(printed), result.halted, result.steps) == (HELLO.encode(), True, 71)


@pytest.mark.parametrize("source", ["04_mazonka_hello.sq", "11_davidar_demo.asq"])
def test_disasm_reassembles_to_the_same_card(tmp_path, source):
    card, listing, again = tmp_path / "a.npz", tmp_path / "a.sq", tmp_path / "b.npz"
    assert invoke("build", corpus() / source, "-o", card).exit_code == 0
    result = invoke("disasm", card, "-o", listing)
    assert result.exit_code == 0, result.stderr
    assert invoke("build", listing, "-o", again).exit_code == 0
    assert (api.load_card(card).X == api.load_card(again).X).all()


def test_trace_follows_a_classic_program_on_both_backends():
    """The machine describes its own steps: one trace line per executed instruction (to stderr, as
    the program's own output owns stdout), the same on the transformer and the reference."""
    traces = {}
    for backend in ("transformer", "reference"):
        result = invoke("run", corpus() / "02_esolangs_hi.sq", "--trace", "--backend", backend)
        assert result.exit_code == 0, result.stderr
        assert result.stdout == "Hi"  # the program's output, untouched by the trace
        lines = [line for line in result.stderr.splitlines() if line.lstrip()[:1].isdigit()]
        steps = int(result.stderr.split("halted after ")[1].split()[0])
        assert len(lines) == steps > 0
        traces[backend] = lines
    assert traces["transformer"] == traces["reference"]
    assert any(": out " in line for line in traces["reference"])  # the output instructions are named


def test_the_debugger_steps_a_classic_program_and_shows_its_output():
    from fleqc.observe.debug import Debugger
    from fleqc.runner import Run

    program = api.compile(corpus() / "04_mazonka_hello.sq")
    for backend in ("transformer", "reference"):
        debugger = Debugger(Run(program, backend, output=bytearray()))
        debugger.command("step 20")
        assert debugger.machine.steps == 20 and dict(debugger.watched())["(output)"] == "He"


@pytest.mark.parametrize("backend", ["transformer", "reference"])
def test_classic_sample_prints_what_its_header_says(backend):
    """samples/classic_hello.sq (our own, so it runs without the corpus) states its output."""
    from pathlib import Path

    sample = Path(__file__).resolve().parents[1] / "samples" / "classic_hello.sq"
    expected = next(line.split(":", 1)[1].strip() for line in sample.read_text().splitlines()
                    if line.startswith("# expect-output:"))
    result = invoke("run", sample, "--backend", backend)
    assert (result.exit_code, result.stdout) == (0, expected.replace("\\n", "\n"))


def test_both_backends_stop_at_a_fixed_point(tmp_path):
    source = tmp_path / "loop.dec"
    source.write_text("3 3 0 0\n")  # mem[3] = 0 - 0, jump to 0: forever the same state
    for backend in ("transformer", "reference"):
        result = invoke("run", source, "--backend", backend)
        assert result.exit_code == 0 and "halted after 0 steps" in result.stderr, backend


def test_sizes_are_checked_with_the_right_message(tmp_path):
    big = tmp_path / "big.dec"
    big.write_text(" ".join(["0"] * 70_000))
    result = invoke("run", big)
    assert result.exit_code == 1 and "error[program-too-large]" in result.stderr and "65,536" in result.stderr
    result = invoke("run", corpus() / "01_rosetta_hello.dec", "--memory", "3")
    assert result.exit_code == 1 and "error[bad-config]" in result.stderr and "--memory" in result.stderr


def test_the_debugger_needs_a_terminal():
    """Without one (a pipe, a test runner) the screen would wait for keys forever: a usage error."""
    pytest.importorskip("textual")
    result = invoke("debug", corpus() / "02_esolangs_hi.sq")
    assert result.exit_code == 2 and "needs a terminal" in result.stderr
