"""Start-up (issue 25): the command line imports only what a command needs. Its options come from
the registry's plain data (fleqc.machines.about) without importing the machine packages, which
must agree with it; a SUBLEQ program compiles and runs without the FLEQ and classic machines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fleqc.machines import REGISTRY, about, machine
from fleqc.machines.about import ABOUT, CLASSIC_MAX_INPUT

ROOT = Path(__file__).resolve().parent.parent
NEVER_AT_START = ("numba", "lark", "matplotlib", "textual", "torch", "onnxruntime", "fleqc.machines.fleq",
                  "fleqc.machines.classic", "fleqc.lang", "fleqc.observe.report", "fleqc.observe.debug",
                  "fleqc.interop")


def _modules_after(code: str, env: dict | None = None) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
                         cwd=ROOT, capture_output=True, text=True, check=True, env=env)
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_importing_the_command_line_loads_no_machine_package_nor_heavy_library():
    loaded = _modules_after("import fleqc.cli")
    assert not [m for m in loaded if m.startswith(NEVER_AT_START)]


def test_a_subleq_run_loads_neither_the_other_machines_nor_numpy_ma():
    loaded = _modules_after("from fleqc import api\nr = api.run(api.compile('samples/factorial.fleq'))\n"
                            "assert r.halted and r.memory['result'] == 5040")
    assert "fleqc.machines.subleq" in loaded and "lark" in loaded  # it did compile and run
    assert not [m for m in loaded if m.startswith(("fleqc.machines.fleq", "fleqc.machines.classic", "numba"))]
    assert "numpy.ma" not in loaded and "zipfile" not in loaded


@pytest.mark.parametrize("name", list(ABOUT))
def test_the_plain_data_of_each_machine_is_the_machines_own(name):
    m, plain = machine(name), about(name)
    assert plain is ABOUT[name]
    assert (plain.name, plain.title, plain.default_columns, plain.suffixes, plain.options) == \
        (m.name, m.title, m.default_columns, tuple(m.suffixes), tuple(m.options))
    assert plain.fleq_language == (m.language is not None)
    assert m.config_from_options(None, {}).columns == plain.default_columns


def test_the_classic_input_limit_is_its_tape():
    from fleqc.machines.classic.config import MAX_TAPE

    assert CLASSIC_MAX_INPUT == MAX_TAPE - 1


def test_a_machine_registered_without_plain_data_is_described_by_loading_it(monkeypatch):
    monkeypatch.setitem(REGISTRY, "echo", "tests.support.plugin_machine")
    echo = about("echo")
    assert echo.title == "ECHO" and echo.suffixes == (".echo",) and [o.name for o in echo.options] == ["passes"]


def test_the_command_starts_openblas_with_fleqcs_threads():
    code = "import fleqc.threads as t, os\nt.pin_blas_threads()\nprint(os.environ['OPENBLAS_NUM_THREADS'])"
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("OPENBLAS_NUM_THREADS",)}
    for given, expected in ((None, "1"), ("3", "3")):
        run_env = dict(env, **({"FLEQC_BLAS_THREADS": given} if given else {}))
        run_env.pop("FLEQC_BLAS_THREADS", None) if given is None else None
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=run_env,
                             check=True)
        assert out.stdout.strip() == expected
    kept = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                          env=dict(env, OPENBLAS_NUM_THREADS="2"))
    assert kept.stdout.strip() == "2"  # the user's own setting stands


@pytest.mark.parametrize("args, status", [(["run", "samples/factorial.fleq", "--json"], 0),
                                          (["run", "samples/factorial.fleq", "--max-steps", "3"], 3),
                                          (["run", "samples/no-such-file.fleq"], 1),
                                          (["calc", "1 / 3"], 0)])
def test_the_command_leaves_with_its_status_and_every_byte_of_its_output(args, status):
    """fleqc.entry leaves by os._exit once stdout and stderr are flushed (the interpreter's teardown
    is skipped): the status and the output are what the command gave."""
    out = subprocess.run([sys.executable, "-m", "fleqc", *args], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == status, out.stderr
    if args[-1] == "--json":
        assert json.loads(out.stdout)["memory"]["result"] == 5040
    elif status == 3:
        assert "stopped after 3 steps without halting" in out.stderr
    elif status == 1:
        assert "error[" in out.stderr and "Traceback" not in out.stderr
    else:
        assert out.stdout == "0.3333333333333333\n" and "70 steps" not in out.stderr and "steps" in out.stderr
