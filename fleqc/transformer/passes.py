"""One whole pass stepped over a card, dense (the definition) or sparse (through the weights'
nonzeros): ``step()`` returns the columns that changed."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from fleqc.transformer.dense import Mode, forward
from fleqc.transformer.layers import LoopedTransformer
from fleqc.transformer.sparse import compile_fast, fast_forward


# What ended a run of passes in the engine's compiled loop (kernels.run_passes): the step limit, a
# fixed point, a non-finite value, a pass the LoopCheck flags, a change to a watched entry, an index
# to rebuild. After RUN_LIMIT, RUN_WATCHED and RUN_REBUILD every pass it computed is committed.
RUN_LIMIT, RUN_FIXED, RUN_NOT_FINITE, RUN_FLAGGED, RUN_WATCHED, RUN_REBUILD = range(6)
RUN_COMMITTED = (RUN_LIMIT, RUN_WATCHED, RUN_REBUILD)


@dataclass
class PassStats:
    """What a dense or sparse loop did: its passes and their time."""

    engine: str
    passes: int = 0
    total_seconds: float = 0.0

    def to_json(self) -> dict:
        return {"engine": self.engine, "passes": self.passes, "seconds": round(self.total_seconds, 6)}


def pass_function(model: LoopedTransformer, mode: Mode, engine: str) -> Callable[[np.ndarray], np.ndarray]:
    """X -> one pass of ``model`` over every column (X may carry batch axes): :func:`forward`
    (``dense``) or the precompiled sparse form (``sparse``)."""
    if engine == "dense":
        return lambda X: forward(model, X, mode)
    compiled = compile_fast(model)
    return lambda X: fast_forward(compiled, X, mode)


class PassLoop:
    """A dense or sparse pass stepped over one card: ``step()`` returns the columns that changed."""

    def __init__(self, model: LoopedTransformer, X: np.ndarray, mode: Mode, engine: str) -> None:
        self._pass = pass_function(model, mode, engine)
        self.X = np.array(X, dtype=np.float64)
        self.stats = PassStats(engine)

    def step(self) -> np.ndarray:
        start = time.perf_counter()
        Y = self._pass(self.X)
        changed = np.flatnonzero(np.any(Y != self.X, axis=tuple(range(Y.ndim - 1))))
        self.X = Y
        self.stats.passes += 1
        self.stats.total_seconds += time.perf_counter() - start
        return changed
