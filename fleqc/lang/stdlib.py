"""What Flow knows of the standard library: each routine's part (the file a program includes to
link it), its argument and result cells with their shapes, and every label the stdlib defines
(so that no generated name and no user variable collides with one)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from fleqc.resources import stdlib_dir

Shape = tuple[int, ...]
M8: Shape = (8, 8)
V8: Shape = (8,)
S: Shape = ()


@dataclass(frozen=True)
class Routine:
    name: str  # the routine's label (call NAME)
    part: str  # the stdlib file that defines it
    params: tuple[tuple[str, Shape], ...]  # argument cells, in the order Flow's call takes them
    results: tuple[tuple[str, Shape], ...]  # result cells, in the order Flow returns them
    steps: str = ""  # as the routine's header states it


ROUTINES: dict[str, Routine] = {r.name: r for r in (
    Routine("div", "arith_div.fleq", (("div_x", S), ("div_y", S)), (("div_out", S),), "about 65"),
    Routine("mulw", "arith_mulw.fleq", (("mulw_x", S), ("mulw_y", S)), (("mulw_out", S),), "12-22"),
    Routine("sqrt", "arith_sqrt.fleq", (("sqrt_x", S),), (("sqrt_out", S),), "about 60"),
    Routine("rsqrt", "arith_rsqrt.fleq", (("rsqrt_x", S),), (("rsqrt_out", S),), "24"),
    Routine("exp", "arith_exp.fleq", (("exp_x", S),), (("exp_out", S),), "about 75"),
    Routine("log", "arith_log.fleq", (("log_x", S),), (("log_out", S),), "about 105"),
    Routine("sigmoid", "arith_sigmoid.fleq", (("sigmoid_x", S),), (("sigmoid_out", S),), "about 80"),
    Routine("pow", "arith_pow.fleq", (("pow_x", S), ("pow_n", S)), (("pow_out", S),), "9 + 10 log2|n|"),
    Routine("inverse", "linalg_inverse.fleq", (("inv_a", M8),), (("inv_out", M8), ("inv_iters", S)),
            "46 + 18 per iteration"),
    Routine("solve", "linalg_solve.fleq", (("solve_a", M8), ("solve_b", V8)), (("solve_out", V8),),
            "inverse + 6"),
    Routine("vnorm", "linalg_norm2.fleq", (("vnorm_x", V8),), (("vnorm_out", S),), "about 65"),
    Routine("fnorm", "linalg_norm2.fleq", (("fnorm_a", M8),), (("fnorm_out", S),), "about 70"),
    Routine("norm1", "linalg_norms.fleq", (("norm1_a", M8),), (("norm1_out", S),), "about 25"),
    Routine("norminf", "linalg_norms.fleq", (("norminf_a", M8),), (("norminf_out", S),), "about 25"),
    Routine("power_iteration", "linalg_power.fleq", (("pi_a", M8), ("pi_v", V8)),
            (("pi_lambda", S), ("pi_v", V8), ("pi_iters", S)), "about 40 per iteration"),
    Routine("backprop_mlp2", "learn_backprop.fleq",
            (("bp_x", (2, 8)), ("bp_y", (1, 8)), ("bp_lr", S), ("bp_w1", (4, 2)), ("bp_b1", (4, 1)),
             ("bp_w2", (1, 4)), ("bp_b2", (1, 1))),
            (("bp_w1", (4, 2)), ("bp_b1", (4, 1)), ("bp_w2", (1, 4)), ("bp_b2", (1, 1)), ("bp_loss", S)), "34"),
    Routine("sgd_linear", "learn_sgd.fleq",
            (("lin_x", M8), ("lin_y", V8), ("lin_w", V8), ("lin_lr", S), ("lin_epochs", S)),
            (("lin_w", V8), ("lin_loss", S)), "10 + 7 per epoch"),
)}

_LABEL = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*:", re.MULTILINE)
_ROUTINE = re.compile(r"^\s*\.routine\s+([A-Za-z_][A-Za-z0-9_]*)", re.MULTILINE)


@functools.cache
def stdlib_labels() -> dict[str, str]:
    """Every label and routine name the stdlib defines -> the part that defines it."""
    found: dict[str, str] = {}
    for path in sorted(stdlib_dir().glob("*.fleq")):
        text = path.read_text(encoding="utf-8")
        text = "\n".join(line.split(";")[0] for line in text.splitlines())
        for name in _LABEL.findall(text) + _ROUTINE.findall(text):
            found.setdefault(name, path.name)
    return found
