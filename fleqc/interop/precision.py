"""Whether a number type narrower than float64 computes a machine's passes exactly: the bound the
machine states (``Machine.significand_bits``), read from the configuration its weights name. The
engines that run exported weights (fleqc.interop.torch_module) know nothing of the machines; this
module is where they ask.
"""

from __future__ import annotations

from fleqc.errors import ErrorCode, FleqError
from fleqc.machines import config_from_dict, machine_of
from fleqc.transformer.layers import LoopedTransformer


def check_precision(model: LoopedTransformer, dtype: str, bits: int) -> None:
    """BAD_CONFIG unless a type of ``bits`` significand bits (IEEE precision: float32 24) holds
    ``model``'s machine exactly. Weights that name no machine run in float64 only."""
    try:
        config = config_from_dict(model.metadata.get("machine"))
    except FleqError:
        raise FleqError(ErrorCode.BAD_CONFIG, f"{dtype} holds {bits} significand bits; these weights name no "
                                              "machine whose bound is known: use float64") from None
    need = machine_of(config).significand_bits(config)
    if need > bits:
        raise FleqError(ErrorCode.BAD_CONFIG, f"{dtype} holds {bits} significand bits; the {config.describe()} "
                                              f"needs {need} to compute its passes exactly: use float64")
