"""A generic looped transformer: layers of attention heads and ReLU feed-forward blocks.

This package knows only weights and matrices. It imports nothing from the assembler, the layout
or the instruction sets; the same executor runs every machine fleqc builds.
"""

from fleqc.transformer.executor import BatchOutcome, RunOutcome, forward, run, run_batch
from fleqc.transformer.health import MachineFault, TernaryCheck
from fleqc.transformer.layers import AttentionLayer, FeedForwardLayer, LoopedTransformer

__all__ = [
    "AttentionLayer",
    "BatchOutcome",
    "FeedForwardLayer",
    "LoopedTransformer",
    "MachineFault",
    "RunOutcome",
    "TernaryCheck",
    "forward",
    "run",
    "run_batch",
]
