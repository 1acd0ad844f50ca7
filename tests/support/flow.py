"""Compile and run Flow programs in tests (the reference interpreter unless told)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from fleqc import api

def write(tmp_path: Path, source: str, name: str = "prog.flow") -> Path:
    path = tmp_path / name
    path.write_text(source, encoding="utf-8")
    return path


def run_flow(tmp_path: Path, source: str, backend: str = "reference", max_steps: int = 200_000, name="prog.flow"):
    """(the run's Result, the program) of the Flow ``source``."""
    program = api.compile(write(tmp_path, source, name))
    return api.run(program, backend=backend, max_steps=max_steps), program


def bits(value) -> np.ndarray:
    """The float64 bit patterns of ``value`` (so that equality is bit for bit, -0.0 included)."""
    return np.asarray(value, dtype=np.float64).view(np.uint64)


def same_bits(a, b) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.array_equal(bits(a + 0.0), bits(b + 0.0)))


def ulps(a, b) -> float:
    """The largest distance in ulps between entries of a and b."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    worst = 0.0
    for x, y in zip(np.ravel(a), np.ravel(b)):
        if x != y:
            worst = max(worst, abs(x - y) / math.ulp(max(abs(x), abs(y))))
    return worst
