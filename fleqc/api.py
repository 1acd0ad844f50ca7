"""The Python API: compile, build and run programs from notebooks and scripts.

    >>> import fleqc
    >>> card = fleqc.build("samples/factorial.fleq")
    >>> result = fleqc.run(card)                     # on the looped transformer
    >>> result.memory["result"], result.steps

``build`` and ``compile`` take a path or the program text itself: an ``os.PathLike`` (``Path``) is
always a path; a ``str`` is program text when it holds a newline, else a path when it ends in
a suffix a machine claims (``.fleq``) or ``.npz`` or names an existing file, else program text
(``"halt"``). Pass a ``Path`` to be unambiguous. Sizes (``columns``, ``max_steps`` and the
machines' options ``bits``, ``cell``) are integers: Python ints or numpy integers, never floats.
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Any, Optional, Union

from fleqc.runner import Result, Run, check_backend
from fleqc.state import DEFAULT_MAX_STEPS
from fleqc.errors import ErrorCode, FleqError
from fleqc.card.card import Card
from fleqc.machines import (LANGUAGES, REGISTRY, about, assembly_of, compile_file, compile_source, load_card,
                            program_to_card)
from fleqc.program import LinkedProgram
from fleqc.transformer.layers import LoopedTransformer

Source = Union[str, os.PathLike]


def _is_program(subject: Any) -> bool:
    """A compiled program of some machine (a LinkedProgram, or a machine's own program type)."""
    return isinstance(subject, LinkedProgram) or (hasattr(subject, "machine") and hasattr(subject, "symbols")
                                                  and not isinstance(subject, (str, os.PathLike)))


def _is_path(source: Source) -> bool:
    if isinstance(source, os.PathLike):
        return True
    if not isinstance(source, str):
        raise FleqError(ErrorCode.BAD_CONFIG, f"expected a path or program text, got {type(source).__name__}")
    if "\n" in source or "\0" in source:
        return False
    if source.endswith((*{s for m in map(about, REGISTRY) for s in m.suffixes}, *LANGUAGES, ".npz")):
        return True
    try:
        return Path(source).is_file()
    except (OSError, ValueError):  # a name too long for the file system is text, not a path
        return False


def _integer(value, name: str, optional: bool = True) -> Optional[int]:
    """``value`` as a Python int (numpy integers accepted); BAD_CONFIG for floats, bools, strings."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise FleqError(ErrorCode.BAD_CONFIG, f"{name} must be an integer, got {value!r}")
    return int(value)


def compile(source: Source, *, bits: Optional[int] = None, machine: Optional[str] = None,  # noqa: A001 (the verb)
            **options) -> LinkedProgram:
    """Parse and link a program: a file by the machine that claims its suffix, or by ``machine``
    (with the machine's ``options``), or FLEQ-language text."""
    bits, options = _integer(bits, "bits"), _machine_options(options)
    if _is_path(source):
        return compile_file(Path(source), bits=bits, machine=machine, **options)
    return compile_source(str(source), "<string>", bits=bits)


def emit(source: Source) -> str:
    """The FLEQ assembly of a program file in a language above it (``.flow``: docs/flow.md)."""
    return assembly_of(Path(source))


def build(
    source: Source | LinkedProgram,
    *,
    columns: Optional[int] = None,
    bits: Optional[int] = None,
    **options: Optional[int],
) -> Card:
    """Compile a program and lay it out as a punch card for the smallest machine that fits it
    (or the machine with ``columns`` columns), with the machine's own options (FLEQ: ``cell``,
    cells up to ``cell`` x ``cell``, default 8)."""
    columns, bits = _integer(columns, "columns"), _integer(bits, "bits")
    program = source if _is_program(source) else compile(source, bits=bits)
    return program_to_card(program, columns, **_machine_options(options))


def _machine_options(options: dict) -> dict:
    """``options`` checked to be options of a registered machine (integers where they say so)."""
    known = {o.name: o for m in map(about, REGISTRY) for o in m.options}  # no machine package imported
    for name in options:
        if name not in known:
            raise FleqError(ErrorCode.BAD_CONFIG, f"unknown option {name!r}: the machines take {sorted(known)}")
    return {name: _integer(value, name) if known[name].integer else value for name, value in options.items()}


def decode(card: Card, X=None) -> dict:
    """The value of every data label in ``X`` (default: the card's own, initial X)."""
    return card.decode(X)


def run(
    target: Union[Card, LinkedProgram, Source],
    *,
    backend: str = "transformer",
    max_steps: int = DEFAULT_MAX_STEPS,
    mode: str = "softmax",
    weights: Optional[LoopedTransformer] = None,
    columns: Optional[int] = None,
    engine: str = "auto",
    stats: bool = False,
    device: Optional[str] = None,
    **options: Optional[int],
) -> Result:
    """Run a card, a linked program, or a program/card file on ``backend``.

    ``mode`` (softmax | hardmax) and ``weights`` apply to the transformer backends; ``columns`` and
    the machine's ``options`` (FLEQ: ``cell``) choose the machine for a program. ``engine``
    chooses how the numpy transformer's passes are evaluated: ``auto`` (default: sparse passes
    while the run is short, then the incremental engine), ``incremental`` (recomputes only what can
    change, fleqc.transformer.incremental), ``sparse`` (every column, through the nonzeros of the
    weights) or ``dense`` (the plain forward pass, the definition): the same function of
    (weights, X). ``stats`` fills ``Result.stats`` with the engine's figures (time per layer).
    ``backend="numpy"`` is the transformer backend; ``"torch"`` and ``"onnx"`` loop the same weights
    in PyTorch (``device`` cpu or cuda) or ONNX Runtime (fleqc.interop; extras ``fleqc[torch]``,
    ``fleqc[onnx]``). Every backend runs through one :class:`fleqc.runner.Run`.
    """
    max_steps = _integer(max_steps, "max_steps", optional=False)
    columns, options = _integer(columns, "columns"), _machine_options(options)
    if max_steps < 0:
        raise FleqError(ErrorCode.BAD_CONFIG, f"max_steps must be >= 0, got {max_steps}")
    check_backend(backend)
    if not isinstance(target, Card) and not _is_program(target):
        target = load_card(target) if str(target).endswith(".npz") else compile(target, **options)
    return Run(target, backend, mode=mode, weights=weights, columns=columns, engine=engine, stats=stats,
               device=device, **options).finish(max_steps)
