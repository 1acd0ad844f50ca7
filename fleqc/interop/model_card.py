"""A Hugging Face-style ``config.json`` and model card (``README.md``) for an exported machine, so
its weights can be shared like any model: what it is, its layers (numbered from 0, as the
safetensors keys ``layer3.query``), its row labels and how to run it. Plain JSON and Markdown: no
Hugging Face library is needed to write or read them."""

from __future__ import annotations

import json
import re
from importlib import metadata as package_metadata
from typing import Any

from fleqc.transformer.layers import AttentionLayer, LoopedTransformer

MODEL_TYPE = "fleqc-looped-transformer"


def _version() -> str:
    try:
        return package_metadata.version("fleqc")
    except package_metadata.PackageNotFoundError:  # pragma: no cover (a checkout without install)
        return "unknown"


def row_blocks(labels: tuple[str, ...] | list[str]) -> list[dict[str, Any]]:
    """Consecutive row labels ``name[k]`` grouped into blocks: name, first row, size."""
    blocks: list[dict[str, Any]] = []
    for row, label in enumerate(labels):
        name = re.sub(r"\[\d+\]$", "", label)
        if blocks and blocks[-1]["name"] == name and blocks[-1]["start"] + blocks[-1]["size"] == row:
            blocks[-1]["size"] += 1
        else:
            blocks.append({"name": name, "start": row, "size": 1})
    return blocks


def layer_plan(model: LoopedTransformer) -> list[dict[str, Any]]:
    """Every layer from 0: its kind and heads (attention, with their names) or hidden units."""
    plan = []
    for index, layer in enumerate(model.layers):
        if isinstance(layer, AttentionLayer):
            plan.append({"index": index, "kind": "attention", "heads": layer.heads,
                         "head_names": list(layer.head_names)})
        else:
            plan.append({"index": index, "kind": "feed_forward", "hidden_units": layer.hidden,
                         "name": layer.name})
    return plan


def config_json(model: LoopedTransformer, weights_name: str, description: str) -> dict[str, Any]:
    """The ``config.json`` beside the weights: the architecture in Hugging Face's usual keys, and
    fleqc's own (the machine, every layer, the row labels)."""
    plan = layer_plan(model)
    return {
        "model_type": MODEL_TYPE,
        "architectures": ["LoopedTransformer"],
        "library_name": "fleqc",
        "fleqc_version": _version(),
        "description": description,
        "torch_dtype": "float64",
        "hidden_size": model.width,
        "num_hidden_layers": len(model.layers),
        "num_attention_heads": sum(p.get("heads", 0) for p in plan),
        "layer_numbering": "from 0, as in the safetensors keys (layer3.query), ONNX, torch and TransformerLens",
        "layers": plan,
        "row_labels": list(model.row_labels),
        "row_blocks": row_blocks(model.row_labels),
        "ternary_rows": list(model.ternary_rows),
        "machine": model.metadata.get("machine"),
        "parameter_count": model.parameter_count(),
        "weights": weights_name,
        "looped": "apply the layers to X again and again until X stops changing (a fixed point: the program halted)",
    }


def model_card(model: LoopedTransformer, weights_name: str, description: str) -> str:
    """The model card (``README.md``): what the machine is, its layers and rows, how to run it."""
    machine = model.metadata.get("machine") or {}
    kind = machine.get("kind", "subleq")
    lines = [
        "---",
        "library_name: fleqc",
        "tags:",
        "- looped-transformer",
        f"- {kind}",
        "- hand-built-weights",
        "---",
        "",
        f"# {description}",
        "",
        "A looped transformer with hand-built, exact weights (after Giannou et al., \"Looped Transformers as",
        "Programmable Computers\"), written by fleqc. Nothing here was trained: every weight was placed so",
        "that one pass of the layers over the punch card X executes one instruction of the program X holds.",
        "Applied again and again, it runs the program; it halts at a fixed point of X.",
        "",
        f"- weights: `{weights_name}` (float64), {model.parameter_count():,} parameters",
        f"- width d = {model.width} rows (the residual stream's named fields, below)",
        f"- {len(model.layers)} layers, numbered from 0 as in the safetensors keys (`layer0.query`), "
        "ONNX, torch and TransformerLens",
        "- machine: `" + json.dumps(machine, sort_keys=True) + "`",
        "",
        "## Layers",
        "",
        "| layer | kind | heads or hidden units | names |",
        "|---|---|---|---|",
    ]
    for p in layer_plan(model):
        if p["kind"] == "attention":
            names = ", ".join(p["head_names"][:8]) + (", ..." if len(p["head_names"]) > 8 else "")
            lines.append(f"| {p['index']} | attention | {p['heads']} head{'s' if p['heads'] != 1 else ''} | {names} |")
        else:
            lines.append(f"| {p['index']} | ReLU feed-forward | {p['hidden_units']:,} units | {p['name']} |")
    lines += ["", "## Rows of X", "", "| rows | block |", "|---|---|"]
    for block in row_blocks(model.row_labels):
        span = f"{block['start']}" if block["size"] == 1 else f"{block['start']}-{block['start'] + block['size'] - 1}"
        lines.append(f"| {span} | {block['name']} |")
    lines += [
        "",
        "Every row's label is in `config.json` (`row_labels`); the columns of X are the scratchpad, the",
        "memory cells and the instructions (`fleqc inspect CARD.npz` shows a card's).",
        "",
        "## How to run it",
        "",
        "```",
        "pip install 'fleqc[safetensors]'",
        f"fleqc run program.fleq --weights {weights_name}     # a program that fits this machine",
        "```",
        "",
        "```python",
        "import fleqc",
        "from fleqc.interop.safetensors_io import load_safetensors",
        "",
        f"model = load_safetensors(\"{weights_name}\")",
        "card = fleqc.build(\"program.fleq\")        # the punch card X (machine sizes must match)",
        "result = fleqc.run(card, weights=model)",
        "print(result.memory)",
        "```",
        "",
        "Other engines: `fleqc export --onnx` (ONNX Runtime), `fleqc.interop.torch_module.to_torch` (PyTorch),",
        "`fleqc.interop.lens` (TransformerLens); each gives X bit for bit as fleqc's own engine.",
        "",
    ]
    return "\n".join(lines)
