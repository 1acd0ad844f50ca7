"""The FLEQ machine's numeric windows, to explain a domain fault in the user's terms.

The function blocks of the machine take operands inside fixed windows (docs/fleq-machine.md,
"Domains and faults"); outside them the block raises its fault row and the run stops with a
``domain-error``. :func:`explain_fault` names the operand, the offending value and the window.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from fleqc.machine.fleq_layout import EXP_MAX, FIT_LADDER, PRODUCT_LADDER

_FIT_LO, _FIT_HI = FIT_LADDER.tau(FIT_LADDER.lo), FIT_LADDER.tau(FIT_LADDER.hi)
_PROD_HI = PRODUCT_LADDER.tau(PRODUCT_LADDER.hi)

# function -> (the operand checked, the test every entry must pass, the window in words)
WINDOWS: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray], str]] = {
    "recip": ("a", lambda x: (np.abs(x) > _FIT_LO) & (np.abs(x) <= _FIT_HI), "2^-81 < |x| <= 2^81"),
    "log": ("a", lambda x: (x > _FIT_LO) & (x <= _FIT_HI), "2^-81 < x <= 2^81"),
    "sqrt": ("a", lambda x: (x == 0) | ((x > _FIT_LO) & (x <= _FIT_HI)), "x = 0 or 2^-81 < x <= 2^81"),
    "exp": ("a", lambda x: x <= EXP_MAX, f"x <= {EXP_MAX:.6g}"),
    "mul": ("b", lambda x: np.abs(x) <= _PROD_HI, "|b| <= 2^96 (the factor that enters the score)"),
    "matmul": ("b", lambda x: np.abs(x) <= _PROD_HI, "|b| <= 2^96 (the factor that enters the score)"),
}


def explain_fault(func: str, a: np.ndarray, b: Optional[np.ndarray]) -> str:
    """Which operand entry lies outside ``func``'s window, its value and the window."""
    if func not in WINDOWS:
        return f"an operand is outside the domain of the machine's {func} block"
    operand, inside, window = WINDOWS[func]
    value = np.asarray(a if operand == "a" or b is None else b, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~inside(value)
    if not bad.any():
        return f"an operand is outside the domain of the machine's {func} block ({window})"
    index = tuple(int(i) for i in np.argwhere(bad)[0]) if value.ndim else ()
    where = f"{operand}{list(index)}" if index else operand
    return f"operand {where} = {float(value[index])!r} is outside the machine's {func} window {window}"
