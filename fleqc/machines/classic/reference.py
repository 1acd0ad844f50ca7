"""Reference interpreter of the classic SUBLEQ machine: von Neumann, with input and output.

This is the machine the SUBLEQ community writes for (Rosetta Code, esolangs, Mazonka's sqasm,
howerj's eForth): code and data share one memory, programs modify themselves and index arrays, and
two instruction forms do I/O. Semantics, exactly (word width ``N`` in {16, 32}, ``m`` words of
memory, ``m`` a power of two <= 65,536):

* Every word holds a signed N-bit two's-complement integer; ``wrap`` reduces a value to that range.
  The address of a value ``v`` is its unsigned N-bit pattern ``v mod 2^N``, valid when < ``m``.
* The instruction at ``pc`` is the three words ``A, B, C = mem[pc], mem[pc+1], mem[pc+2]``, all
  fetched before it runs (an instruction that overwrites its own C still jumps to the old C).

      if A == -1:   mem[B] = the next input byte (0..255), or -1 at the end of the input; pc += 3
      elif B == -1: output the byte mem[A] & 0xFF; pc += 3
      else:         r = wrap(mem[B] - mem[A]); mem[B] = r; pc = C if r <= 0 else pc + 3

  ``pc`` is a signed N-bit value too: ``pc + 3`` past 2^(N-1) - 1 wraps negative.
* The machine halts when ``pc < 0``. Every executed instruction is one step, I/O included. A step
  that would change nothing (A's word is 0, the result <= 0 and C = pc: a jump to itself) is a
  fixed point: it is not executed nor counted, and the run ends there (``fixed``), as on the
  paper's machine, whose transformer stops at the same place.
* A step that would use an address outside the memory (``pc + 2 >= m``, or A or B not -1 and at
  least ``m`` as an unsigned pattern) is not executed: :class:`AddressFault` names the step, pc and
  address, and the state stays as it was before that step.

With N = 16 and m = 65,536 this is howerj/subleq's 16-bit VM (unsigned wraparound, 0xFFFF = -1 as
the I/O address, branch when the result is 0 or has bit 15 set, halt when pc >= 32,768); with
N = 32 it is Rosetta Code's Subleq. Mazonka's sqrun differs only in how input is stored and in
growing its memory on demand; the corpus's programs give the same output under both.

Plain Python, no numpy: :func:`run` keeps the machine in local variables in its loop (2 to 3
million steps a second on one core: eForth's ``2 2 + . cr``, 13.9 million steps, takes about 5 s),
and :func:`step` is ``run`` for one step, so the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from fleqc.errors import ErrorCode, FleqError
from fleqc.machines.subleq.reference import wrap

WORD_BITS = (16, 32)
MAX_MEMORY = 1 << 16


class AddressFault(FleqError):
    """A step used an address outside the memory: the step (1-based), its pc and the address."""

    def __init__(self, step: int, pc: int, address: int, memory: int) -> None:
        self.step, self.pc, self.address = step, pc, address
        super().__init__(
            ErrorCode.ADDRESS_FAULT,
            f"machine fault at step {step}: the instruction at pc {pc} uses address {address}, "
            f"outside the memory (0..{memory - 1})",
        )


@dataclass(eq=False)
class ClassicState:
    """The whole machine, changed in place by :func:`step` and :func:`run`.

    ``mem``: the memory (signed N-bit ints); ``pc``: signed, negative once halted; ``input``: the
    whole input tape and ``input_position`` the next byte to read; ``output``: the bytes written so
    far; ``steps``: the steps executed.
    """

    mem: list[int]
    pc: int
    bits: int
    input: bytes = b""
    input_position: int = 0
    output: bytearray = field(default_factory=bytearray)
    steps: int = 0
    fixed: bool = False  # the next step would change nothing (a jump to itself that subtracts 0)

    @property
    def halted(self) -> bool:
        """A negative pc, or a fixed point (as on the paper's machine: the transformer's X stops
        changing, and the step that would change nothing is not executed nor counted)."""
        return self.pc < 0 or self.fixed

    def difference(self, other: ClassicState) -> str | None:
        """None when ``other`` is the same machine state; else the first field that differs, in words
        (memory: the first differing address), for a lockstep test's failure message."""
        for name in ("bits", "pc", "steps", "input_position"):
            if getattr(self, name) != getattr(other, name):
                return f"{name}: {getattr(self, name)} != {getattr(other, name)}"
        if len(self.mem) != len(other.mem):
            return f"memory size: {len(self.mem)} != {len(other.mem)}"
        if self.mem != other.mem:
            address = next(i for i, (x, y) in enumerate(zip(self.mem, other.mem)) if x != y)
            return f"mem[{address}]: {self.mem[address]} != {other.mem[address]}"
        if self.output != other.output:
            return f"output: {bytes(self.output)!r} != {bytes(other.output)!r}"
        if self.input != other.input:
            return "input tapes differ"
        return None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ClassicState):
            return NotImplemented
        return self.difference(other) is None

    __hash__ = None  # mutable


