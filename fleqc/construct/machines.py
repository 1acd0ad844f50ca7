"""One frozen transformer per machine configuration, built once and reused for every program."""

from __future__ import annotations

import functools

from fleqc.construct.subleq_machine import build_subleq_machine
from fleqc.errors import ErrorCode, FleqError
from fleqc.machine.config import FleqConfig, MachineConfig
from fleqc.transformer.layers import LoopedTransformer


@functools.lru_cache(maxsize=32)
def machine_for(config: MachineConfig) -> LoopedTransformer:
    """The weights of the machine ``config`` (cached: building is deterministic)."""
    if isinstance(config, FleqConfig):
        from fleqc.construct.fleq_machine import build_fleq_machine

        return build_fleq_machine(config)
    return build_subleq_machine(config)


def weights_command(config: MachineConfig) -> str:
    """The CLI command that writes the weights of ``config``."""
    if isinstance(config, FleqConfig):
        return f"fleqc weights --machine fleq --columns {config.columns} --cell {config.cell}"
    return f"fleqc weights --columns {config.columns} --bits {config.bits}"


def check_weights_fit(model: LoopedTransformer, config: MachineConfig, where: str) -> None:
    """Refuse weights built for another configuration than the card needs."""
    built_for = model.metadata.get("machine")
    if built_for != config.to_dict():
        raise FleqError(
            ErrorCode.MACHINE_MISMATCH,
            f"{where}: weights were built for {built_for}, but the card needs {config.to_dict()} "
            f"(rebuild with `{weights_command(config)}`)",
        )
