"""Running a classic card on the transformer: the host streams the output tape and watches the flags.

The transformer does all of the computing, input and output included: the host only reads X between
passes. A pass that writes an output-tape cell changes that column, so the host looks at the
output region only when a changed column lies in it, and emits the cell's low byte at once (the
tape is a ring: the host reads every cell as it is written, so none is lost). The run ends when
the machine halts (a jump to a negative address), faults (an address outside memory), reaches a
fixed point without halting (a step that changes nothing, such as a jump to itself, repeats
forever), or after ``max_steps``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from fleqc.machines.classic.card import Reader
from fleqc.machines.classic.config import ClassicConfig
from fleqc.transformer.executor import Engine, Mode, stepper
from fleqc.transformer.layers import LoopedTransformer

Check = Callable[[np.ndarray, int, np.ndarray], None]  # (X, steps so far, columns the pass changed)


@dataclass
class ClassicOutcome:
    """How a run ended, what it printed, and its figures."""

    output: bytes
    steps: int
    status: str  # "halted", "fault", "stuck" (a fixed point that is no halt) or "limit"
    seconds: float
    X: np.ndarray
    stats: Optional[object] = None

    @property
    def halted(self) -> bool:
        return self.status == "halted"


def run_card(model: LoopedTransformer, X: np.ndarray, config: ClassicConfig, *, engine: Engine = "auto",
             mode: Mode = "softmax", max_steps: Optional[int] = None, on_output: Optional[Callable[[int], None]] = None,
             check: Optional[Check] = None) -> ClassicOutcome:
    """Run the card X until the machine stops; ``on_output(byte)`` is called for every byte as it is
    written; ``check(X, steps, changed)`` after every pass (the lockstep comparison of the tests)."""
    reader = Reader(config)
    out_lo, out_hi = reader.regions.output
    halted_row, fault_row = reader.rows["halted"][0], reader.rows["fault"][0]
    loop = stepper(model, X, mode=mode, engine=engine)
    output = bytearray()
    steps, status = 0, "limit"
    start = time.perf_counter()
    while max_steps is None or steps < max_steps:
        changed = loop.step()
        if len(changed) == 0:
            status = "stuck"
            break
        steps += 1
        Xs = loop.X
        if changed[-1] >= out_lo:  # columns come sorted and the output tape is the last region
            for column in changed[changed >= out_lo]:
                if column < out_hi:
                    byte = reader.word(Xs, int(column)) & 0xFF
                    output.append(byte)
                    if on_output is not None:
                        on_output(byte)
        if check is not None:
            check(Xs, steps, changed)
        if Xs[fault_row, 0] > 0.5:
            status = "fault"
            break
        if Xs[halted_row, 0] > 0.5:
            status = "halted"
            break
    seconds = time.perf_counter() - start
    return ClassicOutcome(bytes(output), steps, status, seconds, np.array(loop.X), getattr(loop, "stats", None))
