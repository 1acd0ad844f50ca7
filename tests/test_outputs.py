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
                          capture_output=True, text=True, timeout=60)  # a bound on a hang, not a measurement
    assert done.returncode == status, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card.npz"]
    assert target.read_bytes() == b"old card"


# What the `fleqc` script that pip writes does (.venv/bin/fleqc), run from this checkout; `python -m
# fleqc` does the same through fleqc/__main__.py.
SCRIPT = "import sys; from fleqc.entry import main; sys.argv[0] = 'fleqc'; sys.exit(main())"


def _fleqc(*args, sigint_at=None):
    """The command in a child process. SIGINT_AT names the point where it sends itself SIGINT
    (FLEQC_SIGINT_AT, fleqc/entry.py), so that a Ctrl-C lands there whatever the machine's load.
    The child gets SIGINT's default disposition: a test run started in the background by a
    non-interactive shell inherits SIGINT ignored, and fleqc must not depend on that."""
    env = {k: v for k, v in os.environ.items() if k != "FLEQC_SIGINT_AT"}
    if sigint_at is not None:
        env["FLEQC_SIGINT_AT"] = sigint_at
    return subprocess.Popen([sys.executable, "-c", SCRIPT, *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _finish(process, timeout=120):
    """(stdout, stderr) once the child has exited. The timeout is no measurement: these children
    take a few seconds on an idle machine, and one that missed its Ctrl-C would run for hours; the
    timeout turns that into a failure instead of a hung test run."""
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return out.decode(), err.decode()


def _assert_clean_130(process, err):
    assert process.returncode == 130, err
    assert "fleqc: interrupted" in err, err
    assert not any(word in err for word in ("Traceback", "Aborted", "Exception ignored")), err


LOOP = ".data\nx: .word 1\n.text\ntop: subleq x, x\n     jmp top\n"

# Points of the start-up, in the order the command reaches them: the handler has just been installed
# (fleqc.entry is still being imported); the script's next line, the call of main(); the command
# line's imports (typing: where the SIGINT of issue 24 landed, when fleqc/__init__.py still imported
# it before the handler; click; numpy); click parsing the arguments; and a weakref callback during
# an import, where Python can only print an exception and go on (fleqc.entry raises it again).
START_UP = ["start", "call:fleqc.entry:main", "import:typing", "import:click", "import:numpy",
            "call:click.core:Command.parse_args", "call:importlib._bootstrap:_get_module_lock.<locals>.cb"]


@pytest.mark.parametrize("point", START_UP)
def test_ctrl_c_during_start_up_is_a_clean_exit_130(tmp_path, point):
    """Exit 130, "fleqc: interrupted" and nothing else on stderr, at each point of the start-up.
    Without the Ctrl-C the command would end by itself (the step limit: status 3)."""
    program = tmp_path / "loop.fleq"
    program.write_text(LOOP)
    process = _fleqc("run", program, "--max-steps", 1000, sigint_at=point)
    _, err = _finish(process)
    assert f"fleqc: SIGINT at {point}\n" in err, err  # the point was reached
    _assert_clean_130(process, err)


SPIN = "c (-1)          # print 'A'\nloop: m1 T      # T += 1\nZ Z loop        # and again, for ever\n" \
       ". Z:0 T:0 m1:-1 c:65\n"


def test_ctrl_c_mid_run_is_a_clean_exit_130(tmp_path):
    """A classic program prints its bytes as the transformer writes them: once its first byte has
    arrived, the run is under way (and it would go on for 10^9 steps); then the Ctrl-C."""
    program = tmp_path / "spin.sq"
    program.write_text(SPIN)
    process = _fleqc("run", program, "--max-steps", 10**9)
    first = process.stdout.read(1)
    process.send_signal(signal.SIGINT)
    out, err = _finish(process)
    assert first + out.encode() == b"A", err
    _assert_clean_130(process, err)


def test_ctrl_c_mid_trace_is_a_clean_exit_130(tmp_path):
    """The same for a FLEQ program under --trace: its first line printed, the loop runs on."""
    program = tmp_path / "loop.fleq"
    program.write_text(LOOP)
    process = _fleqc("run", program, "--max-steps", 10**9, "--trace")
    first = process.stdout.readline()
    process.send_signal(signal.SIGINT)
    _, err = _finish(process)
    assert first.strip(), err
    _assert_clean_130(process, err)


# Points of writing the weights: the temporary file being made (fleqc.safe_io blocks signals there,
# so the SIGINT waits until the file is owned), the archive half written, the file complete and
# about to be renamed over the output.
WRITING = ["call:tempfile:mkstemp", "call:zipfile:ZipFile.close", f"call:{os.replace.__module__}:replace"]


@pytest.mark.parametrize("point", WRITING)
def test_ctrl_c_during_weights_leaves_the_old_file_and_no_temporary_file(tmp_path, point):
    output = tmp_path / "w.npz"
    output.write_bytes(b"old weights")
    process = _fleqc("weights", "--machine", "subleq", "-o", output, sigint_at=point)
    _, err = _finish(process)
    assert f"fleqc: SIGINT at {point}\n" in err, err
    _assert_clean_130(process, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]
    assert output.read_bytes() == b"old weights"


def test_the_entry_point_imports_nothing_before_its_ctrl_c_handler():
    """`from fleqc.entry import main` (what the `fleqc` script does first) imports fleqc and
    fleqc.entry and nothing else, and installs the handler: a Ctrl-C can come at any moment."""
    code = ("import sys, _signal; before = set(sys.modules); import fleqc.entry; "
            "print(sorted(set(sys.modules) - before), _signal.getsignal(_signal.SIGINT) is fleqc.entry._interrupt)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)  # a bound on a hang (the child takes 0.1 s), not a measurement
    assert done.stdout.strip() == "['fleqc', 'fleqc.entry'] True", done.stdout + done.stderr


# The long loops of every machine, and a point inside the compiled pass: numba calls back into
# Python on every pass of the incremental engine (unboxing its typed lists), and a Ctrl-C handled
# there came back as "SystemError: CPUDispatcher(<function engine_pass ...>) returned a result with
# an exception set" (or a TypeError of the unboxing), a traceback and exit 1. The 300th call comes
# after the engine's start-up (about 170 calls on SUBLEQ), a few calls per call of the compiled loop
# of passes, whose chunks of passes last about 0.1 s each: how many steps that takes grows with the
# engine's speed, so the step limit leaves room for a much faster engine (a run that reaches its
# point stops there); without the Ctrl-C each run ends at its step limit.
LONG_LOOPS = {
    "subleq": ("loop.fleq", LOOP),
    "classic": ("spin.sq", "loop: m1 T\n      Z Z loop\n. Z:0 T:0 m1:-1\n"),
    "fleq": ("loop.fleq", ".machine fleq\n.data\nx: .word 1.0\none: .word 1.0\n.text\n"
                          "top: add x, x, one\n     mul x, x, one\n     jmp top\n"),
}
INSIDE_THE_PASS = "call:numba.core.serialize:_numba_unpickle#300"


@pytest.mark.parametrize("machine", sorted(LONG_LOOPS))
def test_ctrl_c_inside_a_compiled_pass_is_a_clean_exit_130(tmp_path, machine):
    pytest.importorskip("numba", reason="without numba the passes are plain Python (covered above)")
    name, text = LONG_LOOPS[machine]
    program = tmp_path / name
    program.write_text(text)
    process = _fleqc("run", program, "--max-steps", 2_000_000, sigint_at=INSIDE_THE_PASS)
    out, err = _finish(process, timeout=300)
    assert f"fleqc: SIGINT at {INSIDE_THE_PASS}\n" in err, err  # the point was reached, inside engine_pass
    _assert_clean_130(process, err)


def test_an_exception_that_a_ctrl_c_caused_is_the_interruption(monkeypatch, capsys):
    """Whatever form the interruption comes back in (a SystemError around it), main() exits 130."""
    previous = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)  # importing fleqc.entry sets both
    import fleqc.entry as entry

    def wrapped():
        try:
            raise entry.Interrupted()
        except entry.Interrupted as exc:
            raise SystemError("CPUDispatcher(<function engine_pass>) returned a result with an exception set") \
                from exc

    monkeypatch.setattr(entry, "_run", wrapped)
    monkeypatch.setattr(entry, "_main_reports", entry._main_reports)
    try:
        with pytest.raises(SystemExit) as done:
            entry.main()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert done.value.code == 130
    assert capsys.readouterr().err == "fleqc: interrupted\n"


SIGNAL_DURING_EXPORT = textwrap.dedent("""
    import os, signal, sys
    import safetensors.numpy as st

    written = st.save_file

    def save_file(arrays, name, metadata=None):  # the file is complete, not yet renamed: the signal
        written(arrays, name, metadata=metadata)
        if sys.argv[2] == "term":
            os.kill(os.getpid(), signal.SIGTERM)
        raise KeyboardInterrupt

    st.save_file = save_file
    from fleqc.cli import main
    main(sys.argv[3:])
""")


@pytest.mark.parametrize("how, status", [("term", -signal.SIGTERM), ("int", 1)])
@pytest.mark.parametrize("command", ["weights", "export"])
def test_a_signal_while_writing_safetensors_leaves_no_temporary_file(tmp_path, how, status, command):
    """SIGTERM during `weights -o x.safetensors` left a temporary file of hundreds of MB behind;
    the .safetensors writers go through fleqc.safe_io like every other writer."""
    pytest.importorskip("safetensors")
    target = tmp_path / "m.safetensors"
    target.write_bytes(b"old weights")
    args = ["weights", "--machine", "subleq", "-n", "8", "-o", str(target)] if command == "weights" else \
        ["export", "--safetensors", str(target), "--machine", "subleq", "-n", "8"]
    done = subprocess.run([sys.executable, "-c", SIGNAL_DURING_EXPORT, str(target), how, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)  # a bound on a hang, not a measurement
    assert done.returncode == status, done.stderr  # click turns a bare KeyboardInterrupt into "Aborted!", 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]
    assert target.read_bytes() == b"old weights"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("option", ["--trace-json", "--report"])
def test_a_signal_mid_run_leaves_no_temporary_output(tmp_path, sig, option):
    """A run writing --trace-json (as it goes) or --report (at its end) is signalled once its
    temporary file exists, or mid-run: nothing is left but the inputs, and no output appears."""
    program = tmp_path / "loop.fleq"
    program.write_text(LOOP)
    output = tmp_path / ("out.jsonl" if option == "--trace-json" else "out.html")
    process = _fleqc("run", program, "--max-steps", 10**9, option, output, "--backend", "reference")
    deadline = time.monotonic() + 100  # a bound on a hang, not a measurement
    while option == "--trace-json" and not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]:
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before the signal"
        time.sleep(0.05)
    if option == "--report":
        time.sleep(2)  # under way (the report is written only at the end)
    process.send_signal(sig)
    _, err = _finish(process)
    if sig == signal.SIGINT:
        _assert_clean_130(process, err)
    else:
        assert process.returncode == -signal.SIGTERM, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loop.fleq"], list(tmp_path.iterdir())
