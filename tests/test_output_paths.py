"""One output-path policy for every file fleqc writes (fleqc.safe_io), over every writer.

Each writer (a command and the option that names its output) is run against each kind of target:
a regular file is replaced (atomically, with the usual permissions); an input of the same command
(the program, a file it includes, the card, the --input file, the weights file), a symbolic link,
a FIFO, a device node and a directory are refused, left as they were, without a hang and without
a temporary file left behind.
"""

from __future__ import annotations

import importlib.util
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
from click.testing import CliRunner

from fleqc import api
from fleqc.cli import main

LIB = ".data\ny: .word 2\n"
PROGRAM = '.include "lib.fleq"\n.data\nx: .word 5\n.text\nsubleq x, x\n'
CLASSIC = "c (-1)\nZ Z (-1)\n. Z:0 c:65\n"  # print 'A', halt


@dataclass
class Files:
    """The inputs the writers read, made once per test in its own folder."""

    root: Path
    program: Path = field(init=False)
    include: Path = field(init=False)
    card: Path = field(init=False)
    classic: Path = field(init=False)
    input: Path = field(init=False)
    weights: Path = field(init=False)

    def __post_init__(self) -> None:
        self.include = self.root / "lib.fleq"
        self.include.write_text(LIB)
        self.program = self.root / "p.fleq"
        self.program.write_text(PROGRAM)
        self.card = self.root / "p.npz"
        api.build(self.program).save(self.card)
        self.classic = self.root / "hello.sq"
        self.classic.write_text(CLASSIC)
        self.input = self.root / "in.txt"
        self.input.write_bytes(b"abc")
        self.weights = self.root / "w.npz"
        assert CliRunner().invoke(main, ["weights", "--machine", "subleq", "-n", "8", "-o",
                                         str(self.weights)]).exit_code == 0


@dataclass(frozen=True)
class Writer:
    name: str
    args: Callable[[Path, Files], list]  # the command line writing OUT
    reads: tuple[str, ...] = ()  # the attributes of Files that the command reads: its inputs
    suffix: str = ".out"
    needs: str = ""  # a module the writer needs (an extra)


WRITERS = [
    Writer("build -o", lambda out, f: ["build", f.program, "-o", out], ("program", "include"), ".npz"),
    Writer("build -o (classic, --input)", lambda out, f: ["build", f.classic, "--input", f.input, "-o", out],
           ("classic", "input"), ".npz"),
    Writer("weights -o .npz", lambda out, f: ["weights", "--machine", "subleq", "-n", "8", "-o", out], (), ".npz"),
    Writer("weights -o .safetensors", lambda out, f: ["weights", "--machine", "subleq", "-n", "8", "-o", out], (),
           ".safetensors", "safetensors"),
    Writer("run --trace-json", lambda out, f: ["run", f.program, "--trace-json", out], ("program", "include"),
           ".jsonl"),
    Writer("run --report", lambda out, f: ["run", f.program, "--report", out], ("program", "include"), ".html"),
    Writer("run CARD --report", lambda out, f: ["run", f.card, "--report", out], ("card",), ".html"),
    Writer("run --weights --trace-json", lambda out, f: ["run", f.program, "--weights", f.weights,
                                                         "--trace-json", out], ("program", "include", "weights"),
           ".jsonl"),
    Writer("run --trace-json (classic, --input)",
           lambda out, f: ["run", f.classic, "--input", f.input, "--trace-json", out], ("classic", "input"), ".jsonl"),
    Writer("disasm -o", lambda out, f: ["disasm", f.card, "-o", out], ("card",), ".fleq"),
    Writer("show -o", lambda out, f: ["show", f.program, "-o", out], ("program", "include"), ".png", "matplotlib"),
    Writer("show CARD -o", lambda out, f: ["show", f.card, "-o", out], ("card",), ".png", "matplotlib"),
    Writer("export --onnx --card", lambda out, f: ["export", "--onnx", out, "--card", f.card], ("card",), ".onnx",
           "onnx"),
    Writer("export --safetensors --card", lambda out, f: ["export", "--safetensors", out, "--card", f.card],
           ("card",), ".safetensors", "safetensors"),
    Writer("export --onnx --weights", lambda out, f: ["export", "--onnx", out, "--weights", f.weights],
           ("weights",), ".onnx", "onnx"),
]


def _regular(tmp: Path, w: Writer, f: Files) -> Path:
    path = tmp / f"out{w.suffix}"
    path.write_bytes(b"old")
    return path


def _symlink(tmp: Path, w: Writer, f: Files) -> Path:
    (tmp / "target").write_bytes(b"keep me")
    path = tmp / f"out{w.suffix}"
    path.symlink_to(tmp / "target")
    return path


