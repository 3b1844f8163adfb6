"""`xec demo`: the whole path on embedded defaults, one `xec` verb after another.

simulate -> ingest -> train the regressor -> validate with plots -> export ONNX -> simulate a
fresh file with the conventional reconstruction (`--reco`), run `xec infer` on it and
`xec analyze --conventional` its predictions: against the truth, and the ML-vs-conventional
table (both against the truth on the same events) that the demo ends with. Each
step is printed as the command a user would type, so the demo doubles as a walk-through;
everything lands in one folder (default ./xec-demo).
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import click

DEMO_TASKS = "angle,energy,timing,uvwFI"
FRESH_EVENTS = 1024  # the validation events of the closing ML-vs-conventional table


def demo_steps(out: Path, events: int, epochs: int, batch_size: int) -> list[list[str]]:
    """The `xec` argument lists the demo runs, in order."""
    sim, store = out / "sim", out / "store.xec.zarr"
    run_name = "demo-regressor"
    ckpt = out / "runs" / run_name / "checkpoint_best.pth"
    per_file = max(events // 4, 1)
    return [
        ["simulate", "-n", str(events), "-o", str(sim), "--events-per-file", str(per_file),
         "--seed", "1", "--energy", "flat"],
        ["ingest", str(sim), "-o", str(store), "--scheme", "new@1", "--chunk-events", "128"],
        ["inspect", str(store)],
        ["train", "regressor", "--store", str(store), "--epochs", str(epochs),
         "--batch-size", str(batch_size), "--tasks", DEMO_TASKS, "--run-name", run_name,
         "--set", f"checkpoint.dir={out / 'runs'}",
         "--set", f"tracking.uri=sqlite:///{out / 'mlruns.db'}",
         "--set", f"tracking.artifact_location={out / 'mlartifacts'}"],
        ["validate", str(ckpt), "--store", str(store), "-o", str(out / "validation")],
        ["export", "onnx", str(ckpt), "-o", str(out / "model.onnx")],
        ["simulate", "-n", str(FRESH_EVENTS), "-o", str(out / "fresh.root"), "--seed", "2",
         "--energy", "flat", "--reco"],
        ["infer", str(out / "model.onnx"), str(out / "fresh.root"), "-o",
         str(out / "inference.root")],
        ["analyze", str(out / "inference.root"), "-o", str(out / "analysis"), "--conventional"],
    ]  # fmt: skip


@click.command()
@click.option(
    "-o",
    "--output",
    "out",
    default="xec-demo",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for everything.",
)
@click.option(
    "-n",
    "--events",
    default=4000,
    show_default=True,
    type=click.IntRange(min=2000),
    help="Simulated training + validation events.",
)
@click.option("--epochs", default=3, show_default=True, type=click.IntRange(min=1))
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1))
def demo(out: Path, events: int, epochs: int, batch_size: int) -> None:
    """Run the whole workflow on simulated data: simulate, ingest, train, validate, export, infer.

    Uses the GPU when there is one, the CPU otherwise; MLflow tracks into a SQLite file in the
    output folder. Re-running reuses nothing: remove the folder first or pick another one.
    """
    from xec_cli.main import main

    if out.exists() and any(out.iterdir()):
        raise click.ClickException(
            f"{out} already exists and is not empty; remove it or pass -o NEW_FOLDER"
        )
    out.mkdir(parents=True, exist_ok=True)
    steps = demo_steps(out, events, epochs, batch_size)
    for i, args in enumerate(steps, 1):
        click.secho(f"\n[{i}/{len(steps)}] xec {shlex.join(args)}", bold=True)
        t0 = time.perf_counter()
        main.main(args=args, standalone_mode=False)
        click.echo(f"    done in {time.perf_counter() - t0:.1f} s")
    click.secho("\nDemo finished. Look at:", bold=True)
    click.echo(f"  plots and prediction CSVs   {out / 'validation'}")
    click.echo(f"  checkpoints                 {out / 'runs'}")
    click.echo(f"  ONNX model / inference      {out / 'model.onnx'}, {out / 'inference.root'}")
    click.echo(f"  analysis of the inference   {out / 'analysis'}")
    click.echo(f"  ML vs conventional table    {out / 'analysis' / 'physics.md'} (and .pdf)")
    click.echo(
        f"  MLflow UI                   mlflow ui --backend-store-uri sqlite:///{out / 'mlruns.db'}"
        " --port 5000   (then open http://localhost:5000)"
    )
