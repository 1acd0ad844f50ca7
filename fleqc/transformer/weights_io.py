"""A LoopedTransformer on disk: one .npz format (allow_pickle=False) of its nonzeros and row labels,
for the weights file (``fleqc weights -o``, ``fleqc run --weights``) and for the built weights kept
between processes (:func:`cached_build`).

Entries: ``layer{i}.{query|key|value|output}.at`` (int64 flat positions of the nonzero bit patterns,
-0.0 included) and ``.val`` for attention layers; ``layer{i}.{w1|w2}.ptr|idx|val`` (compressed rows)
and ``layer{i}.b1|b2`` for feed-forward layers; and ``meta``: a JSON string with the format tag, the
layers (kind, head names or name, shapes), the row labels, the health-checked rows, the builder's
metadata (machine configuration, fault rows) and a SHA-256 digest of every array and of every other
metadata field: a weight or a field changed on disk is refused on load (the health check cannot see a
perturbed weight that only moves real values, as in the FLEQ machine's arithmetic, nor an emptied
list of fault rows). The metadata and the nonzeros' positions are checked (types, ranges, sorted
positions inside their shapes) before anything is built. A matrix may also be stored dense, as
``layer{i}.{param}``: version 3 files, and the tensors of a .safetensors file, which are read through
the same :func:`model_from_meta`. The FLEQ machine's file takes a few MB of memory to read, not the
1 GB of its dense matrices.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Callable

import numpy as np

from fleqc.errors import ErrorCode, FleqError
from fleqc.npzfile import json_entry, memory_limit, read_json_entry, read_npz, write_npz_atomically
from fleqc.safe_io import cache_folder
from fleqc.schema import SchemaError, array, field, integers, string
from fleqc.transformer.layers import AttentionLayer, FeedForwardLayer, LoopedTransformer, SparseMatrix

WEIGHTS_FORMAT = "fleqc-weights"
WEIGHTS_VERSION = 4  # 4: the nonzeros only; 3: every matrix dense (still read)
_READ_VERSIONS = (3, 4)
_ATTENTION = ("query", "key", "value", "output")
_FEED_FORWARD = ("w1", "b1", "w2", "b2")


def save_weights(model: LoopedTransformer, path: str | os.PathLike, inputs=(), *, extra: dict | None = None,
                 compressed: bool = True) -> None:
    """Write ``model`` to ``path`` atomically (never over one of ``inputs``, a link or a non-regular
    file: fleqc.safe_io); ``extra`` adds metadata fields (covered by the digest)."""
    arrays, layers = nonzero_arrays(model)
    meta = {
        "format": WEIGHTS_FORMAT,
        "version": WEIGHTS_VERSION,
        "layers": layers,
        "row_labels": list(model.row_labels),
        "ternary_rows": list(model.ternary_rows),
        "metadata": model.metadata,
        **(extra or {}),
    }
    meta["sha256"] = digest(arrays, meta)
    write_npz_atomically(path, {"meta": json_entry(meta), **arrays}, inputs, compressed=compressed)


def nonzero_arrays(model: LoopedTransformer) -> tuple[dict[str, np.ndarray], list[dict]]:
    """The entries of a weights file for ``model`` and the layers' descriptions for its metadata."""
    arrays: dict[str, np.ndarray] = {}
    layers = []
    for i, layer in enumerate(model.layers):
        if isinstance(layer, AttentionLayer):
            shapes = {}
            for p in _ATTENTION:
                a = np.ascontiguousarray(getattr(layer, p), dtype=np.float64).reshape(-1)
                at = np.flatnonzero(a.view(np.uint64))  # every nonzero bit pattern: -0.0 too
                arrays[f"layer{i}.{p}.at"], arrays[f"layer{i}.{p}.val"] = at.astype(np.int64), a[at]
                shapes[p] = list(getattr(layer, p).shape)
            layers.append({"kind": "attention", "heads": list(layer.head_names), "shapes": shapes})
        else:
            for p in ("w1", "w2"):
                m = getattr(layer, f"{p}_sparse")
                arrays[f"layer{i}.{p}.ptr"], arrays[f"layer{i}.{p}.idx"] = m.ptr.astype(np.int64), m.idx.astype(np.int64)
                arrays[f"layer{i}.{p}.val"] = np.ascontiguousarray(m.val, dtype=np.float64)
            arrays[f"layer{i}.b1"], arrays[f"layer{i}.b2"] = layer.b1, layer.b2
            layers.append({"kind": "feed_forward", "name": layer.name, "shape": [layer.hidden, layer.width]})
    return arrays, layers


