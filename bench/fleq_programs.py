"""FLEQ programs on the transformer beside the reference interpreter: the samples, the applications
and the calculator.

Each program runs on the transformer (the default engine, ``auto``) and on the reference
interpreter in the same run; the transformer's steps, halting and every label's value must equal
the reference's, bit for bit. Prints the columns, steps and both times (whole runs: machine build,
card check and health checks included). For the applications, their accuracy against numpy's own
linear algebra: ||A X - I||_2 for the inverses, the distance of the eigenvalue from
``numpy.linalg.eigh``'s, the loss before and after training. Then ``fleqc calc`` as a whole process
(median of --repeats).

The backpropagation application (7,811 steps) runs on the reference only unless --backprop (it then
takes minutes on the transformer).

    python bench/fleq_programs.py [--backprop] [--repeats R]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import numpy as np

import fleqc
from common import ROOT, check_result  # bench/ is on the path when run as a script

SAMPLES = ["fleq_polynomial", "fleq_two_product", "fleq_normalize", "fleq_matrix_chain", "fleq_subnormal_products",
           "fleq_counter_loop"]
APPS = ["apps/app_inverse4", "apps/app_inverse8", "apps/app_power_iteration", "apps/app_backprop"]


def accuracy(name: str, initial: dict, final: dict) -> str:
    """What numpy's own linear algebra says of the application's result."""
    if name.endswith(("inverse4", "inverse8")):
        a, x = np.array(initial["a"]), np.array(final["x"])
        residual = np.linalg.norm(a @ x - np.eye(len(a)), 2)
        return f"||A X - I||_2 = {residual:.1e}, {float(final['iters']):.0f} iterations"
    if name.endswith("power_iteration"):
        top, found = float(np.linalg.eigh(np.array(initial["a"]))[0][-1]), float(final["lambda"])
        return (f"eigenvalue {found!r}, {abs(found - top) / abs(top):.1e} relative from "
                f"numpy.linalg.eigh's, {float(final['iters']):.0f} iterations")
    if name.endswith("backprop"):
        return f"loss {float(final['loss_first']):.4f} -> {float(final['loss_last']):.5f}"
    return ""


def run_program(name: str, transformer: bool) -> None:
    card = fleqc.build(str(ROOT / "samples" / f"{name}.fleq"))
    start = time.perf_counter()
    expected = fleqc.run(card, backend="reference")
    reference_s = time.perf_counter() - start
    cells = [f"{name:<26} {card.X.shape[-1]:>7} {expected.steps:>6}"]
    if transformer:
        start = time.perf_counter()
        result = fleqc.run(card)
        elapsed = time.perf_counter() - start
        check_result(result, expected, name)
        cells.append(f"{elapsed:>13.2f} {reference_s:>11.3f}   equal")
    else:
        cells.append(f"{'-':>13} {reference_s:>11.3f}       -")
    line = " ".join(cells)
    if name.startswith("apps/"):
        line += "   " + accuracy(name, fleqc.decode(card), expected.memory)
    print(line, flush=True)


def calc(expression: str, repeats: int) -> None:
    times, output = [], ""
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "fleqc", "calc", expression], check=True, capture_output=True,
                              text=True)
        times.append(time.perf_counter() - start)
        output = " ".join((done.stdout + done.stderr).split())
    print(f'\nfleqc calc "{expression}": {output}')
    print(f"  whole process (machine build, the engine's compiled code loaded, the passes): "
          f"{statistics.median(times):.2f} s, median of {repeats}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backprop", action="store_true", help="backprop on the transformer too (minutes)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{'program':<26} {'columns':>7} {'steps':>6} {'transformer s':>13} {'reference s':>11}   memory")
    for name in SAMPLES + APPS:
        run_program(name, transformer=args.backprop or not name.endswith("backprop"))
    print("(memory: the transformer's steps, halting and every label's value equal to the reference "
          "interpreter's, bit for bit; the applications' accuracy is that of both)")
    calc("(1 + 2) * 7 / 3", args.repeats)


if __name__ == "__main__":
    main()
