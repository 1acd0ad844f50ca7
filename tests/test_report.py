"""`fleqc run --report run.html`: the page's data, and the page itself in headless Chromium.

The browser test needs Chromium from the system packages (.ci/run installs the Debian package
`chromium` when it is missing); where there is none it is skipped with a message saying so.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

import fleqc
from fleqc.cli import main
from fleqc.isa import subleq as subleq_reference
from fleqc.observe.report import Recorder, write_report
from fleqc.program import values_by_label

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
    assert step12["x"] is not None and {a[0] for a in step12["attention"]} == {1, 2, 4}
    assert [b[0] for b in data["layout"]["blocks"]][:3] == ["one", "scratch", "pos"]
    page = (tmp_path / "r.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # nothing from the network
    assert "data:image/png;base64," in page


def test_report_of_a_reference_run_and_of_fleq(tmp_path):
    recorder = write_report(fleqc.compile(SAMPLES / "gcd.fleq"), tmp_path / "r.html", backend="reference")
    data = recorder.data()
    assert data["layout"] is None and len(data["steps"]) == 68 and data["steps"][5]["line"] == 25
    fleq = write_report(fleqc.build(SAMPLES / "fleq_polynomial.fleq"), tmp_path / "f.html")
    data = fleq.data()
    assert data["total_steps"] == 6 and data["steps"][6]["memory"]["y"] == "1.75"
    heads = fleq.heads_per_pass
    assert heads == 107 and len(data["steps"][0]["attention"]) == heads


def test_report_limits_long_runs():
    machine_program = fleqc.build(SAMPLES / "gcd.fleq")
    from fleqc.observe.machine import Machine

    machine = Machine(machine_program, "transformer")
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
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium here (install the Debian package 'chromium'; .ci/run does): browser test skipped")


def browser(page: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1300,1400",
               "--virtual-time-budget=5000", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)


def test_report_in_headless_chromium(tmp_path):
    program = fleqc.compile(SAMPLES / "gcd.fleq")
    page = tmp_path / "gcd.html"
    write_report(fleqc.build(program), page)
    shot = tmp_path / "shot.png"
    done = browser(page, tmp_path, f"--screenshot={shot}", page.as_uri() + "#step=12")
    assert shot.exists(), done.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    assert (int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")) == (1300, 1400)

    def dom(step: int) -> str:
        done = browser(page, tmp_path, "--dump-dom", page.as_uri() + f"#step={step}")
        assert "<body" in done.stdout, done.stderr[-2000:]
        return done.stdout

    start, moved = dom(0), dom(12)  # the page moves its slider to the step in the address
    assert 'data-step="0"' in start and 'data-step="12"' in moved
    assert re.search(r'id="stepno">12<', moved)
    assert re.search(r'<div id="line-29" class="executed">', moved)  # subleq t, t
    memory = reference_memory_after(program, 12)
    for label, value in memory.items():
        assert re.search(rf'<tr data-label="{label}"[^>]*><td class="label">{label}</td><td class="value">{value}</td>',
                         moved), label
    assert re.search(r'<tr data-label="t" class="written', moved)
    assert 'class="executed"' not in start
    assert moved.count("<figure>") == 1 and 'id="ximg" alt="X as a heatmap" src="data:image/png' in moved
