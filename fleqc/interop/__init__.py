"""fleqc machines in engines fleqc did not write: PyTorch, ONNX Runtime, TransformerLens, safetensors.

Every module here maps a :class:`fleqc.transformer.LoopedTransformer` (any machine: the same weights,
nothing that knows SUBLEQ or FLEQ) onto another library's standard layers and file formats:

- :mod:`fleqc.interop.torch_module`: a ``torch.nn.Module`` with float64 parameters computing
  :func:`fleqc.transformer.forward` (softmax and hardmax), batches, and a loop runner (extra ``torch``).
- :mod:`fleqc.interop.onnx_export`: one pass (all layers), or the whole run as an ONNX ``Loop``, as
  an ONNX graph of standard operators, run by ONNX Runtime (extra ``onnx``).
- :mod:`fleqc.interop.lens`: a TransformerLens ``HookedTransformer`` with the same weights, so
  ``run_with_cache`` shows every head's pattern (extra ``lens``).
- :mod:`fleqc.interop.safetensors_io`: weights as .safetensors with the row labels, row blocks and
  machine configuration in the metadata, refused on load if the digest or labels do not match
  (extra ``safetensors``).
- ``fleqc run --backend torch|onnx`` (fleqc.runner): cards looped through those
  engines with the same health checks and decoding as the numpy transformer backend.

Each extra is imported only when used; :func:`missing` names what is absent.
"""

from __future__ import annotations

import importlib.util

from fleqc.errors import ErrorCode, FleqError

EXTRAS = {"torch": ("torch",), "onnx": ("onnx", "onnxruntime"), "lens": ("torch", "transformer_lens"),
          "safetensors": ("safetensors",)}


def missing(extra: str) -> list[str]:
    """The Python modules of ``extra`` that are not installed (empty when it is usable)."""
    return [name for name in EXTRAS[extra] if importlib.util.find_spec(name) is None]


def require(extra: str) -> None:
    """Raise a FleqError naming the pip extra to install when ``extra`` is not usable."""
    absent = missing(extra)
    if absent:
        raise FleqError(ErrorCode.BAD_CONFIG, f"this needs {', '.join(absent)}: pip install 'fleqc[{extra}]'")
