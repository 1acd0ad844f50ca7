"""Reading and writing .npz files safely: never unpickle, never leave a half-written file."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from fleqc.errors import ErrorCode, FleqError



def write_npz_atomically(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Write an uncompressed .npz via a temporary file in the same folder, then rename it."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise FleqError(ErrorCode.FILE_NOT_FOUND, f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_npz(path: str | os.PathLike, names: tuple[str, ...], code: ErrorCode, what: str) -> dict[str, np.ndarray]:
    """Load the named arrays of an .npz with allow_pickle=False, turning every failure into FleqError."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise FleqError(code, f"{path}: not an .npz archive (a bare .npy array?)")
            missing = [n for n in names if n not in data.files]
            if missing:
                raise FleqError(code, f"{path}: not a fleqc {what}: missing {', '.join(missing)}")
            return {n: data[n] for n in data.files}
    except FleqError:
        raise
    except FileNotFoundError:
        raise FleqError(ErrorCode.FILE_NOT_FOUND, f"{path}: no such file") from None
    except IsADirectoryError:
        raise FleqError(ErrorCode.FILE_NOT_FOUND, f"{path}: is a directory") from None
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise FleqError(code, f"{path}: holds pickled Python objects, which fleqc never loads") from None
        raise FleqError(code, f"{path}: not a readable .npz {what} ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError, NotImplementedError, RuntimeError, zlib.error) as exc:
        # NotImplementedError: a corrupted header claiming an unknown zip version or compression;
        # RuntimeError: "encrypted"; zlib.error: a corrupted compressed entry
        raise FleqError(code, f"{path}: not a readable .npz {what} ({type(exc).__name__}: {exc})") from None


def json_entry(value: np.ndarray) -> np.ndarray:
    """A JSON-able object as a 0-d unicode array (stored without pickling)."""
    return np.array(json.dumps(value))


def read_json_entry(entry: np.ndarray, fmt: str, version: int, code: ErrorCode, where: str) -> dict:
    """Parse a metadata entry written by :func:`json_entry`; check its format tag and version."""
    try:
        meta = json.loads(str(entry[()]))
    except (ValueError, TypeError, IndexError) as exc:
        raise FleqError(code, f"{where}: metadata is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        raise FleqError(code, f"{where}: not a fleqc file of the kind expected (no {fmt!r} format tag)")
    if meta.get("version") != version:
        raise FleqError(code, f"{where}: {fmt} format version {meta.get('version')!r}; this fleqc reads {version}")
    return meta