def digest(arrays: dict[str, np.ndarray], meta: dict) -> str:
    """SHA-256 over the arrays' names, shapes and bytes (float64; integer arrays as int64, their
    dtype named), in name order, then over every metadata field but the digest itself (as canonical
    JSON: sorted keys, no spaces)."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.asarray(arrays[name])
        if a.dtype.kind in "iu":
            a = np.ascontiguousarray(a, dtype=np.int64)
            h.update(f"{name}:{a.shape}:int64;".encode())
        else:
            a = np.ascontiguousarray(a, dtype=np.float64)
            h.update(f"{name}:{a.shape};".encode())
        h.update(a.tobytes())
    fields = {key: value for key, value in meta.items() if key != "sha256"}
    h.update(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode())
    return h.hexdigest()


def load_weights(path: str | os.PathLike) -> LoopedTransformer:
    return _load(path)[1]


def _load(path: str | os.PathLike) -> tuple[dict, LoopedTransformer]:
    arrays = read_npz(path, ("meta",), ErrorCode.BAD_WEIGHTS, "weights file", integers=True)

    def bad(why: str) -> FleqError:
        return FleqError(ErrorCode.BAD_WEIGHTS, f"{path}: {why}")

    meta = read_json_entry(arrays["meta"], WEIGHTS_FORMAT, _READ_VERSIONS, ErrorCode.BAD_WEIGHTS, str(path))
    stored = {name: a for name, a in arrays.items() if name != "meta"}
    for name, a in stored.items():
        if a.dtype != (np.int64 if name.endswith((".at", ".ptr", ".idx")) else np.float64):
            raise bad(f"entry {name!r} has dtype {a.dtype}")
    if meta.get("sha256") != digest(stored, meta):
        raise bad("its arrays or metadata do not match their SHA-256 digest (the file was changed or corrupted)")
    try:
        model = model_from_meta(meta, arrays)
    except SchemaError as exc:
        raise bad(f"metadata: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise bad(f"malformed weights ({type(exc).__name__}: {exc})") from None
    return meta, model


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
    where = f"layers[{i}]"
    kind = field(spec, "kind", where)
    if kind == "attention":
        heads = tuple(string(h, f"{where}.heads[{k}]", 256) for k, h in
                      enumerate(array(field(spec, "heads", where), f"{where}.heads", max_length=4096)))
        parts = [_matrix(arrays, f"layer{i}.{p}", spec, where, p) for p in _ATTENTION]
        return AttentionLayer(*parts, head_names=heads)
    if kind == "feed_forward":
        name = string(field(spec, "name", where), f"{where}.name", 256)
        b1, b2 = _finite(arrays[f"layer{i}.b1"], f"layer{i}.b1"), _finite(arrays[f"layer{i}.b2"], f"layer{i}.b2")
        if f"layer{i}.w1" in arrays:  # stored dense
            w1, w2 = (_finite(arrays[f"layer{i}.{p}"], f"layer{i}.{p}") for p in ("w1", "w2"))
        else:
            h, d = integers(field(spec, "shape", where), f"{where}.shape", 1, 1 << 31, length=2)
            w1, w2 = (_rows(arrays, f"layer{i}.{p}", shape) for p, shape in (("w1", (h, d)), ("w2", (d, h))))
        return FeedForwardLayer(w1, b1, w2, b2, name=name)
    raise SchemaError(f"{where}.kind is {kind!r}; expected 'attention' or 'feed_forward'")


def _dense_shape(value, path: str) -> tuple[int, ...]:
    shape = tuple(integers(value, path, 1, 1 << 40, length=3))
    if math.prod(shape) * 8 > memory_limit():
        raise SchemaError(f"{path} {list(shape)} is larger than the memory fleqc may use")
    return shape


def _finite(a: np.ndarray, name: str) -> np.ndarray:
    if a.dtype != np.float64 or not np.isfinite(a).all():
        raise SchemaError(f"{name} is not a finite float64 array")
    return a


def _matrix(arrays: dict[str, np.ndarray], name: str, spec: dict, where: str, param: str) -> np.ndarray:
    """An attention matrix: stored dense, or by the flat positions and values of its nonzeros (its
    shape in the layer's ``shapes``)."""
    if name in arrays:  # stored dense
        return _finite(arrays[name], name)
    size_shape = _dense_shape(field(field(spec, "shapes", where), param, f"{where}.shapes"), f"{where}.shapes.{param}")
    at, val = arrays[f"{name}.at"], _finite(arrays[f"{name}.val"], f"{name}.val")
    if at.ndim != 1 or val.shape != at.shape or (at.size and (at[0] < 0 or at[-1] >= math.prod(size_shape)
                                                               or not np.all(np.diff(at) > 0))):
        raise SchemaError(f"{name}: the positions of its nonzeros are not sorted positions inside {list(size_shape)}")
    out = np.zeros(size_shape)
    out.reshape(-1)[at] = val
    return out


def _rows(arrays: dict[str, np.ndarray], name: str, shape: tuple[int, int]) -> SparseMatrix:
    """A feed-forward matrix by compressed rows, checked: row pointers from 0 to the entry count,
    columns inside the width and increasing within each row, values finite."""
    ptr, idx, val = arrays[f"{name}.ptr"], arrays[f"{name}.idx"], _finite(arrays[f"{name}.val"], f"{name}.val")
    n = idx.size
    ok = (ptr.shape == (shape[0] + 1,) and idx.ndim == 1 and val.shape == idx.shape and ptr[0] == 0
          and ptr[-1] == n and bool(np.all(np.diff(ptr) >= 0)))
    if ok and n:
        ok = idx.min() >= 0 and idx.max() < shape[1]
        within = np.ones(max(n - 1, 0), dtype=bool)
        starts = ptr[1:-1]
        within[starts[(starts > 0) & (starts < n)] - 1] = False
        ok = ok and bool(np.all(np.diff(idx)[within] > 0))
    if not ok:
        raise SchemaError(f"{name}: not a matrix of shape {list(shape)} by compressed rows")
    return SparseMatrix(shape, ptr, idx, val)


# The built weights kept between processes ---------------------------------------------------------

_CACHE_KEY = "cache_key"


def cached_build(config, build: Callable[[], LoopedTransformer]) -> LoopedTransformer:
    """``build()``, the weights of the machine ``config``, kept in the user's cache folder
    (fleqc.safe_io.cache_folder("weights")) and read back by later processes (the FLEQ
    machine builds in about 0.1 s and reads back in a few ms).

    The file is named by a hash of the configuration and of :func:`code_digest` (every source file
    of fleqc and the numpy version): a file written by other code is never read (a stale cache
    cannot be used). It is a weights file (:func:`save_weights`, uncompressed, the key in its
    metadata), written atomically and read back through :func:`load_weights`'s checks; one that
    cannot be read (cut short, corrupted: the digest) is built again and replaced. What comes back
    is exactly what the builder gives: the same arrays, bit for bit, the same labels and metadata
    (tests/test_weights_cache.py)."""
    folder = cache_folder("weights")
    if folder is None:
        return build()
    setting = json.dumps(config.to_dict(), sort_keys=True, separators=(",", ":"))
    key = hashlib.sha256(f"{setting};{code_digest()}".encode()).hexdigest()[:32]
    path = folder / f"{getattr(config, 'kind', 'machine')}-{key}.npz"
    if path.is_file():
        try:
            meta, model = _load(path)
            if meta.get(_CACHE_KEY) == key:
                return model
        except Exception:  # noqa: BLE001 (any unreadable cache file, zipfile.BadZipFile included: build again)
            pass
    model = build()
    try:
        save_weights(model, path, extra={_CACHE_KEY: key}, compressed=False)
    except (OSError, FleqError):  # a folder that cannot be written costs only the build
        pass
    return model


@functools.cache
def code_digest() -> str:
    """SHA-256 of every source file of the fleqc package (names and bytes) and numpy's version:
    any change of the code that builds weights (or of anything else) changes it."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256(f"{WEIGHTS_FORMAT}{WEIGHTS_VERSION};numpy {np.__version__};".encode())
    for path in sorted(root.rglob("*.py")):
        h.update(f"{path.relative_to(root).as_posix()}\0".encode())
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()
