"""The classic machine: von Neumann SUBLEQ with input and output, as the SUBLEQ community writes for.

Code and data share one memory, so programs index arrays and modify themselves; A = -1 reads a byte,
B = -1 writes one; a jump to a negative address halts. Its parts: the configuration
(:mod:`.config`), the row blocks and column regions (:mod:`.layout`), the weight recipe
(:mod:`.weights`, seven layers), the card codec (:mod:`.card`), the run loop that streams the
output tape (:mod:`.run`), the program (:mod:`.program`) read from raw images and sqasm assembly
(:mod:`fleqc.machines.classic.image`, :mod:`fleqc.machines.classic.sqasm`), and the reference interpreter
(:mod:`fleqc.machines.classic.reference`).

The card uses the generic :class:`fleqc.card.card.Card`: scratch column 0, memory columns
1..m, and an empty instruction region (the instructions are memory words; the pc register holds
an address); the tapes follow the memory.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from fleqc.errors import ErrorCode, FleqError, Span, shown
from fleqc.machines.classic import reference as interpreter
from fleqc.state import RunResult, State
from fleqc.card.card import Card
from fleqc.card.columns import ColumnRegions
from fleqc.card.rows import RowSpace
from fleqc.machines.about import BITS, CLASSIC, INPUT, MEMORY, OUTPUT  # noqa: F401 (the options, as before)
from fleqc.machines.base import Machine, Options
from fleqc.steps import Names, Reader, TraceEvent, access
from fleqc.machines.classic import card as codec
from fleqc.machines.classic.config import DEFAULT_OUTPUT_TAPE, MAX_TAPE, ClassicConfig, config_for
from fleqc.machines.classic.layout import classic_rows
from fleqc.machines.classic.program import ClassicProgram
from fleqc.machines.classic.run import OutputTape
from fleqc.machines.classic.weights import LAYER_KINDS
from fleqc.transformer import TernaryCheck
from fleqc.transformer.health import LoopCheck
from fleqc.transformer.layers import LoopedTransformer

DEFAULT_BITS = 32
DEFAULT_MEMORY = 1 << 12




def _given(options: Options, name: str, default: int) -> int:
    value = options.get(name)
    return default if value is None else value


def check_input_size(given: Optional[bytes]) -> None:
    """The input tape of the largest classic machine holds MAX_TAPE - 1 bytes (its last cell is the
    end of input): a longer input is refused on both backends alike."""
    if given is not None and len(given) > MAX_TAPE - 1:
        raise FleqError(ErrorCode.PROGRAM_TOO_LARGE, f"the input has {len(given):,} bytes or more; the input tape "
                                                     f"holds at most {MAX_TAPE - 1:,}")


class ClassicMachine(Machine):
    name = CLASSIC.name  # name, title, default columns, options and suffixes: fleqc.machines.about
    title = CLASSIC.title
    config_class = ClassicConfig
    layer_kinds = LAYER_KINDS
    default_columns = CLASSIC.default_columns
    options = CLASSIC.options
    suffixes = CLASSIC.suffixes
    language = None
    reference = interpreter
    streams_output = True

    # -- programs and configurations ----------------------------------------------------------

    def compile(self, text: str, path: str, options: Options, language: Any = None) -> ClassicProgram:
        from fleqc.machines.classic.source import load_image  # the assembler loads lark: only when needed

        bits = _given(options, "bits", DEFAULT_BITS)
        ClassicConfig(bits=bits)  # a width the machine does not have (--bits 0) is refused, never another
        given = options.get("input")
        check_input_size(given)
        program = ClassicProgram.of_image(load_image(text, name=path, bits=bits), bits)
        return program if given is None else ClassicProgram(program.words, bits, program.symbols,
                                                            program.source_name, bytes(given),
                                                            origins=program.origins)

    def config_for(self, program: ClassicProgram, columns: Optional[int], options: Options) -> ClassicConfig:
        given = options.get("input")
        config = config_for(len(program.words), len(program.input if given is None else given), program.bits,
                            memory=options.get("memory"))
        if columns is not None and columns != config.columns:
            raise FleqError(ErrorCode.BAD_CONFIG, f"the classic machine's columns follow from its memory and tapes "
                                                  f"({config.columns:,} here); use --memory instead of --columns")
        return config

    def config_from_options(self, columns: Optional[int], options: Options) -> ClassicConfig:
        return ClassicConfig(bits=_given(options, "bits", DEFAULT_BITS), memory=_given(options, "memory", DEFAULT_MEMORY))

    # -- weights -------------------------------------------------------------------------------

    def rows(self, config: ClassicConfig) -> RowSpace:
        return classic_rows(config)

    def build(self, config: ClassicConfig) -> LoopedTransformer:
        from fleqc.machines.classic.weights import build_classic_machine

        return build_classic_machine(config)

    # -- cards ---------------------------------------------------------------------------------

    def encode(self, program: ClassicProgram, config: ClassicConfig, start: int = 0) -> Card:
        X = codec.encode(program.words, program.input, config, start)
        rows = classic_rows(config)
        regions = ColumnRegions((0, 1), (1, 1 + config.memory), (0, 0), config.columns)
        return Card(X, config, rows, regions, dict(program.symbols), program.source_name, machine=self)

    def decode(self, card: Card) -> ClassicProgram:
        return ClassicProgram(tuple(self.read_memory(card, card.X)), card.config.bits, dict(card.symbols),
                              card.source_name, codec.read_input(card.X, card.config))

    def read_cell(self, card: Card, X: np.ndarray, address: int) -> int:
        return codec.Reader(card.config).word(X, 1 + address)

    def read_memory(self, card: Card, X: np.ndarray) -> list:
        return codec.Reader(card.config).memory(X)

    def check_card(self, card: Card) -> tuple[ClassicProgram, int]:
        """A classic card is exactly the card of the program and input it holds, started at its pc."""
        config = card.config
        if card.X.shape != (classic_rows(config).d, config.columns) or not np.all(np.isfinite(card.X)):
            raise FleqError(ErrorCode.BAD_CARD, f"X is not a finite {classic_rows(config).d} x {config.columns} matrix")
        pc = card.read_pc()
        program = self.decode(card)
        expected = self.encode(program, config, pc).X
        differ = np.argwhere(card.X != expected)
        if len(differ):
            row, column = (int(i) for i in differ[0])
            raise card.bad_entry(card.rows.labels()[row], column, f"holds {shown(card.X[row, column])}, but the "
                                                                  f"card of this program and input holds "
                                                                  f"{shown(expected[row, column])}")
        return program, pc

    def significand_bits(self, config: ClassicConfig) -> int:
        """As SUBLEQ's: max(N, log2 n) + 5 (measured: 16-bit words exact in float32, 32-bit not)."""
        return max(config.bits, (config.columns - 1).bit_length()) + 5

    def describe_card(self, config: ClassicConfig) -> str:
        return f"{config.bits}-bit words, tapes of {config.input_tape} and {config.output_tape} cells"

    # -- runs ----------------------------------------------------------------------------------

    def run_reference(self, program: ClassicProgram, max_steps: int, pc: int, options: Options) -> RunResult:
        given = options.get("input")
        check_input_size(given)  # as the transformer's tape: refused on both backends alike
        state = interpreter.initial_state(list(program.words), memory_for(program, options), program.bits,
                                          program.input if given is None else given)
        state.pc = pc
        sink = _sink(options.get("output"))
        try:
            interpreter.run(state, max_steps, on_output=sink)
        except interpreter.AddressFault as fault:
            raise located_fault(fault, program.origins, program.source_name, program.bits) from None
        return RunResult(state.halted, state.steps, State(state.pc, tuple(state.mem)))

    def reference_stepper(self, program: ClassicProgram, pc: int, options: Options) -> "ClassicStepper":
        given = options.get("input")
        check_input_size(given)
        state = interpreter.initial_state(list(program.words), memory_for(program, options), program.bits,
                                          program.input if given is None else given)
        state.pc = pc
        return ClassicStepper(state, _sink(options.get("output")), program)

    # -- observing -----------------------------------------------------------------------------

    def describe_step(self, program: ClassicProgram, names: Names, step: int, pc: int, next_pc: int,
                      before: Reader, after: Reader) -> TraceEvent:
        """The three words A, B, C at ``pc``: input (A = -1) writes mem[B]; output (B = -1) reads
        mem[A]; otherwise mem[B] -= mem[A], branching to C when the result is <= 0. The next pc is
        the instruction's (C, or pc + 3 wrapped to N bits), as the reference has it: the
        transformer keeps a halt as a flag beside the pc register, not as a negative pc."""
        a, b, c = before(pc), before(pc + 1), before(pc + 2)
        mask, half = (1 << program.bits) - 1, 1 << (program.bits - 1)
        if a == -1:
            text, reads, writes, branch = f"in {names.cell(b & mask)}", (), (access("b", b & mask, names, after),), False
        elif b == -1:
            byte = access("a", a & mask, names, before)
            text, reads, writes, branch = f"out {names.cell(a & mask)} ({byte.value & 0xFF:#04x})", (byte,), (), False
        else:
            written = access("b", b & mask, names, after)
            text = f"subleq {names.cell(a & mask)}, {names.cell(b & mask)}, {c}"
            reads = (access("a", a & mask, names, before), access("b", b & mask, names, before))
            writes, branch = (written,), written.value <= 0
        following = c if branch else ((pc + 3 + half) & mask) - half
        return TraceEvent(step, pc, following, bool(branch), c, program.source_name, 0, "", f"{a} {b} {c}: {text}",
                          reads, writes)

    def prepare(self, card: Card, options: Options) -> Card:
        given = options.get("input")
        if given is None:
            return card
        return replace(card, X=codec.write_input(card.X, bytes(given), card.config))

    def health_check(self, model: LoopedTransformer, card: Card) -> "ClassicHealthCheck":
        return ClassicHealthCheck(model, card)

    def observer(self, card: Card, options: Options) -> Optional[OutputTape]:
        sink = _sink(options.get("output"))
        return None if sink is None else OutputTape(card.config, card.X, sink)


