"""Reading and writing .npz files safely: never unpickle, never leave a half-written file."""

from __future__ import annotations

import json
import math
import os
import stat
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np

from fleqc.errors import ErrorCode, FleqError
from fleqc.safe_io import write_atomically

if TYPE_CHECKING:  # the annotations' zipfile; the module is imported where an archive is read
    import zipfile


def write_npz_atomically(path: str | os.PathLike, arrays: dict[str, np.ndarray],
                         inputs: Iterable[str | os.PathLike] = (), compressed: bool = False) -> None:
    """Write an .npz (deflated if ``compressed``) atomically, never over a non-regular file, a link
    or one of ``inputs`` (fleqc.safe_io)."""
    save = np.savez_compressed if compressed else np.savez
    write_atomically(path, lambda f: save(f, **arrays), inputs)


# Entries fleqc writes: float64 arrays, the JSON metadata string and (weights files) the int64
# positions of nonzeros; nothing else is read.
_DTYPE_KINDS = "fU"
_MAX_HEADER = 10_000  # bytes of an .npy header (numpy's own default limit)
_MAX_ENTRIES = 4096  # a weights file stores up to 8 entries a layer
_MAX_TEXT = 256 << 20  # a metadata entry: a card's symbols at n = 65,536 take a few MB


def read_npz(path: str | os.PathLike, names: tuple[str, ...], code: ErrorCode, what: str,
             expect: Optional[Callable[[dict[str, np.ndarray], str], Optional[tuple[int, ...]]]] = None,
             integers: bool = False) -> dict[str, np.ndarray]:
    """Load the named arrays of an .npz without ever unpickling, turning every failure into FleqError.

    Nothing is allocated before it is checked: the file must be a regular file holding a zip
    archive; every entry's .npy header (at most 10 kB) must declare a float or string dtype and a
    shape whose size is exactly the entry's stored size, and the arrays together must fit in
    :func:`memory_limit`. So a renamed .npy, a zip whose header claims a (200000, 200000) array
    and a deflate bomb are refused up front.

    With ``expect``, only the ``names`` are read, in their order, and ``expect(read_so_far, name)``
    gives the shape the entry must declare (None: any), from what was read before it (a card's X
    from its metadata): an entry whose header claims more than the file's own metadata needs is
    refused before anything is inflated, whatever memory there is. With ``integers``, entries of
    integer dtype are read too (a weights file's positions of nonzeros).
    """
    kinds = _DTYPE_KINDS + ("i" if integers else "")
    path = Path(path)

    def bad(why: str) -> FleqError:
        return FleqError(code, f"{path}: {why}")

    _check_regular_file(path)
    with open(path, "rb") as f:
        magic = f.read(8)
    if magic.startswith(b"\x93NUMPY"):
        raise bad(f"a bare .npy array, not an .npz archive; a fleqc {what} is an .npz")
    if not magic.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        raise bad(f"not an .npz archive (a zip of .npy arrays); a fleqc {what} is one")
    import zipfile  # here, not at the top: only reading a card or weights file needs it (start-up)

    try:
        with zipfile.ZipFile(path) as archive:
            entries = _entries(archive, bad)
            missing = [n for n in names if n not in entries]
            if missing:
                raise bad(_missing(archive, entries, what, missing))
            if expect is None:
                return {name: _read_entry(archive, info, bad, kinds=kinds) for name, info in entries.items()}
            for name, info in entries.items():  # every header first, in the file's order (nothing inflated)
                if name in names:
                    _read_entry(archive, info, bad, header_only=True, kinds=kinds)
            read: dict[str, np.ndarray] = {}
            for name in names:
                read[name] = _read_entry(archive, entries[name], bad, expect(read, name), kinds=kinds)
            return read
    except FleqError:
        raise
    except (OSError, EOFError, zipfile.BadZipFile, KeyError, NotImplementedError, RuntimeError, zlib.error,
            ValueError) as exc:
        # NotImplementedError: a corrupted header claiming an unknown zip version or compression;
        # RuntimeError: "encrypted"; zlib.error: a corrupted compressed entry
        raise bad(f"not a readable .npz {what} ({type(exc).__name__}: {exc})") from None


def _check_regular_file(path: Path) -> None:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FleqError(ErrorCode.FILE_NOT_FOUND, f"{path}: no such file") from None
    except OSError as exc:
        raise FleqError(ErrorCode.FILE_NOT_FOUND, f"{path}: cannot read it ({exc.strerror})") from None
    if stat.S_ISDIR(mode):
        raise FleqError(ErrorCode.FILE_NOT_FOUND, f"{path}: is a directory")
    if not stat.S_ISREG(mode):
        raise FleqError(ErrorCode.FILE_NOT_FOUND, f"{path}: not a regular file (a device, pipe or socket)")


