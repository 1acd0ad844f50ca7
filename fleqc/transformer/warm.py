"""The incremental engine's kernels called once per process, under one compile notice.

``python -m fleqc.transformer.warm`` (run by ``make install``) compiles every kernel on a small
generic transformer, so that the first program after an install does not wait;
:func:`ensure_ready` does the same before the first incremental engine of a process (the
executor calls it), so that a compilation (no cache yet, or kernels.py changed) is announced once
and timed as a whole (:mod:`fleqc.transformer.compiling`); with the cache in place it loads the
kernels, about a second, which the run would spend anyway.
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

_ready = False  # this process has called every kernel once


def ensure_ready(stream: TextIO | None = None) -> None:
    """Call every kernel once (:func:`warm`), the first time in a process."""
    if not _ready:
        warm(stream)


def warm(stream: TextIO | None = None) -> float:
    """Compile (or load) every kernel the engine runs, on a small generic transformer (two attention
    layers and two feed-forward layers, small integer weights; in both attention modes: passes
    stepped, timed per layer and run in the compiled loop; an index replaced as a rebuild does);
    returns the seconds it took."""
    global _ready
    _ready = True
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
            for _ in range(4):
                if engine.run_passes(20, check, watch) is None:
                    engine.step()
            timed = IncrementalEngine(model, X, mode, timed=True)
            for _ in range(3):
                timed.step()
        K.list_set(engine.heads, 0, engine.head_tuples[0])  # what an index rebuild calls
        K.list_set(engine.gathers, 0, gather_view(engine.head_tuples[0]))  # (never index a typed list from Python)
    return time.perf_counter() - start


if __name__ == "__main__":
    from fleqc.transformer import warm as this  # one module (its flag), not a second copy as __main__

    print(f"fleqc: the incremental engine's kernels are ready ({this.warm():.1f} s)", file=sys.stderr)
