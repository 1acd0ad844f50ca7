"""The FLEQ machine's numeric windows, to explain a domain fault in the user's terms.

The function blocks of the machine take operands inside fixed windows (docs/fleq-machine.md,
"Domains and faults"; each function's ``window`` in fleqc.isa.fleq_functions); outside them the
block raises its fault row and the run stops with a ``domain-error``. :func:`explain_fault` names
the operand, the offending value and the window.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from fleqc.isa.fleq_functions import FLEQ_FUNCTIONS


def explain_fault(func: str, a: np.ndarray, b: Optional[np.ndarray]) -> str:
    """Which operand entry lies outside ``func``'s window, its value and the window."""
    window = FLEQ_FUNCTIONS[func].window
    if window is None:
        return f"an operand is outside the domain of the machine's {func} block"
    value = np.asarray(a if window.operand == "a" or b is None else b, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~window.inside(value)
    if not bad.any():
        return f"an operand is outside the domain of the machine's {func} block ({window.words})"
    index = tuple(int(i) for i in np.argwhere(bad)[0]) if value.ndim else ()
    where = f"{window.operand}{list(index)}" if index else window.operand
    return f"operand {where} = {float(value[index])!r} is outside the machine's {func} window {window.words}"