def _entries(archive: zipfile.ZipFile, bad) -> dict[str, zipfile.ZipInfo]:
    infos = archive.infolist()
    if len(infos) > _MAX_ENTRIES:
        raise bad(f"holds {len(infos)} entries; a fleqc file holds at most {_MAX_ENTRIES}")
    total = sum(info.file_size for info in infos)
    limit = memory_limit()
    if total > limit:
        raise bad(f"its arrays take {_gib(total)} once unpacked, more than the {_gib(limit)} fleqc allows "
                  "(FLEQC_MEMORY_LIMIT, or the memory available)")
    entries = {}
    for info in infos:
        if not info.filename.endswith(".npy"):
            raise bad(f"holds {info.filename!r}, which is not an .npy array")
        entries[info.filename[:-4]] = info
    return entries


def _missing(archive: zipfile.ZipFile, entries: dict, what: str, missing: list[str]) -> str:
    """Why the named entries are missing: another kind of fleqc file, or a foreign archive."""
    if "meta" in entries and entries["meta"].file_size <= 1 << 20:
        try:
            tag = json.loads(str(_read_entry(archive, entries["meta"], ValueError)[()])).get("format")
        except (ValueError, AttributeError, TypeError):
            tag = None
        if tag == "fleqc-weights":
            return f"a fleqc weights file, not a {what} (weights go to `fleqc run --weights`)"
        if tag == "fleqc-card":
            return f"a fleqc punch card, not a {what}"
    return f"not a fleqc {what}: missing {', '.join(missing)}"


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, bad,
                expected: Optional[tuple[int, ...]] = None, header_only: bool = False,
                kinds: str = _DTYPE_KINDS) -> Optional[np.ndarray]:
    """One .npy entry, its header checked against the entry's stored size before reading."""
    with archive.open(info) as f:
        try:
            version = np.lib.format.read_magic(f)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = reader(f, max_header_size=_MAX_HEADER)
        except Exception as exc:  # numpy raises ValueError, SyntaxError, tokenize.TokenError, ... on a bad header
            raise bad(f"entry {info.filename!r} has a malformed .npy header ({type(exc).__name__}: {exc})") from None
        if dtype.hasobject:
            raise bad("holds pickled Python objects, which fleqc never loads")
        if dtype.kind not in kinds or dtype.fields is not None:
            raise bad(f"entry {info.filename!r} has dtype {dtype}; fleqc files hold float64 arrays and strings")
        if expected is not None and tuple(shape) != tuple(expected):
            raise bad(f"entry {info.filename!r} declares shape {tuple(shape)}; its own metadata needs "
                      f"{tuple(expected)}")
        if dtype.kind == "U" and shape == () and info.file_size > _MAX_TEXT:
            raise bad(f"entry {info.filename!r} is a text of {info.file_size:,} bytes, more than fleqc writes")
        size = math.prod(shape) * dtype.itemsize
        if size + f.tell() != info.file_size:
            raise bad(f"entry {info.filename!r} declares shape {shape} ({size:,} bytes) but stores "
                      f"{info.file_size - f.tell():,} bytes")
        if header_only:
            return None
        buffer = bytearray(size)
        if f.readinto(buffer) != size:
            raise bad(f"entry {info.filename!r} is truncated")
    array = np.frombuffer(buffer, dtype=dtype)
    return array.reshape(shape[::-1]).T if fortran else array.reshape(shape)


def memory_limit() -> int:
    """Bytes fleqc may allocate for one file or run: FLEQC_MEMORY_LIMIT (bytes) if set, else the
    memory available now (MemAvailable in /proc/meminfo; 8 GiB where that cannot be read)."""
    setting = os.environ.get("FLEQC_MEMORY_LIMIT")
    if setting:
        try:
            return int(setting)
        except ValueError:
            raise FleqError(ErrorCode.BAD_CONFIG, f"FLEQC_MEMORY_LIMIT={setting!r} is not a number of bytes") from None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 8 << 30


def _gib(size: int) -> str:
    return f"{size / (1 << 30):.1f} GiB" if size >= 1 << 28 else f"{size / (1 << 20):.1f} MiB"


def json_entry(value: np.ndarray) -> np.ndarray:
    """A JSON-able object as a 0-d unicode array (stored without pickling)."""
    return np.array(json.dumps(value))


def read_json_entry(entry: np.ndarray, fmt: str, version: int | tuple[int, ...], code: ErrorCode,
                    where: str) -> dict:
    """Parse a metadata entry written by :func:`json_entry`; check its format tag and version (one,
    or the versions a reader reads, the newest last)."""
    try:
        meta = json.loads(str(entry[()]))
    except (ValueError, TypeError, IndexError) as exc:
        raise FleqError(code, f"{where}: metadata is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        raise FleqError(code, f"{where}: not a fleqc file of the kind expected (no {fmt!r} format tag)")
    versions = version if isinstance(version, tuple) else (version,)
    if meta.get("version") not in versions:
        raise FleqError(code, f"{where}: {fmt} format version {meta.get('version')!r}; this fleqc reads "
                              f"{' and '.join(map(str, versions))}")
    return meta
