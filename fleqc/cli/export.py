"""``fleqc export``: a machine's weights as an ONNX model and/or a .safetensors file; and weights
files read and written by their suffix. torch, onnx and safetensors are imported only when their
output is asked for (they load slowly)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import click

from fleqc.cli.common import input_files, reports_errors
from fleqc.cli.options import default_columns, machine_choice, machine_config, machine_options
from fleqc.machines import config_from_dict, load_card, machine_of, weights_for
from fleqc.safe_io import check_outputs, write_atomically


def load_weights_file(path: Path):
    """A weights file by its suffix: ``.safetensors`` (fleqc.interop) or fleqc's own ``.npz``."""
    if Path(path).suffix == ".safetensors":
        # here, not at the top: safetensors (an extra) only for such a file (start-up)
        from fleqc.interop import require
        from fleqc.interop.safetensors_io import load_safetensors

        require("safetensors")
        return load_safetensors(path)
    from fleqc.transformer.weights_io import load_weights  # here: only --weights needs it (start-up)

    return load_weights(path)


def save_weights_file(model, path: Path, inputs=()) -> None:
    """Write weights by the suffix: ``.safetensors`` (with the row labels and machine in the header)
    or fleqc's own ``.npz``; under fleqc's output policy (fleqc.safe_io), never over one of ``inputs``."""
    if Path(path).suffix == ".safetensors":
        # here, not at the top: safetensors (an extra) only for such a file (start-up)
        from fleqc.interop import require
        from fleqc.interop.safetensors_io import save_safetensors

        require("safetensors")
        save_safetensors(model, path, inputs)
        return
    from fleqc.transformer.weights_io import save_weights  # here: only fleqc weights needs it (start-up)

    save_weights(model, path, inputs)


@click.command("export")
@click.option("--onnx", "onnx_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the machine as an ONNX model (standard operators, float64): one pass X -> Y, "
              "X of shape (batch, d, n); with --loop the whole run as an ONNX Loop.")
@click.option("--loop", is_flag=True,
              help="ONNX: the whole run as one Loop until every card is at a fixed point or has made "
              "max_steps changing passes (inputs X, max_steps; outputs Y, steps, halted).")
@click.option("--fused-softmax", is_flag=True,
              help="ONNX: use the Softmax operator instead of ReduceMax/Sub/Exp/ReduceSum/Div.")
@click.option("--mode", type=click.Choice(["softmax", "hardmax"]), default="softmax", show_default=True,
              help="ONNX: the attention written into the graph.")
@click.option("--safetensors", "safetensors_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the weights as .safetensors with the row labels, row blocks and machine in the metadata.")
@click.option("--hf", "hf_dir", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="DIR",
              help="Write a Hugging Face-style model folder DIR (new or empty): model.safetensors, config.json "
              "(layers, row labels, machine) and a model card README.md (what it is, how to run it).")
@machine_choice
@click.option("--columns", "-n", type=int, default=None, metavar="n",
              help=f"Columns of the machine (default {default_columns()}).")
@machine_options("export")
@click.option("--weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Export this weights file (.npz or .safetensors) instead of building a machine.")
@click.option("--card", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Export the machine this punch card (.npz) runs on.")
def export_command(onnx_path: Optional[Path], loop: bool, fused_softmax: bool, mode: str,
                   safetensors_path: Optional[Path], hf_dir: Optional[Path], machine: str, columns: Optional[int],
                   weights: Optional[Path], card: Optional[Path], **sizes: Any) -> None:
    """Export a machine's weights to engines fleqc did not write (docs/interop.md).

    \b
    fleqc export --onnx m.onnx --columns 32          SUBLEQ n=32, N=16: one pass
    fleqc export --onnx run.onnx --loop --card p.npz  the whole run of p's machine
    fleqc export --safetensors m.safetensors --machine fleq --columns 128
    fleqc export --hf subleq-n32 --columns 32         model.safetensors, config.json, README.md
    """
    reports_errors(_export)(onnx_path, loop, fused_softmax, mode, safetensors_path, machine, columns, sizes,
                            weights, card, hf_dir)


def _export(onnx_path, loop, fused_softmax, mode, safetensors_path, machine, columns, sizes, weights,
            card, hf_dir=None) -> None:
    from fleqc.interop import require  # here: fleqc.interop only for export (start-up)

    if onnx_path is None and safetensors_path is None and hf_dir is None:
        raise click.UsageError("say what to write: --onnx FILE, --safetensors FILE and/or --hf DIR")
    if hf_dir is not None and hf_dir.exists() and (not hf_dir.is_dir() or any(hf_dir.iterdir())):
        raise click.UsageError(f"--hf {hf_dir}: choose a new or empty folder (its files would be replaced)")
    if (loop or fused_softmax) and onnx_path is None:
        raise click.UsageError("--loop and --fused-softmax apply to --onnx")
    if mode == "hardmax" and fused_softmax:
        raise click.UsageError("--fused-softmax is a softmax; hardmax has no fused ONNX operator")
    inputs = input_files(weights, card)
    check_outputs([onnx_path, safetensors_path], inputs)  # before the machine is built
    if weights is not None:
        model = load_weights_file(weights)
    elif card is not None:
        model = weights_for(load_card(card).config)
    else:
        model = weights_for(machine_config(machine, columns, sizes, "export"))
    config: Any = model.metadata.get("machine")
    built = config_from_dict(config) if config else None
    what = built.describe() if built else "machine"
    if built and mode not in machine_of(built).modes:
        raise click.UsageError(f"the {machine_of(built).title} machine runs in {' or '.join(machine_of(built).modes)} "
                               "mode only")
    if onnx_path is not None:
        require("onnx")
        from fleqc.interop import onnx_export  # here: onnx (an extra) loads slowly (start-up)

        proto = (onnx_export.loop_model if loop else onnx_export.pass_model)(model, mode, fused_softmax)
        write_atomically(onnx_path, lambda f: f.write(onnx_export.serialize(proto)), inputs)
        ops = ", ".join(sorted(onnx_export.operators(proto)))
        click.echo(f"wrote {onnx_path}: {what}, {'the whole run (Loop)' if loop else 'one pass'}, {mode}, "
                   f"d={model.width}, {model.parameter_count():,} parameters; operators: {ops}")
    if safetensors_path is not None:
        require("safetensors")
        from fleqc.interop.safetensors_io import save_safetensors  # here: an extra (start-up)

        save_safetensors(model, safetensors_path, inputs)
        click.echo(f"wrote {safetensors_path}: {what}, {len(model.layers)} layers, d={model.width} labelled rows, "
                   f"{model.parameter_count():,} parameters")
    if hf_dir is not None:
        write_model_folder(model, hf_dir, what)


def write_model_folder(model: Any, folder: Path, what: str) -> None:
    """``--hf DIR``: the weights as model.safetensors, with config.json and a model card beside them."""
    # here, not at the top: only --hf needs them, safetensors an extra (start-up)
    from fleqc.interop import require
    from fleqc.interop.model_card import config_json, model_card
    from fleqc.interop.safetensors_io import save_safetensors

    require("safetensors")
    folder.mkdir(parents=True, exist_ok=True)
    save_safetensors(model, folder / "model.safetensors")
    config = json.dumps(config_json(model, "model.safetensors", what), indent=2) + "\n"
    write_atomically(folder / "config.json", lambda f: f.write(config.encode("utf-8")))
    card = model_card(model, "model.safetensors", what)
    write_atomically(folder / "README.md", lambda f: f.write(card.encode("utf-8")))
    click.echo(f"wrote {folder}: model.safetensors, config.json, README.md ({what})")
