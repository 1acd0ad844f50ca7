"""Machine weights as .safetensors, with the residual stream's labels and the machine in the metadata.

Tensors (float64, row-major), named as in :mod:`fleqc.transformer.weights_io` and in the
``state_dict`` of :class:`fleqc.interop.torch_module.TorchMachine` (``layers.{i}.query`` there,
``layer{i}.query`` here: :func:`torch_state_dict_names` maps one to the other):
``layer{i}.query|key|value|output`` for attention layers, ``layer{i}.w1|b1|w2|b2`` for feed-forward layers.

The header's ``__metadata__`` (string to string, as the format requires) holds JSON strings:

- ``format`` = ``fleqc-safetensors``, ``version``;
- ``layers``: per layer its kind and its head names or name;
- ``row_labels``: one name per row of X (``pc[2]``, ``mem[0]``, ...), so the residual stream can be
  read by name after export; ``row_blocks``: ``[name, first_row, size]`` per named block;
- ``ternary_rows`` (health-checked rows) and ``machine``: the builder's metadata (configuration,
  constants);
- ``sha256``: SHA-256 over the tensors (as :func:`fleqc.transformer.weights_io.digest`) and over
  the other metadata entries above, in canonical JSON.

:func:`load_safetensors` refuses (FleqError ``bad-weights``) a file whose digest does not match (a
changed weight, label or configuration), a foreign or malformed file, and, given
``expected_labels`` (by default the labels of the machine configuration in its metadata, e.g. a
card's ``rows.labels()`` when given), a file whose row labels differ.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Iterable, Optional, Sequence

import numpy as np

from fleqc.errors import ErrorCode, FleqError
from fleqc.machines import config_from_dict, machine_of
from fleqc.safe_io import write_named_atomically
from fleqc.transformer.layers import AttentionLayer, FeedForwardLayer, LoopedTransformer
from fleqc.schema import SchemaError
from fleqc.transformer.weights_io import digest as arrays_digest, model_from_meta

FORMAT = "fleqc-safetensors"
VERSION = 1
_ATTENTION = ("query", "key", "value", "output")
_FEED_FORWARD = ("w1", "b1", "w2", "b2")
_DIGESTED = ("format", "version", "layers", "row_labels", "row_blocks", "ternary_rows", "machine")


def row_blocks(labels: Sequence[str]) -> list[list]:
    """``[name, first_row, size]`` for each run of consecutive rows named ``name`` or ``name[k]``."""
    blocks: list[list] = []
    for row, label in enumerate(labels):
        name = re.sub(r"\[\d+\]$", "", label)
        if blocks and blocks[-1][0] == name and blocks[-1][1] + blocks[-1][2] == row:
            blocks[-1][2] += 1
        else:
            blocks.append([name, row, 1])
    return blocks


def _digest(arrays: dict[str, np.ndarray], meta: dict[str, str]) -> str:
    h = hashlib.sha256(arrays_digest(arrays, {}).encode())  # the arrays alone; the metadata below
    for key in _DIGESTED:
        h.update(f"{key}={meta[key]};".encode())
    return h.hexdigest()


def tensors_and_metadata(model: LoopedTransformer) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    arrays: dict[str, np.ndarray] = {}
    layers = []
    for i, layer in enumerate(model.layers):
        if isinstance(layer, AttentionLayer):
            layers.append({"kind": "attention", "heads": list(layer.head_names)})
            names = _ATTENTION
        else:
            layers.append({"kind": "feed_forward", "name": layer.name})
            names = _FEED_FORWARD
        arrays.update({f"layer{i}.{p}": np.ascontiguousarray(getattr(layer, p), dtype=np.float64) for p in names})
    meta = {
        "format": FORMAT,
        "version": str(VERSION),
        "layers": json.dumps(layers),
        "row_labels": json.dumps(list(model.row_labels)),
        "row_blocks": json.dumps(row_blocks(model.row_labels)),
        "ternary_rows": json.dumps([int(r) for r in model.ternary_rows]),
        "machine": json.dumps(model.metadata, sort_keys=True),
    }
    meta["sha256"] = _digest(arrays, meta)
    return arrays, meta


def save_safetensors(model: LoopedTransformer, path: str | os.PathLike,
                     inputs: Iterable[str | os.PathLike] = ()) -> None:
    """Write ``model`` as .safetensors, under fleqc's output policy (fleqc.safe_io: atomically, only
    over a regular file that is not one of ``inputs``, no temporary file left on SIGTERM)."""
    from safetensors.numpy import save_file

    arrays, meta = tensors_and_metadata(model)
    write_named_atomically(path, lambda tmp: save_file(arrays, tmp, metadata=meta), inputs)


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The header's metadata, without loading any tensor."""
    from safetensors import safe_open

    with safe_open(os.fspath(path), framework="np") as f:
        return dict(f.metadata() or {})


