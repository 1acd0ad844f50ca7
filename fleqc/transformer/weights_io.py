"""Save and load a LoopedTransformer as an .npz (allow_pickle=False), with its row labels.

Entries: ``layer{i}.query|key|value|output`` for attention layers, ``layer{i}.w1|b1|w2|b2`` for
feed-forward layers, and ``meta``: a JSON string with the format tag, the layer kinds and names,
the row labels, the health-checked rows, the builder's metadata (machine configuration) and a
SHA-256 digest of every array: a weight changed on disk is refused on load (the health check cannot
see a perturbed weight that only moves real values, as in the FLEQ machine's arithmetic).
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from fleqc.errors import ErrorCode, FleqError
from fleqc.npzfile import json_entry, read_json_entry, read_npz, write_npz_atomically
from fleqc.transformer.layers import AttentionLayer, FeedForwardLayer, LoopedTransformer

WEIGHTS_FORMAT = "fleqc-weights"
WEIGHTS_VERSION = 2
_ATTENTION = ("query", "key", "value", "output")
_FEED_FORWARD = ("w1", "b1", "w2", "b2")


def save_weights(model: LoopedTransformer, path: str | os.PathLike) -> None:
    arrays: dict[str, np.ndarray] = {}
    layers = []
    for i, layer in enumerate(model.layers):
        if isinstance(layer, AttentionLayer):
            layers.append({"kind": "attention", "heads": list(layer.head_names)})
            arrays.update({f"layer{i}.{p}": getattr(layer, p) for p in _ATTENTION})
        else:
            layers.append({"kind": "feed_forward", "name": layer.name})
            arrays.update({f"layer{i}.{p}": getattr(layer, p) for p in _FEED_FORWARD})
    meta = {
        "sha256": digest(arrays),
        "format": WEIGHTS_FORMAT,
        "version": WEIGHTS_VERSION,
        "layers": layers,
        "row_labels": list(model.row_labels),
        "ternary_rows": list(model.ternary_rows),
        "metadata": model.metadata,
    }
    write_npz_atomically(path, meta=json_entry(meta), **arrays)


def digest(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over the arrays' names, shapes and float64 bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name], dtype=np.float64)
        h.update(f"{name}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def load_weights(path: str | os.PathLike) -> LoopedTransformer:
    arrays = read_npz(path, ("meta",), ErrorCode.BAD_WEIGHTS, "weights file")

    def bad(why: str) -> FleqError:
        return FleqError(ErrorCode.BAD_WEIGHTS, f"{path}: {why}")

    meta = read_json_entry(arrays["meta"], WEIGHTS_FORMAT, WEIGHTS_VERSION, ErrorCode.BAD_WEIGHTS, str(path))
    try:
        layers = []
        for i, spec in enumerate(meta["layers"]):
            if spec["kind"] == "attention":
                params = [arrays[f"layer{i}.{p}"] for p in _ATTENTION]
                layers.append(AttentionLayer(*params, head_names=tuple(spec["heads"])))
            elif spec["kind"] == "feed_forward":
                params = [arrays[f"layer{i}.{p}"] for p in _FEED_FORWARD]
                layers.append(FeedForwardLayer(*params, name=str(spec["name"])))
            else:
                raise ValueError(f"unknown layer kind {spec['kind']!r}")
        model = LoopedTransformer(
            tuple(layers), tuple(meta["row_labels"]), tuple(int(r) for r in meta["ternary_rows"]), meta["metadata"]
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise bad(f"malformed weights ({type(exc).__name__}: {exc})") from None
    stored = {name: a for name, a in arrays.items() if name != "meta"}
    if meta.get("sha256") != digest(stored):
        raise bad("its arrays do not match their SHA-256 digest (the file was changed or corrupted)")
    for i, layer in enumerate(model.layers):
        params = _ATTENTION if isinstance(layer, AttentionLayer) else _FEED_FORWARD
        for p in params:
            a = getattr(layer, p)
            if a.dtype != np.float64 or not np.isfinite(a).all():
                raise bad(f"layer {i} {p} is not a finite float64 array")
    return model
