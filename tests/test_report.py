"""`fleqc run --report run.html`: the page's data, and the page itself in headless Chromium.

The browser test needs Chromium from the system packages (.ci/run installs the Debian package
`chromium` when it is missing); where there is none it is skipped with a message saying so.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

import fleqc
from fleqc.cli import main
from fleqc.machines.subleq import reference as subleq_reference
from fleqc.machines import weights_for
from fleqc.observe.report import Recorder, write_report
from fleqc.program import values_by_label

from tests.support.browser import Browser, find_chromium

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def reference_memory_after(program, k: int) -> dict:
    states = list(subleq_reference.trace(program, max_steps=k))
    memory = states[-1].memory if states else subleq_reference.initial_state(program).memory
    return {label: str(value) for label, value in values_by_label(program.symbols, memory).items()}


def test_report_records_every_step_on_the_transformer(tmp_path):
    program = fleqc.compile(SAMPLES / "gcd.fleq")
    recorder = write_report(fleqc.build(program), tmp_path / "r.html")
    data = recorder.data()
    assert data["total_steps"] == 67 and data["halted"] and len(data["steps"]) == 68
    for k in (0, 1, 12, 67):
        assert data["steps"][k]["memory"] == reference_memory_after(program, k)
    step12 = data["steps"][12]
    assert (step12["line"], step12["written"]) == (29, ["t"])  # subleq t, t
    assert step12["x"] is not None and {a[0] for a in step12["attention"]} == {0, 1, 3}
    assert [b[0] for b in data["layout"]["blocks"]][:3] == ["one", "scratch", "pos"]
    page = (tmp_path / "r.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # nothing from the network
    assert "data:image/png;base64," in page


def test_report_of_a_reference_run_and_of_fleq(tmp_path):
    recorder = write_report(fleqc.compile(SAMPLES / "gcd.fleq"), tmp_path / "r.html", backend="reference")
    data = recorder.data()
    assert data["layout"] is None and len(data["steps"]) == 68 and data["steps"][5]["line"] == 25
    from fleqc.runner import Run

    card = fleqc.build(SAMPLES / "fleq_polynomial.fleq")
    model = weights_for(card.config)
    machine = Run(card, "transformer")
    fleq = Recorder(machine, max_head_images=7)  # one pass of attention pictures
    machine.advance(100, on_event=fleq.event, on_X=fleq.state)
    fleq.finish()
    data = fleq.data()
    assert data["total_steps"] == 6 and data["steps"][6]["memory"]["y"] == "1.75"
    heads = fleq.heads_per_pass
    assert heads == sum(getattr(layer, "heads", 0) for layer in model.layers) == 7
    assert len(data["steps"][0]["attention"]) == heads and data["attention_until"] == 0
    assert data["layout"]["d"] == model.width and "<!DOCTYPE html>" in fleq.html()


def test_report_limits_long_runs():
    machine_program = fleqc.build(SAMPLES / "gcd.fleq")
    from fleqc.runner import Run

    machine = Run(machine_program, "transformer")
    recorder = Recorder(machine, max_steps=10, max_head_images=4 * 3)
    machine.advance(1000, on_event=recorder.event, on_X=recorder.state)
    recorder.finish()
    data = recorder.data()
    assert data["total_steps"] == 67 and data["recorded_steps"] == 10
    assert data["attention_until"] == 2 and data["steps"][3]["attention"] == []


def test_cli_report(tmp_path):
    out = tmp_path / "run.html"
    result = CliRunner().invoke(main, ["run", str(SAMPLES / "factorial.fleq"), "--report", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert '"result": 5040' in result.stdout and out.exists()


def chromium() -> str:
    found = find_chromium()
    if found is None:
        pytest.skip("no Chromium here (install the Debian package 'chromium'; .ci/run does): browser test skipped")
    return found


def test_report_in_headless_chromium(tmp_path):
    """Open the page, check the first state, click the slider, press the arrow key, switch layer,
    take a screenshot: through the DevTools protocol on a pipe (tests/support/browser.py)."""
    program = fleqc.compile(SAMPLES / "gcd.fleq")
    page = tmp_path / "gcd.html"
    write_report(fleqc.build(program), page)
    with Browser(chromium(), tmp_path / "profile") as browser:
        browser.open(page.as_uri())
        text = lambda selector: browser.evaluate(f"document.querySelector({selector!r}).textContent")
        assert text("#stepno") == "0" and text("#stepmax") == "67"
        assert browser.evaluate("document.querySelectorAll('#source div.executed').length") == 0

        def shown_memory() -> dict:
            return browser.evaluate("Object.fromEntries([...document.querySelectorAll('#memory tbody tr')]"
                                    ".map(tr => [tr.dataset.label, tr.querySelector('.value').textContent]))")

        assert shown_memory() == reference_memory_after(program, 0)
        slider = browser.rect("#slider")
        browser.click(slider["left"] + slider["width"] / 2, slider["top"] + slider["height"] / 2)  # mid-track
        step = int(text("#stepno"))
        assert 20 <= step <= 47  # about half of 67 (the thumb's width shifts it a little)
        assert shown_memory() == reference_memory_after(program, step)
        browser.key("ArrowRight", "ArrowRight", 39)  # the slider has the focus after the click
        assert int(text("#stepno")) == step + 1
        step += 1
        executed = browser.evaluate("document.querySelector('#source div.executed').id")
        event = recorder_line(program, step)
        assert executed == f"line-{event}"
        assert shown_memory() == reference_memory_after(program, step)
        assert browser.evaluate("document.getElementById('ximg').naturalWidth") == 32  # X: n columns
        assert browser.evaluate("document.querySelectorAll('#heads img').length") == 1  # layer 0: fetch
        browser.evaluate("document.getElementById('layer').value = '1';"
                         "document.getElementById('layer').dispatchEvent(new Event('change'))")
        assert browser.evaluate("document.querySelectorAll('#heads img').length") == 2  # layer 1: two reads
        shot = browser.screenshot(tmp_path / "shot.png")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    assert int.from_bytes(data[16:20], "big") == 1300


def recorder_line(program, step: int) -> int:
    """The source line of the instruction executed at ``step`` (from the reference trace)."""
    from fleqc.observe.trace import trace_program

    return trace_program(program, "reference", max_steps=step)[-1].line


def test_report_opens_at_the_step_in_its_address(tmp_path):
    """``report.html#step=12`` moves the slider there (Chromium's --dump-dom: the DOM after scripts)."""
    program = fleqc.compile(SAMPLES / "gcd.fleq")
    page = tmp_path / "gcd.html"
    write_report(fleqc.build(program), page)
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom",
               page.as_uri() + "#step=12"]
    # --virtual-time-budget: the page's timers run on Chromium's virtual clock, whatever the load; the
    # timeout only bounds a hung browser (it takes a few seconds)
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    moved = done.stdout
    assert 'data-step="12"' in moved, done.stderr[-2000:]
    assert re.search(r'<div id="line-29" class="executed">', moved)  # subleq t, t
    for label, value in reference_memory_after(program, 12).items():
        assert re.search(rf'<tr data-label="{label}"[^>]*><td class="label">{label}</td><td class="value">{value}</td>',
                         moved), label
    assert re.search(r'<tr data-label="t" class="written', moved)


