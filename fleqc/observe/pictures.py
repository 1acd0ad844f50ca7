"""Small PNG pictures made with numpy and zlib alone (no matplotlib): X and attention maps for the
HTML report, where every image is inlined as a data URI.

Colours of X: blue for negative, white for 0, red for positive, full colour at |x| = 1 (so the
-1/0/+1 codes are clear), then darker on a log scale up to the largest entry (so FLEQ values of
any size remain visible). Attention weights: dark (0) to yellow (1), as w^0.25 (so 1/31 shows).
"""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np


def png_bytes(rgb: np.ndarray) -> bytes:
    """An 8-bit RGB PNG of an (h, w, 3) uint8 array."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


NEGATIVE = np.array([33, 102, 172], dtype=np.float64)
POSITIVE = np.array([178, 24, 43], dtype=np.float64)
WHITE = np.array([247, 247, 247], dtype=np.float64)


def x_rgb(X: np.ndarray) -> np.ndarray:
    X = np.nan_to_num(np.asarray(X, dtype=np.float64))
    size = np.abs(X)
    top = max(2.0, float(np.max(size)))
    t = np.minimum(size, 1.0)[..., None]  # white to full colour up to |x| = 1
    darker = (np.log(np.maximum(size, 1.0)) / np.log(top))[..., None]  # then darker up to the largest
    colour = np.where((X > 0)[..., None], POSITIVE, NEGATIVE) * (1 - 0.7 * darker)
    return np.clip(WHITE * (1 - t) + colour * t, 0, 255).astype(np.uint8)


ATTENTION_GAMMA = 0.25  # colour = w^0.25: an even spread over 31 columns (1/31) is far from 0's colour


def attention_rgb(A: np.ndarray) -> np.ndarray:
    w = np.clip(np.nan_to_num(np.asarray(A, dtype=np.float64)), 0.0, 1.0)[..., None] ** ATTENTION_GAMMA
    dark, light = np.array([40, 20, 70], dtype=np.float64), np.array([253, 231, 37], dtype=np.float64)
    return (dark * (1 - w) + light * w).astype(np.uint8)


def x_png(X: np.ndarray) -> bytes:
    return png_bytes(x_rgb(X))


def attention_png(A: np.ndarray) -> bytes:
    return png_bytes(attention_rgb(A))
