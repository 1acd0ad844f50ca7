"""Save and load a LoopedTransformer as an .npz (allow_pickle=False), with its row labels.

Entries: ``layer{i}.query|key|value|output`` for attention layers, ``layer{i}.w1|b1|w2|b2`` for
feed-forward layers, and ``meta``: a JSON string with the format tag, the layer kinds and names,
the row labels, the health-checked rows, the builder's metadata (machine configuration, fault rows)
and a SHA-256 digest of every array and of every other metadata field: a weight or a field changed
on disk is refused on load (the health check cannot see a perturbed weight that only moves real
values, as in the FLEQ machine's arithmetic, nor an emptied list of fault rows). The metadata is
also checked field by field (types, ranges, rows inside the width) before it is used.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np

from fleqc.errors import ErrorCode, FleqError
from fleqc.npzfile import json_entry, read_json_entry, read_npz, write_npz_atomically
from fleqc.safe_io import cache_folder
from fleqc.schema import SchemaError, array, field, integers, string
from fleqc.transformer.layers import AttentionLayer, FeedForwardLayer, LoopedTransformer, SparseMatrix

WEIGHTS_FORMAT = "fleqc-weights"
WEIGHTS_VERSION = 3  # 3: the digest covers the metadata
_ATTENTION = ("query", "key", "value", "output")
_FEED_FORWARD = ("w1", "b1", "w2", "b2")


def save_weights(model: LoopedTransformer, path: str | os.PathLike, inputs=()) -> None:
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
        "format": WEIGHTS_FORMAT,
        "version": WEIGHTS_VERSION,
        "layers": layers,
        "row_labels": list(model.row_labels),
        "ternary_rows": list(model.ternary_rows),
        "metadata": model.metadata,
    }
    meta["sha256"] = digest(arrays, meta)
    # compressed: the weight matrices are mostly exact zeros (FLEQ n = 128: 168 MB raw, 0.25 MB deflated)
    write_npz_atomically(path, {"meta": json_entry(meta), **arrays}, inputs, compressed=True)


def digest(arrays: dict[str, np.ndarray], meta: dict) -> str:
    """SHA-256 over the arrays' names, shapes and float64 bytes, in name order, then over every
    metadata field but the digest itself (as canonical JSON: sorted keys, no spaces)."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name], dtype=np.float64)
        h.update(f"{name}:{a.shape};".encode())
        h.update(a.tobytes())
    fields = {key: value for key, value in meta.items() if key != "sha256"}
    h.update(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode())
    return h.hexdigest()


