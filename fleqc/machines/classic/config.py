"""The classic machine's configuration: everything its weights depend on, and nothing else.

One configuration = one frozen transformer. A program fits when its image and the memory it uses
fit in ``memory`` words; its input fits when it is shorter than ``input_tape`` cells (the last cell
always holds the end-of-input value -1).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from fleqc.errors import ErrorCode, FleqError
from fleqc.machines.classic.reference import (
    WORD_BITS,
)  # the reference's word widths: howerj's 16-bit VM and 32-bit signed

MIN_WORDS, MAX_WORDS = 8, 1 << 16
MIN_TAPE, MAX_TAPE = 2, 1 << 12
DEFAULT_INPUT_TAPE = 64
DEFAULT_OUTPUT_TAPE = 64
IO_ADDRESS = -1  # A = -1 reads a byte, B = -1 writes one; as an unsigned 16-bit word this is 0xFFFF
END_OF_INPUT = -1  # what a read past the end of the input gives (0xFFFF in 16 bits)


def _power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


@dataclass(frozen=True)
class ClassicConfig:
    """The von Neumann SUBLEQ computer with input and output.

    ``bits``: word width N (values are N-bit two's complement, arithmetic wraps); ``memory``: words
    of memory, a power of two <= 2^N (code and data share it); ``input_tape``/``output_tape``: cells
    of the input and output tapes, powers of two. The output tape is a ring that the host drains
    after every pass.
    """

    bits: int = 32
    memory: int = 1 << 12
    input_tape: int = DEFAULT_INPUT_TAPE
    output_tape: int = DEFAULT_OUTPUT_TAPE
    kind: str = "classic"

    def __post_init__(self) -> None:
        if self.bits not in WORD_BITS:
            raise FleqError(ErrorCode.BAD_CONFIG, f"--bits must be one of {WORD_BITS} for the classic machine, got {self.bits}")
        if not (_power_of_two(self.memory) and MIN_WORDS <= self.memory <= min(MAX_WORDS, 1 << self.bits)):
            raise FleqError(ErrorCode.BAD_CONFIG, f"--memory must be a power of two between {MIN_WORDS} and "
                                                  f"{min(MAX_WORDS, 1 << self.bits)} words, got {self.memory}")
        for name in ("input_tape", "output_tape"):
            cells = getattr(self, name)
            if not (_power_of_two(cells) and MIN_TAPE <= cells <= MAX_TAPE):
                raise FleqError(ErrorCode.BAD_CONFIG, f"--{name.replace('_', '-')} must be a power of two between "
                                                      f"{MIN_TAPE} and {MAX_TAPE} cells, got {cells}")

    @property
    def address_bits(self) -> int:
        """k = log2(memory): the width of pc and of the addresses the machine looks up."""
        return self.memory.bit_length() - 1

    @property
    def input_bits(self) -> int:
        return self.input_tape.bit_length() - 1

    @property
    def output_bits(self) -> int:
        return self.output_tape.bit_length() - 1

    @property
    def columns(self) -> int:
        """n = 1 scratchpad + memory + input tape + output tape."""
        return 1 + self.memory + self.input_tape + self.output_tape

    def to_dict(self) -> dict:
        return {**asdict(self), "columns": self.columns}

    @classmethod
    def from_dict(cls, data: dict) -> "ClassicConfig":
        if data.get("kind") != "classic":
            raise FleqError(ErrorCode.BAD_CONFIG, f"unknown machine kind {data.get('kind')!r}")
        try:
            return cls(bits=int(data["bits"]), memory=int(data["memory"]), input_tape=int(data["input_tape"]),
                       output_tape=int(data["output_tape"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise FleqError(ErrorCode.BAD_CONFIG, f"malformed classic machine configuration: {exc}") from None

    def describe(self) -> str:
        return (f"classic machine: {self.memory:,} words of {self.bits} bits, input tape {self.input_tape}, "
                f"output tape {self.output_tape} (n={self.columns:,} columns)")


def smallest_power_of_two(needed: int, at_least: int) -> int:
    size = at_least
    while size < needed:
        size *= 2
    return size


def config_for(words: int, input_bytes: int, bits: int, memory: int | None = None,
               output_tape: int = DEFAULT_OUTPUT_TAPE) -> ClassicConfig:
    """The smallest configuration that holds ``words`` words of image and ``input_bytes`` of input
    (plus the end-of-input cell); ``memory`` overrides the memory size (programs that use memory
    past their image, e.g. as a stack, need it)."""
    if memory is None:
        if words > MAX_WORDS:
            raise FleqError(ErrorCode.PROGRAM_TOO_LARGE, f"the image has {words:,} words; the classic machine has at "
                                                         f"most {MAX_WORDS:,} words of memory")
        memory = smallest_power_of_two(words, MIN_WORDS)
    else:
        ClassicConfig(bits=bits, memory=memory)  # a memory size the machine cannot have: BAD_CONFIG first
    if words > memory:
        raise FleqError(ErrorCode.PROGRAM_TOO_LARGE, f"the image has {words:,} words, more than the machine's "
                                                     f"{memory:,} words of memory")
    if input_bytes + 1 > MAX_TAPE:
        raise FleqError(ErrorCode.PROGRAM_TOO_LARGE, f"the input has {input_bytes:,} bytes; the input tape holds "
                                                     f"at most {MAX_TAPE - 1:,}")
    return ClassicConfig(bits=bits, memory=memory,
                         input_tape=smallest_power_of_two(input_bytes + 1, max(MIN_TAPE, DEFAULT_INPUT_TAPE)),
                         output_tape=output_tape)
