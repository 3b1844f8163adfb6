"""`xec export onnx CHECKPOINT -o MODEL.onnx`: a checkpoint as a self-describing ONNX model."""

from __future__ import annotations

from pathlib import Path

import click

from .names import split_names


@click.group()
def export() -> None:
    """Export trained models."""


@export.command()
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="ONNX file to write.")  # fmt: skip
@click.option("--raw-inputs", is_flag=True,
              help="Take raw npho / time (photons, s) and normalize inside the graph.")  # fmt: skip
@click.option("--opset", default=18, show_default=True, type=int)
@click.option("--exporter", default="dynamo", show_default=True,
              type=click.Choice(["dynamo", "torchscript"]),
              help="torch.onnx exporter (torchscript: the legacy one, faster to run).")  # fmt: skip
@click.option("--tasks", help="Regressor: export only these of its tasks, comma-separated "
              "(e.g. angle,energy); default all.")  # fmt: skip
def onnx(checkpoint: Path, output: Path, raw_inputs: bool, opset: int, exporter: str,
         tasks: str | None) -> None:  # fmt: skip
    """Export CHECKPOINT (EMA weights) with physical-unit outputs, dynamic batch and xec
    metadata (scheme, geometry, tasks, units, transforms)."""
    from xectrain.checkpoint import CheckpointError
    from xectrain.serving.checkpoints import export_checkpoint

    names = split_names(tasks)
    try:
        path = export_checkpoint(checkpoint, output, raw_inputs, opset, exporter, names)
    except (CheckpointError, ValueError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"wrote {path}")
