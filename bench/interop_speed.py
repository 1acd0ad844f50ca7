"""Milliseconds per pass (and instructions per second) of one machine in each engine.

    python bench/interop_speed.py [--columns 64 1024] [--batch 1 8] [--fleq] [--repeat 5] [--threads 1]

Engines: numpy's dense pass (fleqc.transformer.forward, the definition), the TorchMachine on the
CPU (float64; float32 for SUBLEQ, exact for N <= 19, docs/interop.md), on CUDA when torch sees a
GPU, and ONNX Runtime (CPU provider). Every engine steps the same cards (SUBLEQ: the gcd sample,
copied to fill the batch); the first pass is a warm-up. The engines take their passes in turn
(one pass of each, --repeat times) and the median of each is printed; after the passes every
engine's X must equal numpy's bit for bit. The instructions per second count one instruction per
card per pass.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import fleqc
from common import alternated  # bench/ is on the path when run as a script
from fleqc.machines import weights_for
from fleqc.transformer import forward

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


class Stepper:
    """One engine stepping its own copy of the cards: ``once()`` times one pass."""

    def __init__(self, engine, X: np.ndarray) -> None:
        self.step, convert = engine if isinstance(engine, tuple) else (engine, lambda X: X)
        self.X = convert(X)
        self.X = self.step(self.X)  # warm-up

    def once(self) -> float:
        start = time.perf_counter()
        self.X = self.step(self.X)
        return time.perf_counter() - start

    def numpy(self) -> np.ndarray:
        X = self.X
        return X.detach().cpu().numpy() if hasattr(X, "detach") else np.asarray(X)


def engines(model, kind: str, threads: int):
    yield "numpy float64", lambda X: forward(model, X)
    try:
        import torch

        from fleqc.interop.torch_module import to_torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(threads)
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        for device in devices:
            dtypes = [torch.float64] + ([torch.float32] if kind == "subleq" else [])
            for dtype in dtypes:
                machine = to_torch(model, device=device, dtype=dtype)

                def step(X, machine=machine, device=device):
                    with torch.no_grad():
                        out = machine(X)
                    if device == "cuda":
                        torch.cuda.synchronize()
                    return out

                yield f"torch {device} {str(dtype).split('.')[-1]}", (step, machine.tensor)
    try:
        from fleqc.interop.onnx_export import OnnxMachine
    except ImportError:
        return
    yield "onnxruntime float64", OnnxMachine(model, threads=threads).pass_numpy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--columns", type=int, nargs="+", default=[64, 1024])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--fleq", action="store_true", help="the FLEQ machine (fleq_polynomial) instead of SUBLEQ")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch and ONNX Runtime threads (numpy's BLAS: set OPENBLAS_NUM_THREADS)")
    args = parser.parse_args()
    name = "fleq_polynomial" if args.fleq else "gcd"
    kind = "fleq" if args.fleq else "subleq"
    print(f"{'machine':<22} {'batch':>5}  {'engine':<22} {'ms/pass':>9} {'instr/s':>10}   X")
    for n in args.columns:
        card = fleqc.build(str(SAMPLES / f"{name}.fleq"), columns=n)
        model = weights_for(card.config)
        for batch in args.batch:
            X = np.repeat(card.X[None], batch, axis=0)
            steppers = {label: Stepper(engine, X) for label, engine in engines(model, kind, args.threads)}
            medians = alternated({label: s.once for label, s in steppers.items()}, args.repeat)
            reference = steppers["numpy float64"].numpy()
            for label, stepper in steppers.items():
                same = "equal" if np.array_equal(stepper.numpy().astype(np.float64), reference) else "DIFFERS"
                print(f"{kind} n={n} d={model.width:<6} {batch:>5}  {label:<22} {medians[label] * 1e3:9.2f} "
                      f"{batch / medians[label]:10.0f}   {same}", flush=True)
    print(f"(medians of {args.repeat} passes, the engines alternated; the last column compares each engine's X "
          "with numpy's after the same passes)")


if __name__ == "__main__":
    main()
