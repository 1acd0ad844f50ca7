"""The incremental engine's compiled kernels: a notice while numba compiles them, and a warm-up.

numba compiles :mod:`fleqc.transformer.kernels` the first time they run after an install (or after
kernels.py changes) and caches the machine code on disk (``__pycache__`` beside kernels.py, or
``NUMBA_CACHE_DIR``); later processes load it in about a second. The compilation takes a
few minutes on two cores, so nothing may wait on it silently: :func:`compiling` says on stderr,
after ``NOTICE_AFTER_S``, that the kernels are compiling, how many are done, and at the end how long
it took. ``python -m fleqc.transformer.warm`` (run by ``make install``) compiles them all at once on
a small generic transformer, so that the first program does not wait.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import Iterator, TextIO

NOTICE_AFTER_S = 1.0  # a compilation still running after this long is announced
PROGRESS_EVERY_S = 10.0  # then a line of progress this often (on a terminal: one line rewritten)

_lock = threading.Lock()


class _Notice:
    def __init__(self, stream: TextIO) -> None:
        self.stream, self.count, self.start = stream, 0, time.perf_counter()
        self.started = False  # a compilation began (not only a load from the cache)
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
        # loading from the cache fires no compile event: only a compilation is announced
        if self.done.wait(NOTICE_AFTER_S):
            return
        while not self.started:
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
        if self.shown:
            self.say(("\n" if self.tty else "") + f"fleqc: kernels compiled in {time.perf_counter() - self.start:.0f} s "
                     f"({self.count} functions), cached for later runs")


@contextlib.contextmanager
def compiling(stream: TextIO | None = None) -> Iterator[None]:
    """Around code that may call kernels for the first time: silent if they load from the cache
    within ``NOTICE_AFTER_S``, else a notice with progress on ``stream`` (stderr)."""
    try:
        from numba.core import event
    except ImportError:  # pragma: no cover - without numba the kernels run as Python: nothing compiles
        yield
        return
    if not _lock.acquire(blocking=False):  # already announcing (a nested call)
        yield
        return
    notice = _Notice(stream if stream is not None else sys.stderr)

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


_ready = False  # this process has called every kernel once (ensure_ready)


def ensure_ready(stream: TextIO | None = None) -> None:
    """Before the first engine of a process: call every kernel once on a small model, under one
    :func:`compiling` notice, so that a compilation is announced once and timed as a whole (with the
    cache in place this loads the kernels, about a second, which the run would spend anyway)."""
    global _ready
    if _ready:
        return
    _ready = True
    warm(stream)


class _Quiet:
    """A check that never objects, with an empty LoopCheck: it sends the run through the compiled loop."""

    def __init__(self) -> None:
        from fleqc.transformer.health import LoopCheck

        self.loop_check = LoopCheck()

    def __call__(self, X, step, columns) -> None:
        pass


def warm(stream: TextIO | None = None) -> float:
    """Compile (or load) every kernel the engine runs, on a small generic transformer (two attention
    layers and a feed-forward layer, small integer weights, a few passes in both attention modes,
    stepped and in the compiled loop); returns the seconds it took."""
    global _ready
    _ready = True
    import numpy as np

    from fleqc.transformer.executor import run
    from fleqc.transformer.layers import AttentionLayer, FeedForwardLayer, LoopedTransformer

    start = time.perf_counter()
    rng = np.random.default_rng(0)
    d, n, H, dk, dv, hidden = 8, 16, 2, 3, 2, 6

    def attention() -> AttentionLayer:
        return AttentionLayer(query=rng.integers(-2, 3, (H, dk, d)).astype(float),
                              key=rng.integers(-2, 3, (H, dk, d)).astype(float),
                              value=rng.integers(-1, 2, (H, dv, d)).astype(float),
                              output=rng.integers(-1, 2, (H, d, dv)).astype(float) / 8)

    ffn = FeedForwardLayer(w1=rng.integers(-1, 2, (hidden, d)).astype(float), b1=np.zeros(hidden),
                           w2=rng.integers(-1, 2, (d, hidden)).astype(float) / 8, b2=np.zeros(d))
    # two layers of each kind: the typed lists of layers are appended to, as for every machine
    model = LoopedTransformer(layers=(attention(), ffn, attention(), ffn), row_labels=tuple(f"r{i}" for i in range(d)),
                              ternary_rows=())
    X = rng.integers(-1, 2, (d, n)).astype(float)
    with compiling(stream):
        for mode in ("softmax", "hardmax"):
            run(model, X, max_steps=40, mode=mode, engine="incremental", check=_Quiet())
            run(model, X, max_steps=3, mode=mode, engine="incremental", timed=True)
        from fleqc.transformer import kernels as K
        from fleqc.transformer.incremental import IncrementalEngine

        engine = IncrementalEngine(model, X)
        engine.step()
        K.list_set(engine.heads, 0, engine.head_tuples[0])  # what an index rebuild calls
    return time.perf_counter() - start


if __name__ == "__main__":
    from fleqc.transformer import warm as this  # one module (its lock and flag), not a second as __main__

    print(f"fleqc: the incremental engine's kernels are ready ({this.warm():.1f} s)", file=sys.stderr)
