"""What a new user and an interpretability user trip over: one test (at least) per friction.

Each test here failed before its fix: names and numbers that agree, exact round trips, lockstep and
observation on every engine, readable traces, no silent waits, and the Python API's small edges.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import fleqc
from fleqc.cli import main

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def invoke(*args: str, input: bytes | str | None = None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


# -- the Python API and the command line ----------------------------------------------------------


def test_memory_of_a_fleq_program_compares_with_equals():
    card = fleqc.build(SAMPLES / "fleq_matrix_chain.fleq")
    result = fleqc.run(card)
    assert fleqc.run(card, backend="reference").memory == result.memory  # the README's idiom
    assert result == fleqc.run(card)
    changed = dict(result.memory)
    name = next(k for k, v in changed.items() if isinstance(v, np.ndarray) and v.ndim == 2)
    changed[name] = changed[name] * 2
    assert result.memory != changed
    reshaped = dict(result.memory)
    reshaped[name] = result.memory[name].reshape(-1)  # the same entries in another shape
    assert not (result.memory == reshaped)


def test_a_classic_programs_last_line_does_not_run_into_halted_after(tmp_path, monkeypatch):
    import fleqc.cli as cli

    program = tmp_path / "no_newline.sq"
    program.write_text("# prints 'A' with no newline\nc (-1)\nZ Z (-1)\n. c: 65 Z: 0\n")
    monkeypatch.setattr(cli, "both_terminals", lambda: True)
    result = invoke("run", program, "--backend", "reference")
    assert result.exit_code == 0, result.output
    assert result.stdout == "A"
    assert result.stderr.startswith("\nhalted after")


def test_columns_with_the_reference_backend_is_refused_like_mode():
    result = invoke("run", SAMPLES / "gcd.fleq", "--backend", "reference", "--columns", "64")
    assert result.exit_code == 2
    assert "--columns" in result.stderr and "--backend reference" in result.stderr


@pytest.mark.parametrize("word,base", [("0x1G", "hexadecimal"), ("-0x1g", "hexadecimal"), ("0b102", "binary")])
def test_a_bad_prefixed_literal_says_which_base(tmp_path, word, base):
    program = tmp_path / "bad.fleq"
    program.write_text(f".machine fleq\nx: .word {word}\nhalt\n")
    result = invoke("run", program)
    assert result.exit_code == 1
    assert f"'{word}' is not a valid {base} literal" in result.stderr
    assert f"{program}:2:10:" in result.stderr


# -- names and numbers that agree ----------------------------------------------------------------


def test_layers_are_numbered_from_0_as_in_the_weights_files(tmp_path):
    pytest.importorskip("matplotlib")
    from fleqc.machines import weights_for
    from fleqc.observe.attention import attention_layers
    from fleqc.transformer.layers import AttentionLayer
    from fleqc.transformer.weights_io import save_weights

    card = fleqc.build(SAMPLES / "gcd.fleq")
    model = weights_for(card.config)
    assert attention_layers(model) == [i for i, layer in enumerate(model.layers) if isinstance(layer, AttentionLayer)]
    save_weights(model, tmp_path / "w.npz")
    with np.load(tmp_path / "w.npz") as saved:
        assert {int(k[5:].split(".")[0]) for k in saved.files if k.endswith(".query.at")} == set(attention_layers(model))
    result = invoke("show", SAMPLES / "gcd.fleq", "-o", tmp_path / "a.png", "--attention", "0")
    assert result.exit_code == 0, result.output
    bad = invoke("show", SAMPLES / "gcd.fleq", "-o", tmp_path / "a.png", "--attention", "2")
    assert bad.exit_code == 2 and "attention layers are 0, 1, 3" in bad.stderr


# -- lockstep and observation for users, on every engine ----------------------------------------


def test_run_lockstep_compares_every_step():
    result = invoke("run", SAMPLES / "gcd.fleq", "--lockstep", "numpy,reference", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["memory"]["a"] == 21
    assert "lockstep: numpy, reference agreed after every one of 67 steps" in result.stderr
    classic = invoke("run", SAMPLES / "classic_hello.sq", "--lockstep", "all")
    assert classic.exit_code == 0, classic.output
    assert classic.stdout == "Hi from a looped transformer!\n"  # printed once, not once per engine
    clash = invoke("run", SAMPLES / "gcd.fleq", "--lockstep", "numpy,reference", "--trace")
    assert clash.exit_code == 2 and "--trace" in clash.stderr


def test_lockstep_leaves_out_engines_not_installed(monkeypatch):
    import fleqc.lockstep as lockstep

    monkeypatch.setattr(lockstep, "installed", lambda backend: backend in ("numpy", "reference"))
    result = invoke("run", SAMPLES / "gcd.fleq", "--lockstep", "numpy,torch,onnx,reference")
    assert result.exit_code == 0, result.output
    assert "torch, onnx not installed: left out" in result.stderr
    alone = invoke("run", SAMPLES / "gcd.fleq", "--lockstep", "numpy,torch")
    assert alone.exit_code == 1 and "two backends or more" in alone.stderr


def test_lockstep_names_the_first_step_row_block_and_column_that_differ(monkeypatch):
    import fleqc.lockstep as lockstep
    from fleqc.runner import Run

    advance = Run.advance

    def tampered(self, *args, **kwargs):  # the numpy engine's X goes wrong in memory cell b at step 3
        done = advance(self, *args, **kwargs)
        if self.backend == "transformer" and self.steps == 3 and getattr(self, "tampered", False):
            block = next(b for b in self.card.rows if b.name == "mem")
            self.X[block.start, self.card.regions.memory_column(1)] += 1.0
            self._pending = None
        return done

    monkeypatch.setattr(Run, "advance", tampered)
    monkeypatch.setattr(lockstep, "installed", lambda backend: True)
    def numpy_for_onnx(target, name, **kw):  # a second numpy run stands in for onnx, and goes wrong
        run = Run(target, "numpy" if name == "onnx" else name, **kw)
        run.tampered = name == "onnx"
        return run

    monkeypatch.setattr(lockstep, "Run", numpy_for_onnx)
    with pytest.raises(lockstep.LockstepMismatch) as caught:
        lockstep.run_lockstep(fleqc.build(SAMPLES / "gcd.fleq"), ["numpy", "onnx"], 100)
    text = str(caught.value)
    assert text.startswith("step 3: ") and "row block mem" in text and "memory cell 1 b" in text, text
    monkeypatch.setattr(Run, "advance", advance)


def test_lockstep_on_the_interop_engines():
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    result = invoke("run", SAMPLES / "gcd.fleq", "--lockstep", "numpy,torch,onnx,reference")
    assert result.exit_code == 0, result.output
    assert "numpy, torch, onnx, reference agreed after every one of 67 steps" in result.stderr


def test_a_matrix_instructions_trace_line_is_short_and_hides_the_linkers_cells(tmp_path):
    trace_json = tmp_path / "t.jsonl"
    result = invoke("run", SAMPLES / "apps" / "app_inverse8.fleq", "--trace", "--trace-json", trace_json,
                    "--max-steps", "40")
    lines = [line for line in result.stdout.splitlines() if line.lstrip()[:1].isdigit()]
    assert len(lines) == 40
    assert max(map(len, lines)) < 320, max(lines, key=len)
    assert "8x8 [" in result.stdout and "__" not in "".join(lines)
    events = [json.loads(line) for line in trace_json.read_text().splitlines()]
    full = [a["value"] for e in events for a in e["reads"] if isinstance(a["value"], list) and len(a["value"]) == 8]
    assert full and all(len(row) == 8 for row in full[0])  # every value in the JSON trace
    assert any(a["label"].startswith("__") for e in events for a in e["reads"])
    shown = invoke("run", SAMPLES / "apps" / "app_inverse8.fleq", "--trace", "--trace-hidden", "--max-steps", "3")
    assert "flag __one=1.0" in shown.stdout


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_trace_and_report_observe_the_interop_engines(tmp_path, backend):
    pytest.importorskip("torch" if backend == "torch" else "onnxruntime")
    report = tmp_path / "r.html"
    result = invoke("run", SAMPLES / "gcd.fleq", "--backend", backend, "--trace", "--report", report)
    assert result.exit_code == 0, result.output
    reference = invoke("run", SAMPLES / "gcd.fleq", "--backend", "reference", "--trace")
    assert result.stdout.splitlines()[:67] == reference.stdout.splitlines()[:67]
    assert report.stat().st_size > 10_000


# -- no silent waits ------------------------------------------------------------------------------


class _Terminal:
    def __init__(self) -> None:
        import io

        self.buffer = io.StringIO()

    def write(self, text: str) -> int:
        return self.buffer.write(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True

    def getvalue(self) -> str:
        return self.buffer.getvalue()


def test_progress_is_a_bar_towards_the_step_limit():
    from fleqc.observe import progress

    stream = _Terminal()
    with progress.RunProgress(stream, max_steps=1000, delay=0.0) as bar:
        for step in range(1, 500):
            bar.tick(step)
    shown = stream.getvalue()
    assert "of 1,000 steps" in shown and "━" in shown, shown


def test_a_run_in_a_pipe_prints_a_status_line_now_and_then(monkeypatch):
    from fleqc.observe import progress

    monkeypatch.setattr(progress, "STATUS_EVERY_S", 0.0)
    result = invoke("run", SAMPLES / "gcd.fleq")  # CliRunner's stderr is not a terminal
    assert result.exit_code == 0
    assert "fleqc: running gcd.fleq: 67 steps of at most 1,000,000, " in result.stderr
    assert "steps/s" in result.stderr and "elapsed" in result.stderr
    quiet = invoke("run", SAMPLES / "gcd.fleq")
    monkeypatch.undo()
    assert "fleqc: running" not in invoke("run", SAMPLES / "gcd.fleq").stderr  # short runs: nothing
    assert quiet.exit_code == 0


def test_labels_chooses_what_run_prints_and_aliases_print_as_aliases(tmp_path):
    program = tmp_path / "alias.fleq"
    program.write_text(".data\nlist: .word 1, 2, 3\nlist_end:\nn:    .word 6\nptr:  .word list\n.text\n"
                       "  subleq ptr, ptr\n")
    result = invoke("run", program)
    assert result.exit_code == 0, result.output
    assert "list_end: another name for n (address 3)" in result.stdout
    assert "list_end =" not in result.stdout and "n = 6" in result.stdout
    chosen = invoke("run", program, "--labels", "ptr,list")
    assert chosen.stdout == "ptr = 0\nlist = [1, 2, 3]\n"
    as_json = invoke("run", program, "--labels", "n", "--json")
    assert json.loads(as_json.stdout)["memory"] == {"n": 6}
    bad = invoke("run", program, "--labels", "pt")
    assert bad.exit_code == 2 and "did you mean 'ptr'" in bad.stderr
    classic = invoke("run", SAMPLES / "classic_hello.sq", "--labels", "p")
    assert classic.stdout == "Hi from a looped transformer!\np = 61\n"


def test_a_domain_error_names_the_same_step_and_place_on_both_backends(tmp_path):
    program = tmp_path / "domain.fleq"
    program.write_text(".machine fleq\n.data\nx: .word -4.0\ny: .word 0.0\n.text\n    add y, x, x\n"
                       "    sqrt y, x\n    halt\n")
    said = {}
    for backend in ("transformer", "reference"):
        result = invoke("run", program, "--backend", backend)
        assert result.exit_code == 1
        said[backend] = result.stderr
        stepped = invoke("run", program, "--backend", backend, "--trace")  # stepped, not run to the end
        assert stepped.stderr == result.stderr
    assert said["transformer"] == said["reference"]
    assert f"{program}:7:1: error[domain-error]: instruction 1 (sqrt), step 2: " in said["reference"]


def test_make_install_says_what_it_installs_and_how_long_it_takes():
    import subprocess

    root = SAMPLES.parent
    for target in ("install", "install-extras"):
        plan = subprocess.run(["make", "-n", "-B", target], cwd=root, capture_output=True, text=True, timeout=60)
        assert plan.returncode == 0, plan.stderr
        said = " ".join(line for line in plan.stdout.splitlines() if line.startswith("echo"))
        assert f"make {target}:" in said and "minute" in said, plan.stdout


@pytest.mark.parametrize("backend", ["transformer", "reference"])
def test_a_classic_fault_names_the_sq_line_and_memory(tmp_path, backend):
    program = tmp_path / "buffer.sq"
    program.write_text("# uses a buffer beyond the image\nZ Z\nc 100\nend: Z Z (-1)\n. Z:0 c:72\n")
    result = invoke("run", program, "--backend", backend)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{program}:3:1: error[address-fault]: machine fault at step 2: ")
    assert "--memory WORDS" in result.stderr and "    c 100\n    ^" in result.stderr
    roomy = invoke("run", program, "--backend", backend, "--memory", "128")
    assert roomy.exit_code == 0, roomy.output


# -- interop --------------------------------------------------------------------------------------


def test_a_model_folder_has_config_json_and_a_model_card():
    from fleqc.interop.model_card import config_json, model_card
    from fleqc.machines import weights_for

    card = fleqc.build(SAMPLES / "gcd.fleq")
    model = weights_for(card.config)
    config = config_json(model, "model.safetensors", card.config.describe())
    assert config["model_type"] == "fleqc-looped-transformer" and config["torch_dtype"] == "float64"
    assert config["hidden_size"] == model.width == len(config["row_labels"])
    assert [layer["kind"] for layer in config["layers"]][:2] == ["attention", "attention"]
    assert config["layers"][0]["index"] == 0 and config["layers"][0]["head_names"] == ["fetch"]
    assert config["machine"]["kind"] == "subleq" and json.loads(json.dumps(config)) == config
    text = model_card(model, "model.safetensors", card.config.describe())
    assert text.startswith("---\nlibrary_name: fleqc\n") and "| 0 | attention | 1 head | fetch |" in text
    assert "fleqc run program.fleq --weights model.safetensors" in text
    assert fleqc.run(card, weights=model).memory["a"] == 21  # the card's Python example, as written


def test_export_hf_writes_a_model_folder(tmp_path):
    pytest.importorskip("safetensors")
    folder = tmp_path / "subleq-n32"
    result = invoke("export", "--hf", folder, "--columns", "32")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert json.loads((folder / "config.json").read_text())["weights"] == "model.safetensors"
    ran = invoke("run", SAMPLES / "gcd.fleq", "--weights", folder / "model.safetensors", "--json")
    assert json.loads(ran.stdout)["memory"]["a"] == 21
    again = invoke("export", "--hf", folder, "--columns", "32")
    assert again.exit_code == 2 and "new or empty folder" in again.stderr


# -- pictures -------------------------------------------------------------------------------------


def _figure_of(monkeypatch):
    from fleqc.observe import show

    figures = []
    monkeypatch.setattr(show, "_save", lambda fig, path, inputs=(): figures.append(fig) or Path(path))
    return show, figures


def _colorbar(figure):
    (bar,) = [a for a in figure.axes if a.get_label() == "<colorbar>"]
    return bar


def test_show_colorbars_read_as_numbers_and_attention_has_names(monkeypatch, tmp_path):
    pytest.importorskip("matplotlib")
    from fleqc.observe.attention import attention_maps

    show, figures = _figure_of(monkeypatch)
    run, X = show.state_after(fleqc.build(SAMPLES / "gcd.fleq"), 12)
    show.plot_X(run.card, X, tmp_path / "x.png")
    labels = [t.get_text() for t in _colorbar(figures[-1]).get_yticklabels()]
    assert labels == ["-1", "-0.5", "0", "0.5", "1"], labels  # not ±10^0
    maps = attention_maps(run.model, X, 3)
    show.plot_attention(run.card, maps, tmp_path / "a.png")
    figure = figures[-1]
    bar = _colorbar(figure)
    assert bar.get_ylabel() == "attention weight"
    panel = figure.axes[0]
    assert [t.get_text() for t in panel.get_xticklabels()] == ["scrat", "memor", "instr", "paddi"]
    norm = panel.images[0].norm
    assert norm(1 / 31) > 0.3 and norm(0.0) == 0.0  # an even spread over 31 columns is not 0's colour


def test_report_url_follows_the_slider_and_pictures_read_out_values(tmp_path):
    """In headless Chromium: #step= follows the slider; pointing at X reads the entry (row block,
    column region, value); attention thumbnails name the column regions and read out weights."""
    from fleqc.observe.report import write_report
    from fleqc.runner import Run
    from tests.support.browser import Browser, find_chromium

    if find_chromium() is None:
        pytest.skip("no Chromium here (install the Debian package 'chromium'): browser test skipped")
    card = fleqc.build(SAMPLES / "gcd.fleq")
    page = tmp_path / "gcd.html"
    write_report(card, page)
    after = Run(card)
    after.advance(12)
    with Browser(find_chromium(), tmp_path / "profile") as browser:
        browser.open(page.as_uri() + "#step=5")
        assert browser.evaluate("document.getElementById('stepno').textContent") == "5"
        browser.evaluate("const s = document.getElementById('slider'); s.value = '12';"
                         "s.dispatchEvent(new Event('input'))")
        assert browser.evaluate("location.hash") == "#step=12"

        def hover(selector: str, fx: float, fy: float) -> None:
            browser.evaluate(f"document.querySelector({selector!r}).scrollIntoView({{block: 'center'}})")
            box = browser.rect(selector)
            browser.send("Input.dispatchMouseEvent", session=True, type="mouseMoved",
                         x=box["left"] + fx * box["width"], y=box["top"] + fy * box["height"])

        d, n = card.X.shape
        row, column = card.rows["mem"].start, card.regions.memory_column(0)  # cell a's lowest bit
        hover("#ximg", (column + 0.5) / n, (row + 0.5) / d)
        read = browser.evaluate("document.getElementById('xread').textContent")
        expected = f"{after.X[row, column]:g}"
        assert read == f"row {row} (mem[0]), column {column} (memory cell 0): {expected}", read
        names = browser.evaluate("[...document.querySelectorAll('#heads .axis span')].map(s => s.textContent)")
        assert names[:4] == ["scrat", "memor", "instr", "paddi"]
        fetch = card.regions.instructions[0] + after.pc  # layer 0's scratchpad query looks at the instruction at pc
        hover("#heads img", 0.5 / n, (fetch + 0.5) / n)
        weight = browser.evaluate("document.getElementById('attread').textContent")
        assert f"query column 0 (scratch) attends key column {fetch} (instructions {after.pc}) with weight ≈ 1" in weight


# -- the debugger ---------------------------------------------------------------------------------


def _debugger(backend: str = "transformer", sample: str = "gcd.fleq"):
    from fleqc.observe.debug import Debugger
    from fleqc.runner import Run

    program = fleqc.compile(SAMPLES / sample)
    return Debugger(Run(program, backend), remake=lambda: Run(program, backend))


@pytest.mark.parametrize("backend", ["transformer", "reference"])
def test_debugger_watch_is_a_watchpoint(backend):
    d = _debugger(backend)
    d.command("watch t")  # shown from the start anyway: watch makes continue stop when t changes
    d.command("continue")
    assert d.machine.steps == 13 and d.message == "watch: t changed from 0 to -147 at step 13", d.message
    assert d.changed == {"t"}
    d.command("unwatch t")
    d.command("continue")
    assert d.machine.halted and d.machine.steps == 67


@pytest.mark.parametrize("backend", ["transformer", "reference"])
def test_debugger_steps_back(backend):
    d = _debugger(backend)
    d.command("step 12")
    memory, X = d.machine.memory(), None if d.machine.X is None else d.machine.X.copy()
    d.command("step 3")
    d.command("back 3")
    assert d.machine.steps == 12 and d.machine.memory() == memory and d.last.step == 12
    if X is not None:
        assert np.array_equal(d.machine.X, X)
    assert "back 3 steps: at step 12" in d.message
    d.command("back")
    assert d.machine.steps == 11
    d.command("back 100")
    assert d.machine.steps == 0 and d.last is None
    d.command("step 2")
    assert d.machine.steps == 2  # it steps on from there


def test_debugger_keeps_the_marker_at_halt():
    pytest.importorskip("textual")
    import asyncio

    from textual.widgets import Static

    from fleqc.observe.debug import make_app

    d = _debugger()
    app = make_app(d)

    async def drive() -> None:
        async with app.run_test(size=(140, 45)) as pilot:
            await pilot.press("r")
            assert d.machine.halted
            code = str(app.query_one("#code", Static).render())
            assert " >  36  done:   halt" in code, code
            await pilot.press("p")
            assert d.machine.steps == 66 and not d.machine.halted
            await pilot.press("q")

    asyncio.run(drive())
