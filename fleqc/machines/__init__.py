"""The registry of machines: one line per machine, naming the package that defines it.

A machine package exposes ``MACHINE``, an instance of :class:`fleqc.machines.base.Machine`. The
packages are imported on first use, so importing the registry is cheap and loads neither the
weight recipes nor the front end, and the modules a machine is made of may themselves ask the
registry for machines without an import cycle.
"""

from __future__ import annotations

import functools
import importlib
from pathlib import Path
from typing import Any

from fleqc.errors import ErrorCode, FleqError
from fleqc.machines.base import Machine
from fleqc.schema import SchemaError

# name -> package; the first machine is the default of `fleqc weights` and `.fleq` without `.machine`
REGISTRY: dict[str, str] = {
    "subleq": "fleqc.machines.subleq",
    "fleq": "fleqc.machines.fleq",
    "classic": "fleqc.machines.classic",
}
DEFAULT = next(iter(REGISTRY))


def machine(name: Any) -> Machine:
    """The machine registered as ``name``; BAD_CONFIG for anything else (names come from files)."""
    if not isinstance(name, str) or name not in REGISTRY:
        raise FleqError(ErrorCode.BAD_CONFIG, f"unknown machine kind {name!r}")
    return _load(name)


@functools.cache
def _load(name: str) -> Machine:
    found = importlib.import_module(REGISTRY[name]).MACHINE
    if found.name != name:
        raise ValueError(f"{REGISTRY[name]} registers {found.name!r}, listed as {name!r}")
    return found


def machines() -> list[Machine]:
    """Every registered machine, in registry order."""
    return [machine(name) for name in REGISTRY]


def machine_of(subject: Any) -> Machine:
    """The machine of a configuration, card or program (by its ``kind`` or ``machine`` name)."""
    config = getattr(subject, "config", subject)
    return machine(getattr(config, "kind", None) or getattr(subject, "machine", None))


def config_from_dict(data: Any) -> Any:
    """The configuration a card or weights file names (by its ``kind``); BAD_CONFIG if it names
    no registered machine or a field is missing or mistyped."""
    try:
        return machine(data.get("kind") if isinstance(data, dict) else None).config_from_dict(data)
    except SchemaError as exc:
        raise FleqError(ErrorCode.BAD_CONFIG, str(exc)) from None


def language_machines() -> list[Machine]:
    """The machines a ``.machine`` directive of the FLEQ language may name."""
    return [m for m in machines() if m.language is not None]


def machine_for_file(path: str | Path) -> Machine:
    """The first machine that claims the suffix of ``path`` (FLEQ language files: the default
    machine, whose front end lets the ``.machine`` directive choose)."""
    suffix = Path(path).suffix
    for candidate in machines():
        if suffix in candidate.suffixes:
            return candidate
    return machine(DEFAULT)


@functools.lru_cache(maxsize=32)
def weights_for(config: Any) -> Any:
    """The weights of the machine ``config`` (cached: building is deterministic)."""
    return machine_of(config).build(config)
