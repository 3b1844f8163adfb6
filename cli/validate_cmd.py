"""`xec validate CHECKPOINT --store STORE`: metrics and artifacts of a trained checkpoint."""

from __future__ import annotations

from pathlib import Path

import click

from .names import split_names


@click.command()
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--store", required=True, type=click.Path(exists=True, file_okay=False),
              help="Zarr store holding the checkpoint's normalization scheme.")  # fmt: skip
@click.option("--split", default="val", show_default=True, help="Store split to validate on.")
@click.option("-o", "--output-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where to write (default: validate_<split> beside the checkpoint).")  # fmt: skip
@click.option("--batch-size", default=256, show_default=True, type=int)
@click.option("--max-batches", type=int, help="Validate on the first N batches only.")
@click.option("--backend", default="auto", show_default=True, help="Loader backend.")
@click.option(
    "--device", default="auto", show_default=True, type=click.Choice(["auto", "cuda", "cpu"])
)
@click.option("--tasks", help="Regressor: validate and plot only these of its tasks, "
              "comma-separated (e.g. energy,angle); default all.")  # fmt: skip
def validate(checkpoint: Path, store: str, split: str, output_dir: Path | None, batch_size: int,
             max_batches: int | None, backend: str, device: str,
             tasks: str | None) -> None:  # fmt: skip
    """Validate CHECKPOINT (its EMA weights) on a store split: metrics.json, prediction CSVs and
    resolution PDFs (regressor) or streamed ROOT predictions (MAE / inpainter)."""
    from xecdata.store import StoreError
    from xectrain.checkpoint import CheckpointError
    from xectrain.serving.checkpoints import validate_checkpoint

    names = split_names(tasks)
    try:
        metrics = validate_checkpoint(checkpoint, store, split, output_dir, batch_size,
                                      max_batches, backend, device, names)  # fmt: skip
    except (CheckpointError, StoreError, KeyError, ValueError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from None
    for key in sorted(metrics):
        click.echo(f"{key} = {metrics[key]:.6g}")