def load_safetensors(path: str | os.PathLike, expected_labels: Optional[Sequence[str]] = None) -> LoopedTransformer:
    """Read a machine written by :func:`save_safetensors`; refuse it unless digest and labels match."""
    from safetensors import SafetensorError, safe_open

    def bad(why: str) -> FleqError:
        return FleqError(ErrorCode.BAD_WEIGHTS, f"{path}: {why}")

    try:
        with safe_open(os.fspath(path), framework="np") as f:
            meta = dict(f.metadata() or {})
            arrays = {name: f.get_tensor(name) for name in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise bad(f"not a readable safetensors file ({exc})") from None
    if meta.get("format") != FORMAT:
        raise bad(f"not a fleqc weights file (format {meta.get('format')!r}, expected {FORMAT!r})")
    if meta.get("version") != str(VERSION):
        raise bad(f"version {meta.get('version')!r}; this fleqc reads version {VERSION}")
    try:
        if meta.get("sha256") != _digest(arrays, meta):
            raise bad("its tensors or metadata do not match their SHA-256 digest (the file was changed or corrupted)")
        # the same reading as a .npz weights file's (fleqc.transformer.weights_io.model_from_meta)
        model = model_from_meta({"layers": json.loads(meta["layers"]), "row_labels": json.loads(meta["row_labels"]),
                                 "ternary_rows": json.loads(meta["ternary_rows"]),
                                 "metadata": json.loads(meta["machine"])}, arrays)
        labels = model.row_labels
        if json.loads(meta["row_blocks"]) != row_blocks(labels):
            raise bad("its row blocks do not match its row labels")
    except SchemaError as exc:
        raise bad(f"metadata: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise bad(f"malformed weights ({type(exc).__name__}: {exc})") from None
    extra = set(arrays) - {f"layer{i}.{p}" for i, layer in enumerate(model.layers)
                           for p in (_ATTENTION if isinstance(layer, AttentionLayer) else _FEED_FORWARD)}
    if extra:
        raise bad(f"unexpected tensors {sorted(extra)}")
    for name, a in arrays.items():
        if a.dtype != np.float64 or not np.isfinite(a).all():
            raise bad(f"{name} is not a finite float64 tensor")
    if expected_labels is None:
        expected_labels = machine_labels(model.metadata)
    if expected_labels is not None and tuple(expected_labels) != labels:
        first = next((i for i, (a, b) in enumerate(zip(labels, expected_labels)) if a != b),
                     min(len(labels), len(expected_labels)))
        raise bad(f"its row labels do not match the machine's ({len(labels)} rows against {len(expected_labels)}; "
                  f"first difference at row {first}: {labels[first] if first < len(labels) else None!r} against "
                  f"{expected_labels[first] if first < len(expected_labels) else None!r})")
    return model


def machine_labels(metadata: dict) -> Optional[tuple[str, ...]]:
    """The row labels of the machine configuration named in ``metadata["machine"]`` (None if none)."""
    if "machine" not in metadata:
        return None
    try:
        config = config_from_dict(metadata["machine"])
    except FleqError:
        return None
    return tuple(machine_of(config).rows(config).labels())


def torch_state_dict_names(name: str) -> str:
    """``layer3.w1`` -> ``layers.3.w1`` (the TorchMachine's parameter name), and back."""
    if m := re.fullmatch(r"layer(\d+)\.(\w+)", name):
        return f"layers.{m.group(1)}.{m.group(2)}"
    if m := re.fullmatch(r"layers\.(\d+)\.(\w+)", name):
        return f"layer{m.group(1)}.{m.group(2)}"
    raise ValueError(f"not a layer parameter name: {name!r}")
