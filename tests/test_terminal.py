"""The same command prints the same thing on a terminal and in a pipe: one run path.

Each command runs twice as a separate process, once with stdout and stderr on a pseudo-terminal
(``pty``) and once on pipes; what it prints (less the progress bar, which only a terminal's
stderr shows, and the terminal's CR LF line ends) and its exit status must be the same.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")


def _environment(extra: dict[str, str]) -> dict[str, str]:
    env = {**os.environ, **extra, "COLUMNS": "200", "TERM": "dumb"}
    env.pop("FLEQC_MEMORY_LIMIT", None) if "FLEQC_MEMORY_LIMIT" not in extra else None
    return env


def on_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Exit status and everything printed (stdout and stderr together) on a pseudo-terminal."""
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "fleqc", *args], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                               stdout=follower, stderr=follower, close_fds=True)
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 1.0)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the follower side closed: the process is done
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    os.close(leader)
    return process.wait(), ANSI.sub("", b"".join(chunks).decode("utf-8", "replace"))


def in_a_pipe(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "fleqc", *args], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return done.returncode, done.stdout.decode("utf-8", "replace")


def _normal(text: str) -> list[str]:
    """The printed lines, with the engine's timings (which differ from run to run) blanked."""
    text = re.sub(r'"(seconds|total_seconds|[a-z_]*_s|ms)": [0-9.e-]+', r'"\1": T', text)
    return [line.rstrip() for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("args, extra", [
    (["run", "samples/gcd.fleq", "--stats"], {}),
    (["run", "samples/gcd.fleq"], {"FLEQC_MEMORY_LIMIT": "100000"}),
    (["run", "samples/gcd.fleq", "--backend", "reference"], {}),
], ids=["stats", "memory-limit", "reference"])
def test_terminal_and_pipe_print_the_same(args, extra):
    env = _environment(extra)
    status_tty, printed_tty = on_terminal(args, env)
    status_pipe, printed_pipe = in_a_pipe(args, env)
    assert status_tty == status_pipe
    assert _normal(printed_tty) == _normal(printed_pipe)
    if "--stats" in args:
        assert "engine: {" in printed_tty  # the figures are printed on a terminal too
    if "FLEQC_MEMORY_LIMIT" in extra:
        assert status_tty == 1 and "out-of-memory" in printed_tty  # refused on a terminal too
