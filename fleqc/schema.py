"""Explicit checks of the JSON metadata stored in cards and weights files.

Metadata comes from a file a user may have edited, so every field is checked for its type and
range before anything uses it: a wrong field is a :class:`SchemaError` naming its path
(``regions.memory[0]``), which the readers turn into a ``bad-card`` or ``bad-weights`` error. The
checks are plain functions rather than a schema library: the two formats have a dozen fields, and
the cross-field rules (regions inside n, symbols inside their region) need code anyway.

JSON numbers that are not integers (``1e6``, ``Infinity``, ``5.0``) and booleans are never accepted
where an integer is expected.
"""

from __future__ import annotations

from typing import Any


class SchemaError(ValueError):
    """A metadata field of the wrong type or out of range; the message starts with its path."""


def field(data: Any, key: str, path: str) -> Any:
    """``data[key]``, where ``data`` must be a JSON object holding ``key``."""
    if not isinstance(data, dict):
        raise SchemaError(f"{path or 'metadata'} must be an object, got {_kind(data)}")
    if key not in data:
        raise SchemaError(f"{_join(path, key)} is missing")
    return data[key]


def integer(value: Any, path: str, lo: int | None = None, hi: int | None = None) -> int:
    """An integer (not a bool, not a float) with ``lo <= value <= hi``."""
    if type(value) is not int:
        raise SchemaError(f"{path} must be an integer, got {_kind(value)}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise SchemaError(f"{path} is {value}, outside {_range(lo, hi)}")
    return value


def string(value: Any, path: str, max_length: int = 4096) -> str:
    if not isinstance(value, str):
        raise SchemaError(f"{path} must be a string, got {_kind(value)}")
    if len(value) > max_length:
        raise SchemaError(f"{path} is {len(value)} characters long, more than {max_length}")
    return value


def array(value: Any, path: str, length: int | None = None, max_length: int | None = None) -> list:
    """A JSON array (of exactly ``length`` or at most ``max_length`` items when given)."""
    if not isinstance(value, list):
        raise SchemaError(f"{path} must be an array, got {_kind(value)}")
    if length is not None and len(value) != length:
        raise SchemaError(f"{path} has {len(value)} items; expected {length}")
    if max_length is not None and len(value) > max_length:
        raise SchemaError(f"{path} has {len(value)} items, more than {max_length}")
    return value


def integers(value: Any, path: str, lo: int | None = None, hi: int | None = None, **sizes: int) -> list[int]:
    """An array of integers, each within ``lo .. hi``."""
    return [integer(x, f"{path}[{i}]", lo, hi) for i, x in enumerate(array(value, path, **sizes))]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _range(lo: int | None, hi: int | None) -> str:
    if lo is None:
        return f"<= {hi}"
    if hi is None:
        return f">= {lo}"
    return f"{lo}..{hi}"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if value is None:
        return "null"
    return "an array" if isinstance(value, list) else "an object"
