"""Binary encodings in {-1, +1}: positional codes and N-bit two's complement integers.

Bit k (least significant first) is +1 for a one and -1 for a zero. Positional code of column i:
the log2(n) bits of i. For i != j the codes differ in at least one bit, so
p_i . p_i = log2(n) and p_i . p_j <= log2(n) - 2: the dot product singles out the matching column.
"""

from __future__ import annotations

import numpy as np


def encode_unsigned(value: int, width: int) -> np.ndarray:
    """The ``width`` low bits of ``value`` as a {-1,+1} vector, least significant bit first."""
    bits = (value >> np.arange(width)) & 1
    return (2 * bits - 1).astype(np.float64)


def decode_unsigned(code: np.ndarray) -> int:
    """Inverse of :func:`encode_unsigned`; each entry is read by its sign."""
    bits = (np.asarray(code) > 0).astype(np.int64)
    return int(np.sum(bits << np.arange(len(bits))))


def encode_signed(value: int, width: int) -> np.ndarray:
    """Two's complement of ``value`` in ``width`` bits."""
    return encode_unsigned(value & ((1 << width) - 1), width)


def decode_signed(code: np.ndarray) -> int:
    width = len(code)
    u = decode_unsigned(code)
    return u - (1 << width) if u >> (width - 1) else u


def position_codes(columns: int) -> np.ndarray:
    """The (log2 n) x n matrix whose column i is the positional code of column i."""
    width = columns.bit_length() - 1
    i = np.arange(columns)
    bits = (i[None, :] >> np.arange(width)[:, None]) & 1
    return (2 * bits - 1).astype(np.float64)
