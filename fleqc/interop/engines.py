"""``fleqc run --backend torch|onnx``: a punch card looped through PyTorch or ONNX Runtime.

The same contract as the numpy transformer backend (:func:`fleqc.backends.run_transformer`): the
machine for the card's configuration (or given weights, checked to fit), the health check after
every pass, the final X decoded by label. Only the engine that evaluates a pass differs.
"""

from __future__ import annotations

from typing import Optional

from fleqc.backends import Result, check_mode
from fleqc.errors import ErrorCode, FleqError
from fleqc.interop import require
from fleqc.machine.card import Card
from fleqc.machines import weights_for
from fleqc.transformer.layers import LoopedTransformer

ENGINES = ("torch", "onnx")


def engine_machine(model: LoopedTransformer, engine: str, mode: str = "softmax", device: Optional[str] = None):
    """A machine object with ``run(X, max_steps=, check=)``, ``run_batch`` and ``pass_numpy``."""
    if engine == "torch":
        require("torch")
        from fleqc.interop.torch_module import to_torch

        return to_torch(model, mode=mode, device=device)
    if engine == "onnx":
        require("onnx")
        if device not in (None, "cpu"):
            raise FleqError(ErrorCode.BAD_CONFIG, "--backend onnx runs on ONNX Runtime's CPU provider: use --device cpu")
        from fleqc.interop.onnx_export import OnnxMachine

        return OnnxMachine(model, mode=mode)
    raise FleqError(ErrorCode.BAD_CONFIG, f"unknown engine {engine!r}: use one of {ENGINES}")


def run_engine(card: Card, engine: str, max_steps: int, mode: str = "softmax",
               weights: Optional[LoopedTransformer] = None, device: Optional[str] = None,
               health_check: bool = True, options: Optional[dict] = None) -> Result:
    """Run ``card`` on ``engine`` (torch or onnx) until it halts or ``max_steps`` steps; ``options``
    (the run's machine options) reach the machine's ``prepare`` and ``observer``, as on numpy."""
    options = options or {}
    check_mode(card.machine, mode)
    card = card.machine.prepare(card, options)
    model = weights if weights is not None else weights_for(card.config)
    card.machine.check_weights_fit(model, card.config, card.source_name)
    machine = engine_machine(model, engine, mode, device)
    check = card.machine.health_check(model, card) if health_check else None
    outcome = machine.run(card.X, max_steps=max_steps, check=check, on_step=card.machine.observer(card, options))
    return Result(outcome.halted, outcome.steps, card.decode(outcome.X), card.read_pc(outcome.X), engine)
