"""`xec validate CHECKPOINT --store STORE | --root FILE_OR_DIR...`: metrics and artifacts of a
trained checkpoint, on a store split or straight on ROOT files."""

from __future__ import annotations

from pathlib import Path

import click

from .names import split_names


@click.command()
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--store", type=click.Path(exists=True, file_okay=False),
              help="Zarr store holding the checkpoint's normalization scheme.")  # fmt: skip
@click.option("--split", default="val", show_default=True, help="Store split to validate on.")
@click.option("--root", "roots", multiple=True, metavar="FILE_OR_DIR",
              help="Validate on every event of these ROOT files (folders: every *.root below; "
              "globs) instead of a store; repeat for several. Streamed, normalized with the "
              "checkpoint's scheme as `xec ingest` stores it.")  # fmt: skip
@click.option("--tree", default="tree", show_default=True, help="TTree of --root inputs.")
@click.option("--npho-branch", help="Photon-count branch of --root inputs (default npho, else "
              "relative_npho).")  # fmt: skip
@click.option("--time-branch", default="relative_time", show_default=True,
              help="Time branch of --root inputs.")  # fmt: skip
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
def validate(checkpoint: Path, store: str | None, split: str, roots: tuple[str, ...], tree: str,
             npho_branch: str | None, time_branch: str, output_dir: Path | None,
             batch_size: int, max_batches: int | None, backend: str, device: str,
             tasks: str | None) -> None:  # fmt: skip
    """Validate CHECKPOINT (its EMA weights) on a store split (--store) or on ROOT files
    (--root): metrics.json, prediction CSVs, the validation ROOT file and resolution PDFs
    (regressor) or streamed ROOT predictions (MAE / inpainter)."""
    from xecdata.ingest import IngestError
    from xecdata.loaders.rootfiles import RootInputs
    from xecdata.store import StoreError
    from xectrain.checkpoint import CheckpointError
    from xectrain.serving.checkpoints import validate_checkpoint

    if (store is None) == (not roots):
        raise click.ClickException("give either --store STORE or --root FILE_OR_DIR (not both)")
    names = split_names(tasks)
    source: str | RootInputs = store if store is not None else RootInputs(
        roots, tree, npho_branch, time_branch)  # fmt: skip
    try:
        metrics = validate_checkpoint(checkpoint, source, split if store else "root",
                                      output_dir, batch_size, max_batches, backend, device,
                                      names)  # fmt: skip
    except (CheckpointError, StoreError, IngestError, KeyError, ValueError,
            FileNotFoundError) as err:  # fmt: skip
        msg = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        raise click.ClickException(msg) from None
    for key in sorted(metrics):
        click.echo(f"{key} = {metrics[key]:.6g}")
