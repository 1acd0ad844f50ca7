"""Running a classic card on the transformer: the host streams the output tape and watches the flags.

The transformer does all of the computing, input and output included: the host only reads X between
passes. A pass that writes an output-tape cell advances the output pointer ``op`` in the
scratchpad, so the host compares those few rows after each pass and, when they moved, emits the
low byte of the cell they pointed at (the tape is a ring: the host reads every cell as it is
written, so none is lost; a cell rewritten with the byte it held does not change its column, which
is why the pointer and not the column is watched). The run ends when
the machine halts (a jump to a negative address), faults (an address outside memory), reaches a
fixed point without halting (a step that changes nothing, such as a jump to itself, repeats
forever), or after ``max_steps``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from fleqc.card.codes import decode_unsigned
from fleqc.machines.classic import reference
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


class OutputTape:
    """``on_step(step, X)``: after each pass, the byte the pass wrote to the output tape, if any,
    goes to ``sink`` (a function of one byte). The pass that writes a cell advances ``op``; the
    cell it wrote is the one the old ``op`` named."""

    def __init__(self, config: ClassicConfig, X: np.ndarray, sink: Callable[[int], None]) -> None:
        self.reader, self.sink = Reader(config), sink
        self.pointer = self.reader.rows["op"].slice
        self.last = np.array(X[self.pointer, 0])

    def __call__(self, step: int, X: np.ndarray) -> None:
        if not np.array_equal(X[self.pointer, 0], self.last):
            self.sink(self.reader.output_byte(X, decode_unsigned(self.last)))
            self.last = np.array(X[self.pointer, 0])


def run_card(model: LoopedTransformer, X: np.ndarray, config: ClassicConfig, *, engine: Engine = "auto",
             mode: Mode = "softmax", max_steps: Optional[int] = None, on_output: Optional[Callable[[int], None]] = None,
             check: Optional[Check] = None) -> ClassicOutcome:
    """Run the card X until the machine stops; ``on_output(byte)`` is called for every byte as it is
    written; ``check(X, steps, changed)`` after every pass (the lockstep comparison of the tests)."""
    reader = Reader(config)
    halted_row, fault_row = reader.rows["halted"][0], reader.rows["fault"][0]
    loop = stepper(model, X, mode=mode, engine=engine)
    output = bytearray()

    def emit(byte: int) -> None:
        output.append(byte)
        if on_output is not None:
            on_output(byte)

    tape = OutputTape(config, loop.X, emit)
    steps, status = 0, "limit"
    start = time.perf_counter()
    while max_steps is None or steps < max_steps:
        changed = loop.step()
        if len(changed) == 0:
            status = "stuck"
            break
        steps += 1
        Xs = loop.X
        tape(steps, Xs)
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


class LockstepMismatch(AssertionError):
    """The transformer and the reference interpreter disagree after a step."""


class Lockstep:
    """``check`` for :func:`run_card`: the reference interpreter (:mod:`fleqc.machines.classic.reference`) takes one
    step per pass, and after each the machine's pc, halted flag, the memory words and output cells
    the pass changed, and the input position must be the reference's (``full_every`` passes, and at
    :meth:`finish`, all of memory).

    A fault flag is the machine saying that the step cannot run: either the reference refuses this
    step too (an address outside memory: the machine changed nothing but the flag), or the step
    ran and the reference refuses the next one (a jump that leaves memory).
    """

    def __init__(self, config: ClassicConfig, words, input_bytes: bytes = b"", full_every: int = 4096) -> None:
        self.reference = reference
        self.state = reference.initial_state(list(words), config.memory, config.bits, bytes(input_bytes))
        self.reader = Reader(config)
        self.full_every = full_every
        self.input_length = len(input_bytes)
        self.written = 0  # output bytes the machine has written

    def __call__(self, X: np.ndarray, steps: int, changed: np.ndarray) -> None:
        r, s = self.reader, self.state
        if r.flag(X, "fault"):
            try:
                self.reference.step(s)
            except self.reference.AddressFault:
                return
            self._compare(X, steps, changed, pc=False)  # the machine keeps only the low bits of a bad jump
            try:
                self.reference.step(s)
            except self.reference.AddressFault:
                return
            raise LockstepMismatch(f"step {steps}: the machine faulted; the reference ran steps {steps} and {steps + 1}")
        try:
            self.reference.step(s)
        except self.reference.AddressFault as fault:
            raise LockstepMismatch(f"step {steps}: the reference faulted ({fault}); the machine did not") from None
        self._compare(X, steps, changed)

    def _compare(self, X: np.ndarray, steps: int, changed: np.ndarray, pc: bool = True) -> None:
        r, s = self.reader, self.state
        if s.steps != steps:
            raise LockstepMismatch(f"pass {steps}: the reference has run {s.steps} steps")
        halted = r.flag(X, "halted")
        if pc and (halted != (s.pc < 0) or (not halted and r.register(X, "pc") != s.pc)):
            raise LockstepMismatch(f"step {steps}: machine pc {r.register(X, 'pc')} (halted {halted}), "
                                   f"reference pc {s.pc}")
        lo, hi = r.regions.memory
        for column in changed:
            if lo <= column < hi and r.word(X, int(column)) != s.mem[column - lo]:
                raise LockstepMismatch(f"step {steps}: mem[{column - lo}] is {r.word(X, int(column))} on the machine, "
                                       f"{s.mem[column - lo]} on the reference")
        op = r.register(X, "op")
        if op != self.written % r.config.output_tape:
            self.written += 1
            if self.written != len(s.output) or r.output_byte(X, (op - 1) % r.config.output_tape) != s.output[-1]:
                raise LockstepMismatch(f"step {steps}: output byte {self.written} of the machine is "
                                       f"{r.output_byte(X, (op - 1) % r.config.output_tape)}; the reference has "
                                       f"written {bytes(s.output[-4:])!r} ({len(s.output)} bytes)")
        elif self.written != len(s.output):
            raise LockstepMismatch(f"step {steps}: the reference wrote a byte, the machine did not")
        if min(r.register(X, "ip"), self.input_length) != s.input_position:
            raise LockstepMismatch(f"step {steps}: input position {r.register(X, 'ip')} on the machine, "
                                   f"{s.input_position} on the reference")
        if self.full_every and steps % self.full_every == 0:
            self.finish(X)

    def finish(self, X: np.ndarray) -> None:
        """All of memory must be the reference's."""
        memory = self.reader.memory(X)
        if memory != self.state.mem:
            address = next(i for i, (a, b) in enumerate(zip(memory, self.state.mem)) if a != b)
            raise LockstepMismatch(f"after {self.state.steps} steps: mem[{address}] is {memory[address]} on the "
                                   f"machine, {self.state.mem[address]} on the reference")
