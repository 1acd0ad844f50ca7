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


# The kinds of a machine's layers, in order (A attention, F feed-forward).
LAYER_KINDS = {"subleq": "AAFAF", "fleq": "AAFFFFAFAFF"}


def check_weights_fit(model: LoopedTransformer, config: MachineConfig, where: str) -> None:
    """Refuse weights built for another configuration than the card needs, and weights whose
    layout-given metadata (row labels, layer kinds, health-checked and fault rows) is not the
    machine's: a file with a recomputed digest cannot switch the health checks off."""
    built_for = model.metadata.get("machine")
    if built_for != config.to_dict():
        raise FleqError(
            ErrorCode.MACHINE_MISMATCH,
            f"{where}: weights were built for {built_for}, but the card needs {config.to_dict()} "
            f"(rebuild with `{weights_command(config)}`)",
        )
    from fleqc.machine.card import rows_for
    from fleqc.transformer.layers import AttentionLayer

    rows = rows_for(config)
    kinds = "".join("A" if isinstance(layer, AttentionLayer) else "F" for layer in model.layers)
    expected = {
        "row labels": (list(model.row_labels), rows.labels()),
        "layer kinds": (kinds, LAYER_KINDS[config.kind]),
        "health-checked rows": (sorted(model.ternary_rows), _ternary_rows(config)),
        "fault rows": (list(model.metadata.get("fault_rows", [])), list(rows["fault"]) if "fault" in rows else []),
    }
    for what, (found, wanted) in expected.items():
        if found != wanted:
            raise FleqError(ErrorCode.BAD_WEIGHTS, f"{where}: the weights' {what} are not those of the "
                                                   f"{config.kind} machine they name")


def _ternary_rows(config: MachineConfig) -> list[int]:
    """Rows the health check holds to {-1, 0, +1}: all of them, except the FLEQ machine's real values."""
    from fleqc.machine.card import rows_for

    rows = rows_for(config)
    real = set(rows["mem"]) if isinstance(config, FleqConfig) else set()
    return [r for r in range(rows.d) if r not in real]
