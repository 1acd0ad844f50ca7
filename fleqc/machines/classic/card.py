"""Punch cards of the classic machine: an image and an input, laid out as X; and X read back.

Memory word a is column 1 + a; words past the image are 0. The input tape holds the input bytes and
then -1 (end of input) in every remaining cell; the output tape starts as zeros.
"""

from __future__ import annotations

import numpy as np

from fleqc.errors import ErrorCode, FleqError
from fleqc.card.codes import decode_signed, decode_unsigned, encode_unsigned
from fleqc.machines.classic.config import END_OF_INPUT, ClassicConfig
from fleqc.machines.classic.layout import ClassicRegions, classic_rows


def encode(words, input_bytes: bytes, config: ClassicConfig, start: int = 0) -> np.ndarray:
    """The punch card X (d x n) that starts ``words`` at pc ``start`` with ``input_bytes`` on the input tape."""
    rows, regions = classic_rows(config), ClassicRegions.of(config)
    N, n = config.bits, config.columns
    if len(words) > config.memory:
        raise FleqError(ErrorCode.PROGRAM_TOO_LARGE,
                        f"the image has {len(words):,} words; the machine has {config.memory:,}")
    low, high = -(1 << (N - 1)), (1 << N) - 1
    X = np.zeros((rows.d, n))
    X[rows["one"][0]] = 1.0
    X[rows["scratch"][0], 0] = 1.0
    pos = rows["pos"]
    for region, (lo, hi) in (("is_mem", regions.memory), ("is_in", regions.input), ("is_out", regions.output)):
        X[rows[region][0], lo:hi] = 1.0
        codes = (np.arange(hi - lo)[None, :] >> np.arange(pos.size)[:, None]) & 1
        X[pos.slice, lo:hi] = 2.0 * codes - 1.0
    values = np.zeros(n, dtype=np.int64)
    for address, word in enumerate(words):
        if not low <= int(word) <= high:
            raise FleqError(ErrorCode.LITERAL_RANGE, f"word {address} of the image is {word}, which does not fit "
                                                     f"in {N} bits")
        values[regions.memory_column(address)] = int(word)
    mask = (1 << N) - 1
    bits = ((values[None, :] & mask) >> np.arange(N)[:, None]) & 1
    X[rows["mem"].slice, 1:] = (2.0 * bits - 1.0)[:, 1:]
    X[rows["pc"].slice, 0] = encode_unsigned(start, rows["pc"].size)
    X[rows["ip"].slice, 0] = encode_unsigned(0, rows["ip"].size)
    X[rows["op"].slice, 0] = encode_unsigned(0, rows["op"].size)
    return write_input(X, input_bytes, config)


class Reader:
    """Reads registers, memory words and output cells of a classic card X (cheaply, per pass)."""

    def __init__(self, config: ClassicConfig) -> None:
        self.config, self.rows, self.regions = config, classic_rows(config), ClassicRegions.of(config)
        self._mem = self.rows["mem"].slice
        self._weights = 1 << np.arange(config.bits, dtype=np.int64)

    def register(self, X: np.ndarray, name: str) -> int:
        return decode_unsigned(X[self.rows[name].slice, 0])

    def flag(self, X: np.ndarray, name: str) -> bool:
        return bool(X[self.rows[name][0], 0] > 0.5)

    def word(self, X: np.ndarray, column: int) -> int:
        return decode_signed(X[self._mem, column])

    def memory(self, X: np.ndarray) -> list[int]:
        lo, hi = self.regions.memory
        bits = (X[self._mem, lo:hi] > 0).astype(np.int64)
        unsigned = self._weights @ bits
        signed = np.where(unsigned >> (self.config.bits - 1), unsigned - (1 << self.config.bits), unsigned)
        return [int(v) for v in signed]

    def output_byte(self, X: np.ndarray, position: int) -> int:
        return self.word(X, self.regions.output[0] + position) & 0xFF



def write_input(X: np.ndarray, input_bytes: bytes, config: ClassicConfig) -> np.ndarray:
    """A copy of X whose input tape holds ``input_bytes`` and then -1 in every other cell."""
    rows, regions = classic_rows(config), ClassicRegions.of(config)
    if len(input_bytes) >= config.input_tape:
        raise FleqError(ErrorCode.PROGRAM_TOO_LARGE, f"the input has {len(input_bytes):,} bytes; the card's input "
                                                     f"tape holds {config.input_tape - 1:,} (build it with the input)")
    tape = np.full(config.input_tape, END_OF_INPUT, dtype=np.int64)
    tape[: len(input_bytes)] = np.frombuffer(bytes(input_bytes), dtype=np.uint8)
    bits = ((tape[None, :] & ((1 << config.bits) - 1)) >> np.arange(config.bits)[:, None]) & 1
    X = np.array(X)
    X[rows["mem"].slice, regions.input[0]:regions.input[1]] = 2.0 * bits - 1.0
    return X


def read_input(X: np.ndarray, config: ClassicConfig) -> bytes:
    """The bytes on the input tape, up to the first end-of-input cell."""
    reader = Reader(config)
    lo, hi = reader.regions.input
    out = bytearray()
    for column in range(lo, hi):
        value = reader.word(X, column)
        if not 0 <= value <= 255:
            break
        out.append(value)
    return bytes(out)
