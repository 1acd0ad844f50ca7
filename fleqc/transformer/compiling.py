"""A notice on stderr while numba compiles the incremental engine's kernels.

numba compiles :mod:`fleqc.transformer.kernels` the first time they run after an install (or after
kernels.py changes) and caches the machine code on disk (``__pycache__`` beside kernels.py, or
``NUMBA_CACHE_DIR``); later processes load it in about a second. The compilation takes a few
minutes on two cores, so nothing may wait on it silently: :func:`compiling` says on stderr, after
``NOTICE_AFTER_S``, that the kernels are compiling, how many functions are done, and at the end how
long it took. Loading from the cache says nothing unless it takes longer than
``LOAD_NOTICE_AFTER_S`` (a busy machine). :mod:`fleqc.transformer.warm`
calls every kernel at once under one notice.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import Iterator, TextIO

NOTICE_AFTER_S = 0.5  # a compilation still running after this long is announced
LOAD_NOTICE_AFTER_S = 1.5  # a load from the cache still running after this long is announced too
PROGRESS_EVERY_S = 10.0  # then a line of progress this often (on a terminal: one line rewritten)

_lock = threading.Lock()


class _Notice:
    def __init__(self, stream: TextIO) -> None:
        self.stream, self.count, self.start = stream, 0, time.perf_counter()
        self.started = False  # a compilation began (not only a load from the cache)
        self.loading = False  # a slow load was announced
        self.announce_load = False
        self.shown = False
        self.done = threading.Event()
        self.tty = bool(getattr(stream, "isatty", lambda: False)())

    def compiled(self) -> None:
        self.count += 1

    def say(self, text: str, end: str = "\n") -> None:
        try:
            self.stream.write(text + end)
            self.stream.flush()
        except (OSError, ValueError):  # a closed stream: the notice is not worth an error
            pass

    def watch(self) -> None:
        # loading from the cache fires no compile event: a load is announced only if it is slow
        if self.done.wait(NOTICE_AFTER_S):
            return
        while not self.started:
            if self.announce_load and not self.loading and time.perf_counter() - self.start >= LOAD_NOTICE_AFTER_S:
                self.loading = True
                self.say("fleqc: loading the incremental engine's compiled kernels from the cache ...")
            if self.done.wait(0.25):
                return
        self.shown = True
        self.say("fleqc: compiling the incremental engine's kernels with numba (once after an install; "
                 "a few minutes on two cores; later runs load them from the cache in about a second)")
        while not self.done.wait(1.0 if self.tty else PROGRESS_EVERY_S):
            line = f"fleqc: compiling ... {self.count} functions compiled, {time.perf_counter() - self.start:.0f} s"
            self.say(("\r" + line) if self.tty else line, end="" if self.tty else "\n")

    def finish(self) -> None:
        self.done.set()
        if self.loading and not self.shown:
            self.say(f"fleqc: kernels loaded in {time.perf_counter() - self.start:.1f} s")
        if self.shown:
            self.say(("\n" if self.tty else "") + f"fleqc: kernels compiled in {time.perf_counter() - self.start:.0f} s "
                     f"({self.count} functions), cached for later runs")


@contextlib.contextmanager
def compiling(stream: TextIO | None = None, loading: bool = False) -> Iterator[None]:
    """Around code that may call kernels for the first time: silent if they load from the cache
    within ``NOTICE_AFTER_S``, else a notice with progress on ``stream`` (stderr). ``loading``: the
    code only loads kernels (warm.py), so a slow wait without a compilation is a slow load, said too."""
    try:
        from numba.core import event
    except ImportError:  # pragma: no cover - without numba the kernels run as Python: nothing compiles
        yield
        return
    if not _lock.acquire(blocking=False):  # already announcing (a nested call)
        yield
        return
    notice = _Notice(stream if stream is not None else sys.stderr)
    notice.announce_load = loading

    class Listener(event.Listener):
        def on_start(self, ev) -> None:
            notice.started = True

        def on_end(self, ev) -> None:
            notice.compiled()

    listener = Listener()
    event.register("numba:compile", listener)
    thread = threading.Thread(target=notice.watch, name="fleqc-compile-notice", daemon=True)
    thread.start()
    try:
        yield
    finally:
        event.unregister("numba:compile", listener)
        notice.finish()
        thread.join(timeout=1.0)
        _lock.release()
