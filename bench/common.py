"""What the benchmarks share: BLAS on fleqc's number of threads, medians of alternated runs, and the
check of a result against the reference interpreter. Benchmarks never assert a time; they do stop
when a result is wrong, since a fast wrong answer measures nothing.

The scripts of bench/ import this module as ``common`` (a script's own folder is on the path).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the tests' helpers, when a bench borrows them
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import fleqc  # noqa: E402

from fleqc.threads import blas_threads  # noqa: E402

# fleqc's choice of BLAS threads (one; FLEQC_BLAS_THREADS overrides) for every pass a bench times
threadpool_limits(limits=blas_threads(), user_api="blas")


def same_memory(got: dict, expected: dict) -> list[str]:
    """The labels whose values differ (vectors and matrices compared entry by entry, bit for bit
    up to the sign of zero)."""
    return sorted(k for k in expected
                  if k not in got or not np.array_equal(np.asarray(got[k]), np.asarray(expected[k])))


def alternated(runs: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    """Run every measurement ``repeats`` times, one of each in turn, so that a change in the
    machine's load falls on all of them alike; the median of each."""
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, measure in runs.items():
            samples[name].append(measure())
    return {name: statistics.median(values) for name, values in samples.items()}


def seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def check_against_reference(card, program, X, steps: int, what: str) -> None:
    """Stop if the memory the transformer holds in X differs from the reference interpreter's after
    ``steps`` steps of ``program`` (bit for bit: integers, and floats compared with ==)."""
    expected = fleqc.run(program, backend="reference", max_steps=steps).memory
    wrong = same_memory(card.decode(X), expected)
    if wrong:
        raise SystemExit(f"{what}: after {steps} steps the transformer's memory differs from the reference "
                         f"interpreter's at {', '.join(wrong)}")


def check_result(result, expected, what: str) -> None:
    """Stop if two runs' results differ (steps, halting or any label's value)."""
    if (result.steps, result.halted) != (expected.steps, expected.halted) \
            or same_memory(result.memory, expected.memory):
        raise SystemExit(f"{what}: the transformer's run differs from the reference interpreter's "
                         f"({result.steps} against {expected.steps} steps)")