def load_weights(path: str | os.PathLike) -> LoopedTransformer:
    arrays = read_npz(path, ("meta",), ErrorCode.BAD_WEIGHTS, "weights file")

    def bad(why: str) -> FleqError:
        return FleqError(ErrorCode.BAD_WEIGHTS, f"{path}: {why}")

    meta = read_json_entry(arrays["meta"], WEIGHTS_FORMAT, WEIGHTS_VERSION, ErrorCode.BAD_WEIGHTS, str(path))
    stored = {name: a for name, a in arrays.items() if name != "meta"}
    for name, a in stored.items():
        if a.dtype != np.float64:
            raise bad(f"entry {name!r} has dtype {a.dtype}; weights are float64")
    if meta.get("sha256") != digest(stored, meta):
        raise bad("its arrays or metadata do not match their SHA-256 digest (the file was changed or corrupted)")
    try:
        model = model_from_meta(meta, arrays)
    except SchemaError as exc:
        raise bad(f"metadata: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise bad(f"malformed weights ({type(exc).__name__}: {exc})") from None
    for i, layer in enumerate(model.layers):
        params = _ATTENTION if isinstance(layer, AttentionLayer) else _FEED_FORWARD
        for p in params:
            a = getattr(layer, p)
            if a.dtype != np.float64 or not np.isfinite(a).all():
                raise bad(f"layer {i} {p} is not a finite float64 array")
    return model


def model_from_meta(meta: dict, arrays: dict[str, np.ndarray]) -> LoopedTransformer:
    """The machine that ``meta`` (``layers``, ``row_labels``, ``ternary_rows``, ``metadata``) and the
    arrays ``layer{i}.{param}`` describe, every field checked (SchemaError, KeyError for a missing
    array): the one reading of a weights file's metadata, for .npz and .safetensors alike."""
    layers = tuple(_layer(i, spec, arrays) for i, spec in enumerate(array(field(meta, "layers", ""), "layers",
                                                                          max_length=256)))
    labels = tuple(string(x, f"row_labels[{i}]", 256) for i, x in
                   enumerate(array(field(meta, "row_labels", ""), "row_labels", max_length=1 << 20)))
    ternary = tuple(integers(field(meta, "ternary_rows", ""), "ternary_rows", 0, len(labels) - 1))
    metadata = field(meta, "metadata", "")
    if not isinstance(metadata, dict):
        raise SchemaError("metadata must be an object")
    if "machine" in metadata and not isinstance(metadata["machine"], dict):
        raise SchemaError("metadata.machine must be an object (the machine's configuration)")
    if not layers:
        raise SchemaError("layers is empty: a machine has at least one layer")
    return LoopedTransformer(layers, labels, ternary, metadata)


def _layer(i: int, spec: dict, arrays: dict[str, np.ndarray]):
    kind = field(spec, "kind", f"layers[{i}]")
    if kind == "attention":
        heads = tuple(string(h, f"layers[{i}].heads[{k}]", 256) for k, h in
                      enumerate(array(field(spec, "heads", f"layers[{i}]"), f"layers[{i}].heads", max_length=4096)))
        return AttentionLayer(*(arrays[f"layer{i}.{p}"] for p in _ATTENTION), head_names=heads)
    if kind == "feed_forward":
        name = string(field(spec, "name", f"layers[{i}]"), f"layers[{i}].name", 256)
        return FeedForwardLayer(*(arrays[f"layer{i}.{p}"] for p in _FEED_FORWARD), name=name)
    raise SchemaError(f"layers[{i}].kind is {kind!r}; expected 'attention' or 'feed_forward'")


# The built weights kept between processes ---------------------------------------------------------

CACHE_FORMAT = "fleqc-weights-cache"
CACHE_VERSION = 1


def cached_build(config, build: Callable[[], LoopedTransformer]) -> LoopedTransformer:
    """``build()``, the weights of the machine ``config``, kept in the user's cache folder
    (fleqc.safe_io.cache_folder("weights")) and read back by later processes (the FLEQ
    machine builds in about 0.1 s and reads back in a few ms).

    The file is named by a hash of the configuration and of :func:`code_digest` (every source file
    of fleqc and the numpy version): a file written by other code is never read (a stale cache
    cannot be used). It holds the nonzeros only (attention by flat index, feed-forward by rows), is
    written atomically (fleqc.safe_io) and read without pickles; one that cannot be read (cut
    short, corrupted: the zip's CRC) is built again and replaced. What comes back is exactly what
    the builder gives: the same arrays, bit for bit, the same labels and metadata
    (tests/test_weights_cache.py)."""
    folder = cache_folder("weights")
    if folder is None:
        return build()
    setting = json.dumps(config.to_dict(), sort_keys=True, separators=(",", ":"))
    key = hashlib.sha256(f"{setting};{code_digest()}".encode()).hexdigest()[:32]
    path = folder / f"{getattr(config, 'kind', 'machine')}-{key}.npz"
    if path.is_file():
        try:
            return _read_cached(path, key)
        except Exception:  # noqa: BLE001 (any unreadable cache file, zipfile.BadZipFile included: build again)
            pass
    model = build()
    try:
        _write_cached(model, path, key)
    except (OSError, FleqError):  # a folder that cannot be written costs only the build
        pass
    return model


@functools.cache
def code_digest() -> str:
    """SHA-256 of every source file of the fleqc package (names and bytes) and numpy's version:
    any change of the code that builds weights (or of anything else) changes it."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256(f"{CACHE_FORMAT}{CACHE_VERSION};numpy {np.__version__};".encode())
    for path in sorted(root.rglob("*.py")):
        h.update(f"{path.relative_to(root).as_posix()}\0".encode())
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def _write_cached(model: LoopedTransformer, path: Path, key: str) -> None:
    arrays: dict[str, np.ndarray] = {}
    layers = []
    for i, layer in enumerate(model.layers):
        if isinstance(layer, AttentionLayer):
            shapes = {}
            for p in _ATTENTION:
                a = np.ascontiguousarray(getattr(layer, p), dtype=np.float64)
                flat = np.flatnonzero(a.reshape(-1).view(np.uint64))  # every nonzero bit pattern: -0.0 too
                arrays[f"layer{i}.{p}.at"], arrays[f"layer{i}.{p}.val"] = flat.astype(np.int64), a.reshape(-1)[flat]
                shapes[p] = list(a.shape)
            layers.append({"kind": "attention", "heads": list(layer.head_names), "shapes": shapes})
        else:
            for p in ("w1", "w2"):
                m = getattr(layer, f"{p}_sparse")
                arrays[f"layer{i}.{p}.ptr"], arrays[f"layer{i}.{p}.idx"], arrays[f"layer{i}.{p}.val"] = m.ptr, m.idx, m.val
            arrays[f"layer{i}.b1"], arrays[f"layer{i}.b2"] = layer.b1, layer.b2
            layers.append({"kind": "feed_forward", "name": layer.name, "shape": [layer.hidden, layer.width],
                           "dense": layer.is_dense})
    meta = {"format": CACHE_FORMAT, "version": CACHE_VERSION, "key": key, "layers": layers,
            "row_labels": list(model.row_labels), "ternary_rows": list(model.ternary_rows),
            "metadata": model.metadata}
    arrays["meta"] = np.array(json.dumps(meta))
    write_npz_atomically(path, arrays)


def _read_cached(path: Path, key: str) -> LoopedTransformer:
    with np.load(path, allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}  # every entry read: the zip checks its CRC
    meta = json.loads(str(arrays["meta"]))
    if meta.get("format") != CACHE_FORMAT or meta.get("version") != CACHE_VERSION or meta.get("key") != key:
        raise ValueError("another cache file")
    layers = []
    for i, spec in enumerate(meta["layers"]):
        if spec["kind"] == "attention":
            parts = []
            for p in _ATTENTION:
                a = np.zeros(tuple(spec["shapes"][p]))
                a.reshape(-1)[arrays[f"layer{i}.{p}.at"]] = arrays[f"layer{i}.{p}.val"]
                parts.append(a)
            layers.append(AttentionLayer(*parts, head_names=tuple(spec["heads"])))
        else:
            h, d = spec["shape"]
            w1, w2 = (SparseMatrix(shape, arrays[f"layer{i}.{p}.ptr"], arrays[f"layer{i}.{p}.idx"],
                                   arrays[f"layer{i}.{p}.val"]) for p, shape in (("w1", (h, d)), ("w2", (d, h))))
            layer = FeedForwardLayer(w1, arrays[f"layer{i}.b1"], w2, arrays[f"layer{i}.b2"], name=spec["name"])
            if spec["dense"]:
                layer.w1, layer.w2  # noqa: B018 (the builder gave them dense: so does the cache)
            layers.append(layer)
    return LoopedTransformer(tuple(layers), tuple(meta["row_labels"]), tuple(meta["ternary_rows"]), meta["metadata"])
