"""`xec infer MODEL.onnx INPUT... -o OUT.root`: ONNX Runtime over ROOT files or stores."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="ROOT file to write (tree `predictions` + `metadata`).")  # fmt: skip
@click.option("--batch-size", default=512, show_default=True, type=int)
@click.option("--tree", default="tree", show_default=True, help="TTree of ROOT inputs.")
@click.option("--npho-branch", help="Photon-count branch (default npho, else relative_npho).")
@click.option("--time-branch", default="relative_time", show_default=True)
@click.option("--mask-fraction", default=0.0, show_default=True, type=float,
              help="MAE / inpainter: also mask this fraction of the measured sensors (seeded) "
                   "and keep their measured values: `xec analyze` scores the filling.")  # fmt: skip
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of --mask-fraction.")
def infer(model: Path, inputs: tuple[str, ...], output: Path, batch_size: int, tree: str,
          npho_branch: str | None, time_branch: str, mask_fraction: float,
          seed: int) -> None:  # fmt: skip
    """Run MODEL on INPUT... (ROOT files, URLs of ROOT files: root://, https://, s3://, or
    stores), normalized with the model's own scheme; CUDA when onnxruntime has it, CPU
    otherwise. Writes the outputs the model's kind declares: pred_<task> (regressor), or
    npho / time with the dead sensors filled (MAE, inpainter)."""
    from xecdata.rootio import InputError
    from xecdata.store import StoreError
    from xectrain.serving.infer import InferenceError, run_inference

    try:
        summary = run_inference(model, inputs, output, batch_size, tree, npho_branch,
                                time_branch, mask_fraction, seed)  # fmt: skip
    except (InferenceError, InputError, StoreError, KeyError) as err:
        raise click.ClickException(str(err)) from None
    rate = summary["events"] / max(summary["seconds"], 1e-9)
    click.echo(f"{summary['events']} events -> {summary['output']} ({rate:.0f} events/s, "
               f"{summary['provider']})")  # fmt: skip