def memory_size(needed: int) -> int:
    """The smallest power of two >= ``needed`` (at least 1): the memory a program needs."""
    if needed > MAX_MEMORY:
        raise FleqError(ErrorCode.PROGRAM_TOO_LARGE,
                        f"the program needs {needed} words of memory; the classic machine has at most {MAX_MEMORY}")
    return 1 << max(needed - 1, 0).bit_length()


def initial_state(words: Sequence[int], m: int, bits: int, input_bytes: bytes = b"") -> ClassicState:
    """``words`` at addresses 0.. (each read as an N-bit pattern, so 65535 and -1 are the same 16-bit
    word), zeros up to ``m``, pc 0, nothing read or written."""
    if bits not in WORD_BITS:
        raise ValueError(f"classic SUBLEQ words have 16 or 32 bits, not {bits!r}")
    if not (isinstance(m, int) and 0 < m <= MAX_MEMORY and m & (m - 1) == 0):
        raise ValueError(f"the memory size must be a power of two up to {MAX_MEMORY}, not {m!r}")
    if len(words) > m:
        raise FleqError(ErrorCode.PROGRAM_TOO_LARGE,
                        f"the program has {len(words)} words, more than the machine's memory of {m}")
    low, high = -(1 << (bits - 1)), (1 << bits) - 1
    bad = next((w for w in words if not (isinstance(w, int) and low <= w <= high)), None)
    if bad is not None:
        raise ValueError(f"{bad!r} is not a {bits}-bit word")
    memory = [wrap(w, bits) for w in words] + [0] * (m - len(words))
    return ClassicState(memory, 0, bits, bytes(input_bytes))


def step(state: ClassicState) -> None:
    """Execute one instruction in place (nothing when halted)."""
    run(state, 1)


def run(state: ClassicState, max_steps: int, on_output: Callable[[int], object] | None = None) -> ClassicState:
    """Execute until the machine halts or ``max_steps`` more steps have run; ``on_output`` is called
    with each output byte as it is written (for streaming). Returns ``state``, changed in place."""
    mem, pc, steps, position = state.mem, state.pc, state.steps, state.input_position
    tape, output = state.input, state.output
    m, mask, half = len(mem), (1 << state.bits) - 1, 1 << (state.bits - 1)
    stop, done = steps + max_steps, steps
    try:
        for done in range(steps, stop):
            if pc < 0:
                break
            if pc + 2 >= m:
                raise AddressFault(done + 1, pc, max(pc, m), m)
            a, b, c = mem[pc], mem[pc + 1], mem[pc + 2]
            if a == -1:  # -1 is the I/O address (a literal: quicker than a global name in this loop)
                if b & mask >= m:
                    raise AddressFault(done + 1, pc, b & mask, m)
                mem[b & mask] = tape[position] if position < len(tape) else -1
                position += position < len(tape)
                pc += 3
            elif b == -1:
                if a & mask >= m:
                    raise AddressFault(done + 1, pc, a & mask, m)
                output.append(mem[a & mask] & 0xFF)
                if on_output is not None:
                    on_output(output[-1])
                pc += 3
            else:
                a &= mask
                b &= mask
                if a >= m or b >= m:
                    raise AddressFault(done + 1, pc, a if a >= m else b, m)
                r = mem[b] - mem[a]
                if not -half <= r < half:
                    r = ((r + half) & mask) - half
                if r <= 0 and c == pc and r == mem[b]:  # changes nothing, and would forever: a fixed point
                    state.fixed = True
                    break
                mem[b] = r
                if r <= 0:
                    pc = c
                    continue
                pc += 3
            if pc >= half:  # pc + 3 wrapped past the top of the signed range: a negative pc, a halt
                pc -= mask + 1
        else:
            done = stop
    finally:
        state.pc, state.steps, state.input_position = pc, done, position
    return state
