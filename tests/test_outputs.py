"""Issue 11, section 3: nothing that is not fleqc's own output is replaced; interrupts are clean.

Output policy (fleqc.safe_io): only regular files are replaced, never a link, device, FIFO or
directory, never an input of the same command; writes are atomic and leave no temporary file on
an error, Ctrl-C or SIGTERM; Ctrl-C anywhere in the command is exit status 130 without a traceback.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from fleqc.cli import main
from fleqc.errors import ErrorCode, FleqError
from fleqc.safe_io import check_output

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = ".data\nx: .word 5\n.text\nsubleq x, x\n"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _program(tmp_path, name="p.fleq"):
    path = tmp_path / name
    path.write_text(PROGRAM)
    return path


def _fifo(tmp_path):
    path = tmp_path / "out.npz"
    os.mkfifo(path)
    return path


def _directory(tmp_path):
    path = tmp_path / "out.npz"
    path.mkdir()
    return path


def _link_to_file(tmp_path):
    target = tmp_path / "target.npz"
    target.write_bytes(b"keep me")
    (tmp_path / "out.npz").symlink_to(target)
    return tmp_path / "out.npz"


def _dangling_link(tmp_path):
    (tmp_path / "out.npz").symlink_to(tmp_path / "elsewhere.npz")
    return tmp_path / "out.npz"


def _link_to_device(tmp_path):
    (tmp_path / "out.npz").symlink_to("/dev/null")
    return tmp_path / "out.npz"


# (name, make the output path, what must still be there afterwards)
REFUSED_OUTPUTS = [
    ("a FIFO", _fifo, lambda p: p.is_fifo()),
    ("a directory", _directory, lambda p: p.is_dir()),
    ("a link to a file", _link_to_file, lambda p: p.is_symlink() and p.read_bytes() == b"keep me"),
    ("a dangling link", _dangling_link, lambda p: p.is_symlink() and not p.exists()),
    ("a link to /dev/null", _link_to_device, lambda p: p.is_symlink() and Path("/dev/null").is_char_device()),
]


@pytest.mark.parametrize("name, make, intact", REFUSED_OUTPUTS, ids=[r[0] for r in REFUSED_OUTPUTS])
@pytest.mark.parametrize("command", ["build", "weights"])
def test_outputs_that_are_not_regular_files_are_refused(tmp_path, name, make, intact, command):
    output = make(tmp_path)
    if command == "build":
        result = invoke("build", _program(tmp_path), "-o", output)
    else:
        result = invoke("weights", "--columns", "16", "-o", output)
    if output.is_dir():  # click refuses a directory itself, as a usage error
        assert result.exit_code == 2 and "is a directory" in result.output, result.output
    else:
        assert result.exit_code == 1 and "error[bad-output]" in result.output, result.output
    assert intact(output)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("device", ["/dev/null", "/dev/zero", "/dev/stdout"])
def test_devices_are_never_outputs(device):
    with pytest.raises(FleqError) as err:
        check_output(device)
    assert err.value.code is ErrorCode.BAD_OUTPUT


def test_build_never_overwrites_its_program(tmp_path):
    program = _program(tmp_path)
    result = invoke("build", program, "-o", program)
    assert result.exit_code == 1 and "error[bad-output]" in result.output and "input" in result.output
    assert program.read_text() == PROGRAM


def test_build_of_a_card_never_overwrites_the_card(tmp_path):
    program = _program(tmp_path)
    assert invoke("build", program).exit_code == 0
    card = tmp_path / "p.npz"
    before = card.read_bytes()
    result = invoke("build", card)  # the default output is the input itself
    assert result.exit_code == 1 and "error[bad-output]" in result.output
    assert card.read_bytes() == before


def test_build_never_overwrites_an_included_file(tmp_path):
    (tmp_path / "lib.fleq").write_text(".data\ny: .word 2\n")
    program = tmp_path / "main.fleq"
    program.write_text('.include "lib.fleq"\n' + PROGRAM)
    result = invoke("build", program, "-o", tmp_path / "lib.fleq")
    assert result.exit_code == 1 and "error[bad-output]" in result.output
    assert (tmp_path / "lib.fleq").read_text() == ".data\ny: .word 2\n"


def test_build_by_another_name_of_the_program_is_refused(tmp_path):
    program = _program(tmp_path)
    os.link(program, tmp_path / "hard.npz")
    result = invoke("build", program, "-o", tmp_path / "hard.npz")
    assert result.exit_code == 1 and "error[bad-output]" in result.output
    assert program.read_text() == PROGRAM


def test_a_regular_output_is_replaced(tmp_path):
    program = _program(tmp_path)
    (tmp_path / "out.npz").write_bytes(b"old")
    assert invoke("build", program, "-o", tmp_path / "out.npz").exit_code == 0
    assert (tmp_path / "out.npz").read_bytes()[:2] == b"PK"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz", "p.fleq"]


# -- signals ----------------------------------------------------------------------------------


SIGTERM_WRITER = textwrap.dedent("""
    import os, signal, sys
    from fleqc.safe_io import write_atomically

    def write(f):
        f.write(b"partial" * 1000)
        if sys.argv[2] == "term":
            os.kill(os.getpid(), signal.SIGTERM)
        else:
            raise KeyboardInterrupt
        f.write(b"never")

    write_atomically(sys.argv[1], write)
""")


@pytest.mark.parametrize("how, status", [("term", -signal.SIGTERM), ("int", -signal.SIGINT)])
def test_a_signal_during_a_write_leaves_no_temporary_file(tmp_path, how, status):
    target = tmp_path / "card.npz"
    target.write_bytes(b"old card")
    done = subprocess.run([sys.executable, "-c", SIGTERM_WRITER, str(target), how], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == status, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card.npz"]
    assert target.read_bytes() == b"old card"


def _fleqc(*args):
    # SIGINT's default disposition in the child: a test run started in the background by a
    # non-interactive shell inherits SIGINT ignored, and a Ctrl-C before fleqc's handler would be lost
    return subprocess.Popen([sys.executable, "-m", "fleqc", *map(str, args)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


LOOP = ".data\nx: .word 1\n.text\ntop: subleq x, x\n     jmp top\n"


@pytest.mark.parametrize("delay", [0.0, 0.3, 1.5])
def test_ctrl_c_is_a_clean_exit_130(tmp_path, delay):
    """Exit 130; or, for a Ctrl-C before Python has started fleqc's code at all, the end by SIGINT
    that a shell reports as 130 too (nothing printed either way)."""
    program = tmp_path / "loop.fleq"
    program.write_text(LOOP)
    process = _fleqc("run", program, "--max-steps", 10**9)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 or (delay == 0.0 and process.returncode == -signal.SIGINT), err
    assert "Traceback" not in err and "Aborted" not in err


def test_ctrl_c_during_weights_leaves_no_temporary_file(tmp_path):
    process = _fleqc("weights", "--machine", "fleq", "--columns", "128", "-o", tmp_path / "w.npz")
    time.sleep(2.0)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode in (0, 130), err  # 0 if the machine was built and written first
    assert "Traceback" not in err
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_the_entry_point_loads_nothing_heavy_before_its_ctrl_c_handler():
    """`import fleqc.entry` (what the `fleqc` script does first) must not import numpy or lark, so
    that the handler is in place before the slow imports."""
    code = "import sys, fleqc.entry; print(sorted(m for m in ('numpy', 'lark', 'click') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
