"""The incremental engine's kernels called once per process, under one compile notice.

``python -m fleqc.transformer.warm`` (run by ``make install``) compiles every kernel on a small
generic transformer, so that the first program after an install does not wait;
:func:`ensure_ready` does the same in a process for the kernels a use of the engine needs, the
first time it needs them, so that a compilation (no cache yet, or kernels.py changed) is announced
once and timed as a whole (:mod:`fleqc.transformer.compiling`); with the cache in place it loads
the kernels, about a second, which the run would spend anyway. The kernels come in three parts
(:data:`PARTS`): ``step``, what every engine runs (the executor asks for it before the first
engine); ``loop``, the compiled loop of passes (asked for by the engine's first ``run_passes``);
``timed``, the per-layer calls of an engine timed per layer. A process loads only the parts it
uses: each loaded kernel takes memory (``fleqc calc``, which steps one pass at a time, does not
load the compiled loop: about 30 MB less at its peak).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

import numpy as np

from fleqc.transformer import kernels as K
from fleqc.transformer.compiling import compiling
from fleqc.transformer.health import LoopCheck
from fleqc.transformer.incremental import IncrementalEngine, gather_view
from fleqc.transformer.layers import AttentionLayer, FeedForwardLayer, LoopedTransformer

PARTS = ("step", "loop", "timed")
_ready: set = set()  # the parts whose kernels this process has called once


def ensure_ready(*parts: str, stream: TextIO | None = None) -> None:
    """Call the kernels of ``parts`` (:data:`PARTS`; none named: all) once (:func:`warm`), the
    first time in a process."""
    missing = tuple(p for p in (parts or PARTS) if p not in _ready)
    if missing:
        warm(stream, missing)


def warm(stream: TextIO | None = None, parts: tuple = PARTS) -> float:
    """Compile (or load) the kernels the engine runs (``parts``: :data:`PARTS`), on a small generic
    transformer (two attention layers and two feed-forward layers, small integer weights; in both
    attention modes: ``step``: passes stepped, an index replaced as a rebuild does; ``loop``: passes
    run in the compiled loop; ``timed``: passes timed per layer); returns the seconds it took."""
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown kernel parts {sorted(unknown)}; use {PARTS}")
    _ready.update(parts)
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
    check = LoopCheck(ternary=(0,), registers=((0, (1, 2), 0, 4),), limits=((3, 0, 0.5),)).arrays(d)
    watch = np.array([[1, 0]], dtype=np.int64)
    with compiling(stream, loading=True):
        for mode in ("softmax", "hardmax"):
            engine = IncrementalEngine(model, X, mode)
            for _ in range(3):
                engine.step()
            if "loop" in parts:
                for _ in range(4):
                    if engine.run_passes(20, check, watch) is None:
                        engine.step()
            if "timed" in parts:
                timed = IncrementalEngine(model, X, mode, timed=True)
                for _ in range(3):
                    timed.step()
        if "step" in parts:
            K.list_set(engine.heads, 0, engine.head_tuples[0])  # what an index rebuild calls
            K.list_set(engine.gathers, 0, gather_view(engine.head_tuples[0]))  # (never index a typed list from Python)
    return time.perf_counter() - start


if __name__ == "__main__":
    from fleqc.transformer import warm as this  # one module (its flag), not a second copy as __main__

    print(f"fleqc: the incremental engine's kernels are ready ({this.warm():.1f} s)", file=sys.stderr)