HOSTILE_COMMENTS = ".data\nx: .word 5\n.text\n; <!--<script> and </script><SCRIPT> in a comment\nsubleq x, x\n"


def test_report_data_cannot_end_or_change_its_script_element(tmp_path):
    """A comment holding `<!--<script>` left the page blank (its script never ran): every "<" of the
    inline data is written as \\u003c, and the page still reads the text back exactly."""
    program = tmp_path / "__DATA__ __TITLE__.fleq"  # the page's own placeholders, in the file name
    program.write_text(HOSTILE_COMMENTS)
    page = tmp_path / "hostile.html"
    write_report(fleqc.build(program), page)
    text = page.read_text()
    start = text.index('<script id="data" type="application/json">') + len('<script id="data" type="application/json">')
    inline = text[start:text.index("</script>", start)]
    assert "<" not in inline
    files = json.loads(inline)["files"]
    assert "<!--<script> and </script><SCRIPT> in a comment" in json.dumps(files, ensure_ascii=False)
    with Browser(chromium(), tmp_path / "profile") as browser:
        browser.open(page.as_uri())
        assert browser.evaluate("document.querySelector('#stepmax').textContent") == "1"  # the script ran
        source = browser.evaluate("document.querySelector('#source').textContent")
        assert "<!--<script> and </script><SCRIPT> in a comment" in source
        assert "__DATA__ __TITLE__.fleq" in browser.evaluate("document.title")
