"""fleqc.interop without its extras, and what the exported models may know.

These run in the default suite whether or not the extras are installed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import fleqc
import fleqc.interop as interop
from fleqc.cli import main
from fleqc.errors import ErrorCode, FleqError
from tests.test_executor import fleqc_imports

PACKAGE = Path(interop.__file__).parent
SAMPLES = PACKAGE.parent.parent / "samples"
# The modules that build the exported models see weights and matrices only (like fleqc.transformer).
GENERIC = ("torch_module.py", "onnx_export.py", "lens.py")
ALLOWED = ("fleqc.transformer", "fleqc.errors", "fleqc.interop")


def test_exported_models_know_nothing_of_the_instruction_sets():
    for name in GENERIC:
        for module in fleqc_imports(PACKAGE / name):
            assert any(module == a or module.startswith(a + ".") for a in ALLOWED), (name, module)


@pytest.fixture
def nothing_installed(monkeypatch):
    monkeypatch.setattr(interop, "EXTRAS", {k: ("fleqc_no_such_module",) for k in interop.EXTRAS})


@pytest.mark.parametrize("backend,extra", [("torch", "torch"), ("onnx", "onnx")])
def test_a_missing_extra_is_a_clear_error(nothing_installed, backend, extra):
    assert interop.missing(extra) == ["fleqc_no_such_module"]
    with pytest.raises(FleqError, match=rf"pip install 'fleqc\[{extra}\]'") as error:
        fleqc.run(fleqc.build(str(SAMPLES / "gcd.fleq")), backend=backend)
    assert error.value.code == ErrorCode.BAD_CONFIG
    out = CliRunner().invoke(main, ["run", str(SAMPLES / "gcd.fleq"), "--backend", backend])
    assert out.exit_code == 1 and f"fleqc[{extra}]" in out.output


def test_export_without_extras(nothing_installed, tmp_path):
    out = CliRunner().invoke(main, ["export", "--onnx", str(tmp_path / "m.onnx"), "--columns", "16"])
    assert out.exit_code == 1 and "fleqc[onnx]" in out.output and not (tmp_path / "m.onnx").exists()
    out = CliRunner().invoke(main, ["weights", "--columns", "16", "-o", str(tmp_path / "m.safetensors")])
    assert out.exit_code == 1 and "fleqc[safetensors]" in out.output


def test_usage_errors():
    runner = CliRunner()
    assert runner.invoke(main, ["run", str(SAMPLES / "gcd.fleq"), "--device", "cpu"]).exit_code == 2
    assert runner.invoke(main, ["export", "--loop", "--safetensors", "x.safetensors"]).exit_code == 2
    with pytest.raises(FleqError, match="unknown backend"):
        fleqc.run(fleqc.build(str(SAMPLES / "gcd.fleq")), backend="jax")


def test_numpy_is_the_transformer_backend():
    card = fleqc.build(str(SAMPLES / "gcd.fleq"))
    assert fleqc.run(card, backend="numpy") == fleqc.run(card, backend="transformer")
