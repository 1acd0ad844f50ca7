"""The loop. Nothing else computes anything in a fleqc machine.

``forward`` (:mod:`fleqc.transformer.dense`, the definition) applies every layer once; ``run``
applies passes until X stops changing (a fixed point: the machine has halted) or a step limit is
reached. X may carry leading batch axes: shape (..., d, n); every card in a batch runs through the
same weights.

``run`` and ``run_batch`` take ``engine=``: ``auto`` (the default: sparse passes while they are
cheap, then the incremental engine), ``incremental`` (:mod:`fleqc.transformer.incremental`: recomputes
only what can change since the previous pass),
``sparse`` (:mod:`fleqc.transformer.sparse`: every column, through the nonzeros of the weights) or
``dense`` (:func:`forward`, the definition). All compute the same function of (weights, X).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Literal, Optional

import numpy as np

from fleqc.transformer.dense import (  # noqa: F401 (the definition, named here too)
    MODES,
    Mode,
    apply_layer,
    attention,
    attention_weights,
    feed_forward,
    forward,
)
from fleqc.transformer.layers import AttentionLayer, LoopedTransformer
from fleqc.transformer.passes import RUN_COMMITTED, RUN_WATCHED, PassLoop, PassStats, pass_function

StepCheck = Callable[[np.ndarray, int, np.ndarray], None]  # (X, step, columns changed by the pass)


ENGINES = ("auto", "incremental", "sparse", "dense")
Engine = Literal["auto", "incremental", "sparse", "dense"]
# auto: sparse passes until their estimated work reaches this many multiply-adds (about 0.1 s),
# then the incremental engine (whose compiled code takes about a second to load) ...
AUTO_BUDGET = 1e8
# ... unless the budget buys fewer sparse passes than this: then the engine from the start. A run
# that switches pays for the sparse path's set-up and its passes on top of the engine's first pass
# (which evaluates every column again), and a wide machine's few sparse passes cover only the
# shortest programs (the FLEQ machine at n = 256: 1 pass; `fleqc calc` measured 0.2 s of CPU less)
AUTO_MIN_PASSES = 16


def sparse_pass_cost(model: LoopedTransformer, n: int) -> float:
    """Multiply-adds of one sparse pass over n columns (scores and mixing of every head, the nonzeros
    of every feed-forward layer): an estimate that depends only on the weights and n."""
    cost = 0.0
    for layer in model.layers:
        if isinstance(layer, AttentionLayer):
            H, dk, _ = layer.query.shape
            cost += H * float(n) * n * (dk + layer.value.shape[1])
        else:
            cost += float(layer.nonzeros) * n
    return cost


def sparse_passes(model: LoopedTransformer, n: int) -> int:
    """How many sparse passes ``auto`` runs on n columns before the engine (0: the engine from the
    start): the budget's worth, if that is at least :data:`AUTO_MIN_PASSES`."""
    passes = int(AUTO_BUDGET // max(sparse_pass_cost(model, n), 1.0))
    return passes if passes >= AUTO_MIN_PASSES else 0


def incremental_engine(model: LoopedTransformer, X: np.ndarray, mode: Mode, timed: bool):
    """The incremental engine over one card (:mod:`fleqc.transformer.incremental`)."""
    # imported here because its compiled kernels load numba (about 0.2 s): a command that runs no
    # incremental pass (``fleqc --help``, ``build``, a short run) does not pay for it
    from fleqc.transformer.incremental import IncrementalEngine
    from fleqc.transformer.warm import ensure_ready

    # the first engine of a process loads the kernels it runs, or compiles them under one notice
    # (the compiled loop's when the engine first runs it)
    ensure_ready("step", "timed") if timed else ensure_ready("step")
    engine = IncrementalEngine(model, X, mode, timed=timed)
    engine.before_loop = lambda: ensure_ready("loop")
    return engine


class AutoLoop:
    """Sparse passes first, then the incremental engine: a short run does not wait for the engine's
    compiled code to load, a long one runs on it. When to switch depends only on the weights and n
    (:data:`AUTO_BUDGET`), so a run gives the same result every time."""

    def __init__(self, model: LoopedTransformer, X: np.ndarray, mode: Mode, timed: bool) -> None:
        self.model, self.mode, self.timed = model, mode, timed
        self.left = sparse_passes(model, np.shape(X)[-1])
        self.sparse = PassStats("sparse")  # the sparse passes run before the switch
        if self.left > 0:
            self.inner = PassLoop(model, X, mode, "sparse")
        else:
            self.inner = incremental_engine(model, X, mode, timed)

    @property
    def X(self) -> np.ndarray:
        return self.inner.X

    @property
    def stats(self):
        """The current loop's figures; after the switch, the engine's with the sparse passes before it."""
        if isinstance(self.inner, PassLoop):
            return self.inner.stats
        return _AutoStats(self.inner.stats, self.sparse)

    def run_passes(self, max_passes: int, check: tuple, watch: np.ndarray) -> Optional[tuple]:
        """The engine's compiled loop once it runs (see IncrementalEngine.run_passes); None before."""
        if isinstance(self.inner, PassLoop):
            return None
        return self.inner.run_passes(max_passes, check, watch)

    def step(self) -> np.ndarray:
        if self.left == 0 and isinstance(self.inner, PassLoop):
            self.sparse = self.inner.stats
            self.inner = incremental_engine(self.model, self.inner.X, self.mode, self.timed)
        self.left -= 1
        return self.inner.step()


@dataclass
class _AutoStats:
    engine: object
    sparse: PassStats

    def to_json(self) -> dict:
        return {**self.engine.to_json(), "sparse_passes_first": self.sparse.passes}


def stepper(model: LoopedTransformer, X: np.ndarray, mode: Mode = "softmax", engine: Engine = "auto",
            timed: bool = False):
    """An object with ``step() -> changed columns`` and ``X`` that runs ``model`` over the card X.

    ``incremental`` (:mod:`fleqc.transformer.incremental`) recomputes only what can change; ``sparse``
    (:mod:`fleqc.transformer.sparse`) evaluates every column through the nonzeros of the weights;
    ``dense`` is :func:`forward` itself, the definition; ``auto`` (the default) runs sparse passes
    while their cost is small and then the incremental engine (:class:`AutoLoop`).
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; use one of {ENGINES}")
    if mode not in MODES:
        raise ValueError(f"unknown attention mode {mode!r}; use one of {MODES}")
    if engine == "incremental":
        return incremental_engine(model, X, mode, timed)
    if engine == "auto":
        return AutoLoop(model, X, mode, timed)
    return PassLoop(model, X, mode, engine)


@dataclass(frozen=True)
class RunOutcome:
    """The final X, the number of passes that changed X, whether a fixed point was reached, and the
    loop's figures (``to_json()``: the engine that ran, passes, time; per layer for the engine)."""

    X: np.ndarray
    steps: int
    halted: bool
    stats: Optional[object] = None


def run(
    model: LoopedTransformer,
    X: np.ndarray,
    *,
    max_steps: int,
    mode: Mode = "softmax",
    check: Optional[StepCheck] = None,
    on_step: Optional[Callable[[int, np.ndarray], None]] = None,
    engine: Engine = "auto",
    timed: bool = False,
    on_count: Optional[Callable[[int], None]] = None,
) -> RunOutcome:
    """Loop passes until X is a fixed point or ``max_steps`` passes have changed it.

    A pass that leaves X exactly unchanged is not counted: ``steps`` counts the passes that changed
    X. After ``max_steps`` changing passes, one more pass tells whether the machine halted right
    there. ``check(X, step, columns)`` runs after every changing pass with the columns it changed
    (None after the first pass: every column is new to the check; health checks raise there).
    ``on_step(step, X)`` observes the state (lockstep tests, traces; X is the engine's array: copy
    it to keep it). ``on_count(steps)`` follows the count (a progress display). ``engine`` chooses
    how a pass is evaluated (see :func:`stepper`); all of them compute the same function.

    Many passes per call: where the engine can run passes in a compiled loop (the incremental
    engine, untimed), the check offers a :class:`fleqc.transformer.health.LoopCheck` (its
    ``loop_check``) and ``on_step`` is absent or names the entries it watches (its ``watch``: (row,
    column) pairs; it is then called only after the passes that change one of them), the passes run
    in chunks inside the engine. The check is then called once per chunk with every column the
    chunk changed, and at once on any pass the LoopCheck flags; ``on_count`` once per chunk.
    """
    loop = stepper(model, X, mode, engine, timed)
    chunk = _Chunks(model.width, check, on_step)
    steps = 0
    while True:
        if chunk.usable and 1 <= steps < max_steps:
            ran = chunk.run(loop, max_steps - steps)
            if ran is not None:
                reason, done, union = ran
                if union.size and check is not None:  # every pass of the chunk passed the LoopCheck
                    check(loop.X, steps + done, union)
                steps += done
                if done and on_count is not None:
                    on_count(steps)
                if reason == RUN_WATCHED and on_step is not None:
                    on_step(steps, loop.X)
                if reason in RUN_COMMITTED:
                    continue
                # the engine holds the next pass (a fixed point, or one to check here): step() gives it
        before = np.array(loop.X) if steps == max_steps else None
        changed = loop.step()
        if not len(changed):
            return RunOutcome(np.array(loop.X), steps, True, loop.stats)
        if before is not None:
            return RunOutcome(before, steps, False, loop.stats)
        steps += 1
        if check is not None:  # the first check sees all of X; later ones the columns that changed
            check(loop.X, steps, changed if steps > 1 else None)
        if on_step is not None:
            on_step(steps, loop.X)
        if on_count is not None:
            on_count(steps)


class _Chunks:
    """The compiled loop's side of :func:`run`: whether it can serve, its arrays, and a chunk size
    that keeps each call near ``CHUNK_SECONDS`` (a progress display and Ctrl-C answer between calls)."""

    CHUNK_SECONDS = 0.1

    def __init__(self, width: int, check: Optional[StepCheck], on_step: Optional[Callable]) -> None:
        from fleqc.transformer.health import loop_check_of

        spec = loop_check_of(check) if check is not None else None
        watch = getattr(on_step, "watch", None) if on_step is not None else ()
        self.usable = (check is None or spec is not None) and watch is not None
        if not self.usable:
            return
        from fleqc.transformer.health import LoopCheck

        self.check = (spec or LoopCheck()).arrays(width)
        self.watch = np.asarray(watch, dtype=np.int64).reshape(-1, 2)
        self.size = 64

    def run(self, loop, left: int) -> Optional[tuple]:
        run_passes = getattr(loop, "run_passes", None)
        if run_passes is None:
            return None
        start = time.perf_counter()
        ran = run_passes(min(self.size, left), self.check, self.watch)
        if ran is None:
            return None
        elapsed, done = time.perf_counter() - start, ran[1]
        if done >= self.size and elapsed < self.CHUNK_SECONDS / 2:
            self.size = min(self.size * 2, 1 << 22)
        elif elapsed > self.CHUNK_SECONDS * 2 and self.size > 1:
            self.size //= 2
        return ran


@dataclass(frozen=True)
class BatchOutcome:
    """Per card of a batch: the final X, the passes that changed it, whether it reached a fixed point."""

    X: np.ndarray  # (B, d, n)
    steps: np.ndarray  # (B,) int
    halted: np.ndarray  # (B,) bool


def run_batch(
    model: LoopedTransformer, X: np.ndarray, *, max_steps: int, mode: Mode = "softmax", engine: Engine = "auto"
) -> BatchOutcome:
    """:func:`run` for a batch of cards (B, d, n) on the same weights.

    Each card stops at its own fixed point (or after ``max_steps`` changing passes, then one more
    pass tells whether it halted right there). The dense and sparse engines step the cards still
    running together, one product per layer; the incremental engine keeps one state per card and
    steps each in turn (its cost per pass does not grow with n, so there is little to share).
    """
    X = np.array(X, dtype=np.float64)
    batch = X.shape[0]
    steps = np.zeros(batch, dtype=np.int64)
    halted = np.zeros(batch, dtype=bool)
    if engine in ("incremental", "auto"):
        for b in range(batch):
            outcome = run(model, X[b], max_steps=max_steps, mode=mode, engine=engine)
            X[b], steps[b], halted[b] = outcome.X, outcome.steps, outcome.halted
        return BatchOutcome(X, steps, halted)
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; use one of {ENGINES}")
    one_pass = pass_function(model, mode, engine)
    running = np.arange(batch)
    while running.size:
        Y = one_pass(X[running])
        fixed = np.all(Y == X[running], axis=(1, 2))
        halted[running[fixed]] = True
        out_of_steps = ~fixed & (steps[running] == max_steps)
        moving = ~fixed & ~out_of_steps
        X[running[moving]] = Y[moving]
        steps[running[moving]] += 1
        running = running[moving]
    return BatchOutcome(X, steps, halted)