def _fifo(tmp: Path, w: Writer, f: Files) -> Path:
    path = tmp / f"out{w.suffix}"
    os.mkfifo(path)
    return path


def _device(tmp: Path, w: Writer, f: Files) -> Path:
    """A character device: a node of /dev/null's numbers where we may make one, else /dev/null."""
    path = tmp / f"out{w.suffix}"
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        return Path("/dev/null")
    return path


def _directory(tmp: Path, w: Writer, f: Files) -> Path:
    path = tmp / f"out{w.suffix}"
    path.mkdir()
    return path


def _input(role: str) -> Callable[[Path, Writer, Files], Path]:
    return lambda tmp, w, f: getattr(f, role)


# (target, how to make it, the input role it is: only for writers that read that role)
TARGETS = [
    ("a regular file", _regular, None),
    ("the program", _input("program"), "program"),
    ("the classic program", _input("classic"), "classic"),
    ("an include", _input("include"), "include"),
    ("an input card", _input("card"), "card"),
    ("the --input file", _input("input"), "input"),
    ("the --weights file", _input("weights"), "weights"),
    ("a symlink", _symlink, None),
    ("a FIFO", _fifo, None),
    ("a device node", _device, None),
    ("a directory", _directory, None),
]

CASES = [pytest.param(w, t, make, id=f"{w.name} | {t}")
         for w in WRITERS for t, make, role in TARGETS if role is None or role in w.reads]


def _state(path: Path):
    """What must not change about a refused target: its kind and, for a file, its bytes."""
    info = os.lstat(path)
    kind = stat.S_IFMT(info.st_mode)
    return kind, (path.read_bytes() if stat.S_ISREG(info.st_mode) else None), \
        (os.readlink(path) if stat.S_ISLNK(info.st_mode) else None), (info.st_ino if not path.is_dir() else None)


@pytest.mark.timeout(300)  # a writer that opened a FIFO would wait for a reader for ever
@pytest.mark.parametrize("writer, target, make", CASES)
def test_every_writer_follows_the_output_policy(tmp_path, writer, target, make):
    if writer.needs and importlib.util.find_spec(writer.needs) is None:
        pytest.skip(f"needs {writer.needs} (the interop extras: make install-extras)")
    files = Files(tmp_path)
    out = make(tmp_path, writer, files)
    before = _state(out)
    others = {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file() and not p.is_symlink() and p != out}
    result = CliRunner().invoke(main, [str(a) for a in writer.args(out, files)])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if target == "a regular file":
        assert result.exit_code == 0, result.output
        assert out.read_bytes() != b"old"
        umask = os.umask(0)
        os.umask(umask)
        assert stat.S_IMODE(os.stat(out).st_mode) == 0o666 & ~umask  # whichever library wrote it
    elif target == "a directory":  # click's own check of the option: a usage error
        assert result.exit_code == 2 and "is a directory" in result.output, result.output
    else:
        assert result.exit_code == 1 and "error[bad-output]" in result.output, result.output
        assert str(out) in result.output
    if target != "a regular file":
        assert _state(out) == before
    for path, data in others.items():  # no input, nothing else was touched
        assert path.read_bytes() == data, path
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp") or ".tmp" in p.name], \
        list(tmp_path.iterdir())


def test_two_outputs_of_one_command_must_be_two_files(tmp_path):
    files = Files(tmp_path)
    out = tmp_path / "both.out"
    for args in (["run", files.program, "--trace-json", out, "--report", out],
                 *([["export", "--onnx", out, "--safetensors", out, "--card", files.card]]
                   if importlib.util.find_spec("onnx") and importlib.util.find_spec("safetensors") else [])):
        result = CliRunner().invoke(main, [str(a) for a in args])
        assert result.exit_code == 1 and "error[bad-output]" in result.output and "two outputs" in result.output
        assert not out.exists()


def test_every_writer_is_in_the_table():
    """A writer added to the command line is added here: every output option of every command."""
    import click

    outputs = set()
    for name, command in main.commands.items():
        for param in command.params:
            if isinstance(param, click.Option) and isinstance(param.type, click.Path) and \
                    any(o in param.opts for o in ("-o", "--output", "--trace-json", "--report", "--onnx",
                                                  "--safetensors")):
                outputs.add(f"{name} {max(param.opts, key=len)}")
    covered = {"build --output", "weights --output", "run --trace-json", "run --report", "disasm --output",
               "show --output", "export --onnx", "export --safetensors"}
    assert outputs == covered
    named = " ".join(w.name for w in WRITERS)
    for entry in covered:
        command, option = entry.split()
        assert f"{command} {'-o' if option == '--output' else option}" in named or \
            any(w.name.startswith(command) and option in w.name for w in WRITERS), entry
