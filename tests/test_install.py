"""A non-editable install of the wheel works from any directory (slow: builds a venv)."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent


def _run(*args, cwd=None) -> str:
    # a bound on a hang (pip building the wheel takes well under a minute), not a measurement
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_wheel_installs_and_runs_outside_the_repo(tmp_path):
    wheels = tmp_path / "wheels"
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheels, REPO)
    (wheel,) = wheels.glob("fleqc-*.whl")
    env = tmp_path / "env"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    _run(python, "-m", "pip", "install", "-q", wheel)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # grammar and stdlib come from inside the installed package, not from the repo
    where = _run(python, "-c", "from fleqc.resources import grammar_path, stdlib_dir; print(grammar_path()); print(stdlib_dir())", cwd=elsewhere)
    assert all(str(env) in line for line in where.split())
    prog = elsewhere / "p.fleq"
    prog.write_text((REPO / "samples" / "gcd.fleq").read_text())
    out = _run(env / "bin" / "fleqc", "run", "p.fleq", "--json", cwd=elsewhere)
    assert json.loads(out)["memory"]["a"] == 21
    out = _run(python, "-m", "fleqc", "build", "p.fleq", "-o", "p.npz", cwd=elsewhere)
    assert (elsewhere / "p.npz").exists()
    # the observing commands come with the wheel (rich is a dependency; plot/debug are extras)
    out = _run(env / "bin" / "fleqc", "run", "p.fleq", "--trace", cwd=elsewhere)
    assert "p.fleq:21" in out and "a = 21" in out
    out = _run(env / "bin" / "fleqc", "disasm", "p.npz", cwd=elsewhere)
    assert "loop:" in out
    out = _run(env / "bin" / "fleqc", "calc", "-2^2", "--backend", "reference", cwd=elsewhere)  # calc.lark packaged
    assert out.splitlines()[0] == "-4.0"
