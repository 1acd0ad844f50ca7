"""The registry of machines: one line per machine, naming the package that defines it.

A machine package exposes ``MACHINE``, an instance of :class:`fleqc.machines.base.Machine`. The
packages are imported on first use, so importing the registry is cheap and loads neither the
weight recipes nor the front end. Nothing below the registry looks machines up: the registry
hands them down (the front end receives the :func:`language`, a card file is read with
:data:`MACHINES`), so the services here are the ones that pick a machine by name, suffix or kind:
compiling a file, laying a program out as a card, loading a card, building weights.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from fleqc.card.card import Card
from fleqc.card.check import load_card_file
from fleqc.errors import ErrorCode, FleqError
from fleqc.machines.about import ABOUT, About
from fleqc.machines.base import Machine
from fleqc.safe_io import read_source
from fleqc.schema import SchemaError

# name -> package; the first machine is the default of `fleqc weights` and `.fleq` without `.machine`
REGISTRY: dict[str, str] = {
    "subleq": "fleqc.machines.subleq",
    "fleq": "fleqc.machines.fleq",
    "classic": "fleqc.machines.classic",
}
DEFAULT = next(iter(REGISTRY))

# languages above the FLEQ language, by suffix -> the package that compiles them to it (imported on
# first use; its compile_text(text, path, assemble) gets the FLEQ language front end as ``assemble``)
LANGUAGES: dict[str, str] = {".flow": "fleqc.lang"}


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


def about(name: str) -> About:
    """What the command line needs of machine ``name`` (title, default columns, suffixes, options)
    without importing its package where fleqc.machines.about describes it; else from the machine."""
    known = ABOUT.get(name)
    if known is not None and REGISTRY.get(name) == f"fleqc.machines.{name}":
        return known
    m = machine(name)
    return About(m.name, m.title, m.default_columns, tuple(m.suffixes), tuple(m.options), m.language is not None)


def language_machines() -> list[Machine]:
    """The machines a ``.machine`` directive of the FLEQ language may name."""
    return [machine(name) for name in language_names()]


def language_names() -> tuple[str, ...]:
    """The names of the machines a ``.machine`` directive may name (no machine package imported)."""
    return tuple(name for name in REGISTRY if about(name).fleq_language)


def machine_for_file(path: str | Path) -> Machine:
    """The first machine that claims the suffix of ``path`` (FLEQ language files: the default
    machine, whose front end lets the ``.machine`` directive choose)."""
    suffix = Path(path).suffix
    for name in REGISTRY:
        if suffix in about(name).suffixes:
            return machine(name)
    return machine(DEFAULT)


@functools.lru_cache(maxsize=32)
def weights_for(config: Any) -> Any:
    """The weights of the machine ``config`` (cached: building is deterministic); a machine that
    builds slowly (``cache_weights``) keeps them on disk between processes as well
    (fleqc.transformer.weights_io.cached_build: exactly the builder's, never stale)."""
    chosen = machine_of(config)
    if not chosen.cache_weights:
        return chosen.build(config)
    from fleqc.transformer.weights_io import cached_build  # here: only a machine that caches its weights

    return cached_build(config, lambda: chosen.build(config))


class _Machines(Mapping):
    """The registry as a mapping name -> machine (each loaded on first use)."""

    def __getitem__(self, name: str) -> Machine:
        if name not in REGISTRY:
            raise KeyError(name)
        return _load(name)

    def __iter__(self) -> Iterator[str]:
        return iter(REGISTRY)

    def __len__(self) -> int:
        return len(REGISTRY)


MACHINES: Mapping[str, Machine] = _Machines()


def language() -> Any:
    """The FLEQ language as the front end receives it: the machines a ``.machine`` may name."""
    from fleqc.frontend.dialect import Language  # the front end loads lark: only when a program is compiled

    return Language(language_names(), machine)  # each machine loaded when a program names it


def compile_source(text: str, name: str = "<string>", *, bits: int | None = None,
                   base_dir: str | os.PathLike | None = None) -> Any:
    """Compile FLEQ-language ``text`` (called ``name`` in messages): fleqc.frontend.compile_source
    with the registry's machines."""
    from fleqc.frontend.compile import compile_source as compile_language

    return compile_language(text, name, language=language(), bits=bits, base_dir=base_dir)


def compile_file(path: str | os.PathLike, *, bits: int | None = None, machine: str | None = None,
                 **options: Any) -> Any:
    """Compile the program file at ``path`` with the machine that claims its suffix
    (:func:`machine_for_file`; ``.fleq``: the FLEQ language), or the machine named ``machine``
    (a program in the FLEQ language must then say the same with ``.machine``)."""
    path = Path(path)
    data = _read(path)
    if path.suffix in LANGUAGES:
        if machine not in (None, "fleq"):
            raise FleqError(ErrorCode.UNKNOWN_MACHINE, f"{path} is a FLEQ program ({path.suffix}), not a {machine} program")
        text = data.decode("utf-8", errors="replace")
        return importlib.import_module(LANGUAGES[path.suffix]).compile_text(
            text, str(path), lambda assembly, name: compile_source(assembly, name, bits=bits, base_dir=path.parent))
    chosen = _named(machine) if machine is not None else machine_for_file(path)
    return compile_text(data.decode("utf-8", errors="replace"), str(path), bits=bits, machine=machine,
                        chosen=chosen, **options)


def compile_text(text: str, name: str, *, bits: int | None = None, machine: str | None = None,
                 chosen: Any = None, **options: Any) -> Any:
    """Compile program ``text`` (called ``name`` in messages, e.g. ``<stdin>``) with the machine
    named ``machine`` (default: the FLEQ language, whose ``.machine`` directive chooses)."""
    chosen = chosen or (_named(machine) if machine is not None else _named(DEFAULT))
    program = chosen.compile(text, name, {"bits": bits, **options},
                             language=language() if chosen.language is not None else None)
    if machine is not None and program.machine != machine:
        raise FleqError(ErrorCode.UNKNOWN_MACHINE, f"{name} is a {program.machine} program (its .machine "
                                                   f"directive), not a {machine} program")
    return program


def _read(path: Path) -> bytes:
    try:
        return read_source(path)
    except OSError as exc:
        reason = "no such file" if isinstance(exc, FileNotFoundError) else (exc.strerror or str(exc))
        raise FleqError(ErrorCode.FILE_NOT_FOUND, f"cannot read '{path}': {reason}") from None


def assembly_of(path: str | os.PathLike) -> str:
    """The FLEQ assembly that the program file at ``path``, in a language above the FLEQ language
    (:data:`LANGUAGES`), compiles to; UNKNOWN_FORMAT for any other file."""
    path = Path(path)
    if path.suffix not in LANGUAGES:
        raise FleqError(ErrorCode.UNKNOWN_FORMAT, f"{path}: only a program in a language above the assembly "
                        f"({', '.join(LANGUAGES)}) compiles to assembly; this file is assembly or a card")
    text = _read(path).decode("utf-8", errors="replace")
    return importlib.import_module(LANGUAGES[path.suffix]).translate(text, str(path)).assembly


def program_to_card(program: Any, columns: int | None = None, start: int = 0, **options: Any) -> Card:
    """The punch card of ``program`` on the smallest machine that fits it (or ``columns``, and the
    machine's own ``options`` such as ``cell``); the pc names instruction ``start``."""
    chosen = machine_of(program)
    recorded = dict(getattr(program, "card_size", None) or {})  # a disassembled card's own size
    if columns is None:
        columns = recorded.pop("columns", None)
    options = {**recorded, **{name: value for name, value in options.items() if value is not None}}
    return chosen.encode(program, chosen.config_for(program, columns, options), start)


def card_to_program(card: Card) -> Any:
    """The program a card holds, read back out of X by its machine (so any card runs on the
    reference interpreter); only the source spans are lost (instruction lines are kept)."""
    return card.machine.decode(card)


def load_card(path: str | os.PathLike) -> Card:
    """The punch card in ``path`` (.npz), checked completely (fleqc.card.check) by the machine its
    metadata names."""
    return load_card_file(path, MACHINES)


_named = machine
