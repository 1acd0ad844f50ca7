"""Largest deviation from {-1, 0, +1} seen after each layer, before the error correction.

Runs the long lockstep program (tests/support/long_programs.py) for S steps in softmax mode and, after every
layer of every pass, measures max |x - round(x)| over the whole of X. The state rows are snapped back
to exact values by the thresholds of the feed-forward layers; this shows how far they ever were.
Usage: python bench/deviation.py [--steps S] [--columns n]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import fleqc  # noqa: E402
from fleqc.machines import weights_for  # noqa: E402
from fleqc.transformer import forward  # noqa: E402
from tests.support.long_programs import long_program  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--columns", type=int, default=None)
    parser.add_argument("--mode", default="softmax", choices=["softmax", "hardmax"])
    args = parser.parse_args()
    card = fleqc.build(long_program(iterations=args.steps), columns=args.columns)
    model = weights_for(card.config)
    worst = np.zeros(len(model.layers))
    names = [getattr(layer, "name", "") or "attention: " + ", ".join(layer.head_names) for layer in model.layers]

    def observe(index, layer, X):
        worst[index] = max(worst[index], float(np.abs(X - np.rint(X)).max()))

    X = card.X
    for _ in range(args.steps):
        X = forward(model, X, args.mode, observe)
    print(f"{card.summary()}; {args.steps} steps, {args.mode}")
    for i, (name, dev) in enumerate(zip(names, worst)):
        print(f"  layer {i + 1} {name:<40} max deviation {dev:.3g}")


if __name__ == "__main__":
    main()