def memory_for(program: ClassicProgram, options: Options) -> int:
    """The memory the transformer would have for ``program`` (the reference runs on the same)."""
    return config_for(len(program.words), 0, program.bits, memory=options.get("memory"),
                      output_tape=DEFAULT_OUTPUT_TAPE).memory


def _sink(output: Any):
    """A function taking each output byte: into a bytearray, or written to a binary stream at once."""
    if output is None:
        return None
    if isinstance(output, bytearray):
        return output.append

    def write(byte: int) -> None:
        output.write(bytes((byte,)))
        output.flush()

    return write


class ClassicStepper:
    """The classic reference interpreter stepped one instruction at a time (its output to ``sink``)."""

    def __init__(self, state: interpreter.ClassicState, sink: Optional[Callable[[int], None]],
                 program: Optional[ClassicProgram] = None) -> None:
        self.state, self.sink, self.program = state, sink, program

    @property
    def pc(self) -> int:
        return self.state.pc

    def cell(self, address: int) -> int:
        return self.state.mem[address]

    def memory(self) -> list:
        return list(self.state.mem)

    def step(self) -> bool:
        before = self.state.steps
        try:
            interpreter.run(self.state, 1, on_output=self.sink)
        except interpreter.AddressFault as fault:
            p = self.program
            raise (fault if p is None else located_fault(fault, p.origins, p.source_name, p.bits)) from None
        return self.state.steps > before

    def halted(self) -> bool:
        return self.state.halted


