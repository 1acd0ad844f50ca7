"""The Python API: compile, build and run programs from notebooks and scripts.

    >>> import fleqc
    >>> card = fleqc.build("samples/factorial.fleq")
    >>> result = fleqc.run(card)                     # on the looped transformer
    >>> result.memory["result"], result.steps

``build`` and ``compile`` take a path (``str`` or ``Path`` naming an existing file, or ending in
``.fleq``) or the program text itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

from fleqc.backends import DEFAULT_MAX_STEPS, Result, run_card_reference, run_reference, run_transformer
from fleqc.errors import ErrorCode, FleqError
from fleqc.machine.card import Card
from fleqc.machine.program_to_card import program_to_card
from fleqc.program import LinkedProgram
from fleqc.transformer.executor import ENGINES
from fleqc.transformer.layers import LoopedTransformer

Source = Union[str, os.PathLike]


def _is_path(source: Source) -> bool:
    if isinstance(source, os.PathLike):
        return True
    return "\n" not in source and (source.endswith((".fleq", ".npz")) or Path(source).is_file())


def compile(source: Source, *, bits: Optional[int] = None) -> LinkedProgram:  # noqa: A001 (the verb)
    """Parse and link a program (path or text)."""
    from fleqc.frontend import compile_file, compile_source  # the front end loads lark: only when needed

    if _is_path(source):
        return compile_file(Path(source), bits=bits)
    return compile_source(str(source), "<string>", bits=bits)


def build(
    source: Source | LinkedProgram,
    *,
    columns: Optional[int] = None,
    bits: Optional[int] = None,
    cell: Optional[int] = None,
) -> Card:
    """Compile a program and lay it out as a punch card for the smallest machine that fits it
    (or the machine with ``columns`` columns; FLEQ: cells up to ``cell`` x ``cell``, default 8)."""
    program = source if isinstance(source, LinkedProgram) else compile(source, bits=bits)
    return program_to_card(program, columns, cell)


def load_card(path: Source) -> Card:
    return Card.load(path)


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
    cell: Optional[int] = None,
    engine: str = "auto",
    stats: bool = False,
    device: Optional[str] = None,
) -> Result:
    """Run a card, a linked program, or a program/card file on ``backend``.

    ``mode`` (softmax | hardmax) and ``weights`` apply to the transformer backend; ``columns`` and
    ``cell`` choose the machine for a program (FLEQ machines run in softmax mode only). ``engine``
    chooses how the transformer's passes are evaluated: ``auto`` (default: sparse passes while the
    run is short, then the incremental engine), ``incremental`` (recomputes only what can change,
    fleqc.transformer.engine), ``sparse`` (every column, through the nonzeros of
    the weights) or ``dense`` (the plain forward pass, the definition): the same function of
    (weights, X). ``stats`` fills ``Result.stats`` with the engine's figures (time per layer).
    ``backend="numpy"`` is the transformer backend; ``"torch"`` and ``"onnx"`` loop the same weights
    in PyTorch (``device`` cpu or cuda) or ONNX Runtime (fleqc.interop; extras ``fleqc[torch]``,
    ``fleqc[onnx]``).
    """
    if backend == "numpy":
        backend = "transformer"
    if backend not in ("transformer", "reference", "torch", "onnx"):
        raise FleqError(ErrorCode.BAD_CONFIG,
                        f"unknown backend {backend!r}: use 'transformer' (or 'numpy'), 'reference', 'torch' or 'onnx'")
    if mode not in ("softmax", "hardmax"):
        raise FleqError(ErrorCode.BAD_CONFIG, f"unknown attention mode {mode!r}: use 'softmax' or 'hardmax'")
    if engine not in ENGINES:
        raise FleqError(ErrorCode.BAD_CONFIG, f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
    if max_steps < 0:
        raise FleqError(ErrorCode.BAD_CONFIG, f"max_steps must be >= 0, got {max_steps}")
    if not isinstance(target, (Card, LinkedProgram)):
        target = Card.load(target) if str(target).endswith(".npz") else compile(target)
    if backend == "reference":
        if isinstance(target, Card):
            return run_card_reference(target, max_steps)
        return run_reference(target, max_steps)
    card = target if isinstance(target, Card) else program_to_card(target, columns, cell)
    if backend in ("torch", "onnx"):
        from fleqc.interop.engines import run_engine

        return run_engine(card, backend, max_steps, mode, weights, device)
    return run_transformer(card, max_steps, mode, weights, engine=engine, stats=stats)  # type: ignore[arg-type]
