"""Output paths: fleqc replaces only regular files that are not its own inputs, and atomically.

The policy, for every file fleqc writes (cards, weights, traces, reports, disassembly, pictures,
ONNX and safetensors exports); every writer goes through :func:`atomic_output` (or its two
shorthands, :func:`write_atomically` and :func:`write_named_atomically`):

- an output that exists must be a **regular file**: a device (``/dev/null``), FIFO, socket or
  directory is refused, never replaced;
- an output that is a **symbolic link** is refused (fleqc neither follows a link nor replaces it:
  name the file itself), so a link planted in a shared folder cannot redirect a write;
- an output that is one of the command's **inputs** (the program, its included files, a card
  given as the source) is refused;
- two outputs of one command must be two files (:func:`check_outputs`);
- the outputs are checked before the command does its work (a run, a build), so nothing is
  computed for an output that will be refused, and again just before the rename;
- the file is written to a temporary file in the same folder and renamed over the output, so a
  failed or interrupted write leaves the old file untouched; on an exception, Ctrl-C or SIGTERM
  the temporary file is removed first (SIGTERM then ends the process as it would have);
- the file gets the usual permissions, 0666 less the umask (0644 under the common umask 022),
  whichever library wrote it.

Refusals are ``bad-output`` errors naming the path and the reason. Files fleqc keeps for itself
(the built parsers and weights) go to its folder in the user's cache, :func:`cache_folder`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, BinaryIO, Optional, Sequence

from fleqc.errors import ErrorCode, FleqError

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def check_output(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """``path`` if fleqc may write it (see the module docstring); BAD_OUTPUT otherwise."""
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return path
    except OSError as exc:
        raise FleqError(ErrorCode.BAD_OUTPUT, f"{path}: cannot write it ({exc.strerror})") from None
    if stat.S_ISLNK(mode):
        raise FleqError(ErrorCode.BAD_OUTPUT, f"{path}: is a symbolic link; fleqc does not write through links "
                                              "(name the file itself)")
    if not stat.S_ISREG(mode):
        what = "a directory" if stat.S_ISDIR(mode) else "not a regular file (a device, pipe or socket)"
        raise FleqError(ErrorCode.BAD_OUTPUT, f"{path}: is {what}; fleqc writes only regular files")
    for source in inputs:
        if _same_file(path, source):
            raise FleqError(ErrorCode.BAD_OUTPUT, f"{path}: is an input of this command ({source}); "
                                                  "choose another output file")
    return path


def check_outputs(paths: Sequence[Optional[str | os.PathLike]],
                  inputs: Iterable[str | os.PathLike] = ()) -> list[Optional[Path]]:
    """:func:`check_output` for each of the outputs of one command (``None``: not asked for), which
    must also be distinct files: two outputs named alike would overwrite each other."""
    inputs = tuple(inputs)
    checked = [None if p is None else check_output(p, inputs) for p in paths]
    given = [p for p in checked if p is not None]
    for i, path in enumerate(given):
        for other in given[:i]:
            if os.path.abspath(path) == os.path.abspath(other) or _same_file(path, other):
                raise FleqError(ErrorCode.BAD_OUTPUT, f"{path}: is named for two outputs of this command; "
                                                      "give each output its own file")
    return checked


MAX_SOURCE_BYTES = 16 << 20  # a program or included file (the whole stdlib is about 100 kB)


def read_source(path: str | os.PathLike, limit: int = MAX_SOURCE_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; OSError (with ``strerror`` saying why)
    for a device such as /dev/zero, a FIFO, a directory or a larger file, so nothing reads without
    bound or blocks on a pipe."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            what = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file (a device, pipe or socket)"
            raise OSError(errno.EINVAL, f"it is {what}")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"it is larger than {limit >> 20} MiB, more than any program")
    return data


def _same_file(a: Path, b: str | os.PathLike) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = (), *,
                  text: bool = False) -> Iterator[IO]:
    """A temporary file next to ``path`` to write into (binary, or UTF-8 text if ``text``); when the
    block ends normally it is renamed over ``path``, on an exception, Ctrl-C or SIGTERM it is
    removed. ``path`` is checked with :func:`check_output` before and again just before the rename."""
    with _temporary_next_to(path, tuple(inputs)) as (fd, _):
        with os.fdopen(fd, "w" if text else "wb", **({"encoding": "utf-8"} if text else {})) as f:
            yield f


def write_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], None],
                     inputs: Iterable[str | os.PathLike] = ()) -> None:
    """Call ``write`` on a temporary file next to ``path``, then rename it over ``path``
    (:func:`atomic_output`)."""
    with atomic_output(path, inputs) as f:
        write(f)


def write_named_atomically(path: str | os.PathLike, write: Callable[[str], None],
                           inputs: Iterable[str | os.PathLike] = ()) -> None:
    """For a library that writes only to a file name (safetensors): ``write(name)`` writes the
    temporary file ``name`` next to ``path``, which is then renamed over ``path`` (:func:`atomic_output`)."""
    with _temporary_next_to(path, tuple(inputs)) as (fd, tmp):
        os.close(fd)
        write(tmp)


@contextlib.contextmanager
def _temporary_next_to(path: str | os.PathLike, inputs: tuple) -> Iterator[tuple[int, str]]:
    import tempfile  # here, not at the top: only a command that writes a file needs it (start-up)

    path = check_output(path, inputs)
    folder = path.parent if str(path.parent) else Path(".")
    with _cleanup_on_sigterm():
        tmp = None
        blocked = _block_signals()  # no signal between creating the temporary file and owning it
        try:
            try:
                fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
            except OSError as exc:
                raise FleqError(ErrorCode.FILE_NOT_FOUND, f"cannot write {path}: {exc.strerror}") from None
            finally:
                _unblock_signals(blocked)
            try:
                yield fd, tmp
            except OSError as exc:  # a full disk, a quota: the user's to fix, not a traceback
                if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO):
                    raise FleqError(ErrorCode.BAD_OUTPUT, f"cannot write {path}: {exc.strerror}") from None
                raise
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
            check_output(path, inputs)
            os.replace(tmp, path)
            tmp = None
        finally:
            if tmp is not None:
                blocked = _block_signals()  # a second signal must not cut the clean-up short
                try:
                    if os.path.exists(tmp):
                        os.unlink(tmp)
                finally:
                    _unblock_signals(blocked)


class _Terminated(BaseException):
    """SIGTERM arrived during a write: unwinds to the clean-up, then the signal is raised again."""


class _cleanup_on_sigterm:
    """While active (main thread only), SIGTERM raises _Terminated; on leaving, the previous handler
    is restored and a SIGTERM that arrived is delivered to it."""

    def __enter__(self) -> None:
        self.active = threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN
        if self.active:
            self.previous = signal.signal(signal.SIGTERM, self._raise)

    @staticmethod
    def _raise(signum, frame) -> None:
        raise _Terminated()

    def __exit__(self, kind, value, traceback) -> bool:
        if not self.active:
            return False
        signal.signal(signal.SIGTERM, self.previous)
        if kind is _Terminated or _caused_by(value, _Terminated):
            os.kill(os.getpid(), signal.SIGTERM)  # to the previous handler (by default: the end of the process)
        return False  # if the process lives on, the write did not happen: _Terminated propagates


def _caused_by(exc: Optional[BaseException], kind: type) -> bool:
    """Whether ``exc`` was raised while handling (or because of) an exception of ``kind``: a signal
    handler's exception raised inside compiled code can come back wrapped in a SystemError."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kind):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _block_signals():
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)


def _unblock_signals(previous) -> None:
    if previous is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def cache_folder(*parts: str) -> Optional[Path]:
    """fleqc's folder in the user's cache (``$XDG_CACHE_HOME/fleqc``, else ``~/.cache/fleqc``;
    ``FLEQC_CACHE_DIR`` overrides), or its subfolder ``parts``: made private to the user, never a
    shared temporary folder; None if it cannot be made (a cache that cannot be kept costs only the
    work it would have saved)."""
    given = os.environ.get("FLEQC_CACHE_DIR")
    base = Path(given) if given else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fleqc"
    folder = base.joinpath(*parts)
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return None
    return folder
