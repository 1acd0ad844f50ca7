"""Pictures of the machine (matplotlib, the ``plot`` extra: ``pip install 'fleqc[plot]'``).

- :func:`plot_X`: a heatmap of X (d rows x n columns) with the row blocks labelled by name on the
  left, the column regions (scratchpad or reference and lanes, memory, instructions, padding) on the
  bottom and, for small programs, each memory column's label on top. Colours: blue negative, white
  0, red positive, on a symmetric log scale past 1 (so FLEQ values of any size stay visible).
- :func:`plot_attention`: the attention maps of one layer, one panel per head (key column down,
  query column across), from :mod:`fleqc.observe.attention`.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from fleqc.card.card import Card
from fleqc.observe.attention import HeadMap
from fleqc.runner import Run


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise PlotUnavailable("pictures need matplotlib: pip install 'fleqc[plot]'") from exc
    return plt


def regions(card: Card) -> list[tuple[str, int, int]]:
    """(name, first, end) of every non-empty column region, in column order."""
    n = card.X.shape[1]
    spans = [(card.machine.scratch_name, *card.regions.scratch), ("memory", *card.regions.memory),
             ("instructions", *card.regions.instructions), ("padding", card.regions.instructions[1], n)]
    return [(name, lo, hi) for name, lo, hi in spans if hi > lo]


def memory_labels(card: Card) -> dict[int, str]:
    """Column -> the user label of the memory cell in it."""
    out: dict[int, str] = {}
    for s in card.symbols.values():
        if s.kind == "data" and not s.hidden:
            for k in range(max(s.length, 1) if s.length else 0):
                out.setdefault(card.regions.memory[0] + s.address + k, s.name if k == 0 else f"{s.name}+{k}")
    return out


def _region_lines(ax, card: Card, horizontal: bool = False) -> None:
    for _name, lo, _hi in regions(card)[1:]:
        ax.axvline(lo - 0.5, color="k", lw=0.6)
        if horizontal:
            ax.axhline(lo - 0.5, color="k", lw=0.6)


def plot_X(card: Card, X: np.ndarray, path, title: str = "", rows: Optional[Sequence[str]] = None,
           inputs: Sequence = ()) -> Path:
    """``rows``: only these row blocks (by name, in the card's order), stacked."""
    plt = _pyplot()
    from matplotlib.colors import SymLogNorm

    blocks = list(card.rows)
    if rows:
        unknown = [name for name in rows if name not in card.rows]
        if unknown:
            raise ValueError(f"no row block {', '.join(unknown)}; the blocks are {', '.join(b.name for b in blocks)}")
        kept = [b for b in blocks if b.name in set(rows)]
        X = np.concatenate([X[b.slice] for b in kept])
        starts = np.cumsum([0] + [b.size for b in kept])
        blocks = [dataclasses.replace(b, start=int(start)) for b, start in zip(kept, starts)]
    d, n = X.shape
    height = min(max(6.0, 0.16 * len(blocks) + 2.0), 24.0)
    width = min(max(8.0, 0.12 * n + 3.0), 30.0)
    fig, ax = plt.subplots(figsize=(width, height))
    top = max(1.0, float(np.max(np.abs(X))))
    image = ax.imshow(X, aspect="auto", interpolation="nearest", cmap="RdBu_r",
                      norm=SymLogNorm(linthresh=1.0, vmin=-top, vmax=top))
    for block in blocks[1:]:
        ax.axhline(block.start - 0.5, color="0.5", lw=0.3)
    ticks, names = _spaced_labels(blocks, d, height)
    ax.set_yticks(ticks)
    ax.set_yticklabels(names, fontsize=7)
    spans = regions(card)
    _region_lines(ax, card)
    ax.set_xticks([(lo + hi - 1) / 2 for _, lo, hi in spans])
    ax.set_xticklabels([f"{name}\n{lo}-{hi - 1}" for name, lo, hi in spans], fontsize=8)
    labels = memory_labels(card)
    if labels and len(labels) <= 48:
        top_axis = ax.secondary_xaxis("top")
        top_axis.set_xticks(sorted(labels))
        top_axis.set_xticklabels([labels[c] for c in sorted(labels)], rotation=90, fontsize=7)
    ax.set_xlabel("column")
    ax.set_ylabel("row block")
    fig.colorbar(image, ax=ax, fraction=0.03, pad=0.01)
    ax.set_title(title or f"X ({d} x {n}) of {Path(card.source_name).name}", fontsize=10)
    fig.tight_layout()
    return _save(fig, path, inputs)


def _spaced_labels(blocks, d: int, height: float) -> tuple[list[float], list[str]]:
    """Block centres and names, leaving out a name that would overlap the one above it (7-point
    text on a plot ``height`` inches tall); a left-out block is still drawn and its boundary lined."""
    gap = d * (7 * 1.25 / 72) / max(height - 1.5, 1.0)  # rows per line of text
    ticks, names, last = [], [], -float("inf")
    for b in blocks:
        centre = b.start + (b.size - 1) / 2
        if centre - last >= gap:
            ticks.append(centre)
            names.append(b.name)
            last = centre
    return ticks, names


def plot_attention(card: Card, maps: Sequence[HeadMap], path, title: str = "", max_heads: int = 16,
                   inputs: Sequence = ()) -> Path:
    plt = _pyplot()
    shown = list(maps)[:max_heads]
    cols = min(len(shown), 4)
    rows = math.ceil(len(shown) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.6 * rows + 0.6), squeeze=False)
    for ax in axes.flat[len(shown):]:
        ax.axis("off")
    for ax, head in zip(axes.flat, shown):
        ax.imshow(head.weights, cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
        _region_lines(ax, card, horizontal=True)
        ax.set_title(f"layer {head.layer}, head {head.head}: {head.name}", fontsize=8)
        ax.set_xlabel("query column", fontsize=7)
        ax.set_ylabel("key column", fontsize=7)
        ax.tick_params(labelsize=6)
    more = f" (first {len(shown)} of {len(maps)} heads)" if len(maps) > len(shown) else ""
    fig.suptitle((title or f"attention of {Path(card.source_name).name}") + more, fontsize=10)
    fig.tight_layout()
    return _save(fig, path, inputs)


def _save(fig, path, inputs: Sequence = ()) -> Path:
    """Write the picture under fleqc's output policy (fleqc.safe_io); its format from the suffix
    (png without one)."""
    from fleqc.safe_io import write_atomically

    plt = _pyplot()
    path = Path(path)
    fmt = path.suffix[1:].lower() or "png"
    try:
        if fmt not in fig.canvas.get_supported_filetypes():
            raise ValueError(f"{path}: matplotlib cannot write .{fmt} pictures; use one of "
                             f"{', '.join('.' + k for k in sorted(fig.canvas.get_supported_filetypes()))}")
        write_atomically(path, lambda f: fig.savefig(f, format=fmt, dpi=100), inputs)
    finally:
        plt.close(fig)
    return path


def state_after(target, step: int, *, mode: str = "softmax", columns: Optional[int] = None,
                engine: str = "auto", **options: Optional[int]):
    """(machine, X): the transformer's state after ``step`` passes (fewer if it halts first)."""
    machine = Run(target, "transformer", mode=mode, columns=columns, engine=engine, **options)
    machine.advance(step)
    return machine, machine.X