class ClassicHealthCheck:
    """After every pass: the ternary rows, and the fault flag (an address outside memory: the
    reference refuses the same step, or the next one after a jump out of memory)."""

    def __init__(self, model: LoopedTransformer, card: Card) -> None:
        self.ternary = TernaryCheck(model.ternary_rows, model.row_labels)
        self.reader = codec.Reader(card.config)
        self.card = card
        self.pc = card.read_pc()

    @property
    def loop_check(self) -> LoopCheck:
        """The engine's compiled loop tests the ternary rows and the fault flag after every pass."""
        return LoopCheck(ternary=self.ternary.loop_check.ternary, limits=((self.reader.rows["fault"][0], 0, 0.5),))

    def __call__(self, X: np.ndarray, step: int, columns: np.ndarray | None = None) -> None:
        self.ternary(X, step, columns)
        if self.reader.flag(X, "fault"):
            m = self.card.config.memory
            span = word_origin((), self.card.source_name, self.pc, self.card.config.bits)
            raise FleqError(ErrorCode.ADDRESS_FAULT, f"machine fault at step {step}: the instruction at pc {self.pc} "
                                                     f"uses an address outside the memory (0..{m - 1}){MEMORY_HINT}",
                            span)
        self.pc = self.reader.register(X, "pc")


MEMORY_HINT = ("; the memory is the program's image rounded up to a power of two unless --memory WORDS "
               "gives the machine more")


def word_origin(origins: tuple, source_name: str, address: int, bits: int) -> Optional[Span]:
    """Where the word at ``address`` was written (``origins``, or the source file assembled again);
    None for a raw image's word or a source that cannot be read."""
    if not origins and Path(source_name).suffix.lower() in (".sq", ".asq"):
        from fleqc.machines.classic.source import load_image

        try:
            origins = tuple(load_image(source_name, bits=bits).origins or ())
        except (FleqError, OSError, ValueError):
            return None
    return origins[address] if 0 <= address < len(origins) else None


def located_fault(fault: "interpreter.AddressFault", origins: tuple, source_name: str, bits: int):
    """The reference's address fault at the instruction's own line in the source, with the hint."""
    fault.span = fault.span or word_origin(origins, source_name, fault.pc, bits)
    if MEMORY_HINT not in fault.message:
        fault.message += MEMORY_HINT
        fault.args = (fault.message,)
    return fault


MACHINE = ClassicMachine()
