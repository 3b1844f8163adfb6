"""`xec analyze`: an `xec infer` output against the truth (simulation) or the conventional
reconstruction (real data) it carries: metrics per task and resolution plots."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("analyze")
@click.argument("predictions", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output-dir", type=click.Path(path_type=Path), default=None,
              help="Folder for analysis.json and the PDFs (default: beside the file, "
                   "<name>_analysis/).")  # fmt: skip
@click.option(
    "--against",
    type=click.Choice(["auto", "truth", "reco"]),
    default="auto",
    show_default=True,
    help="Reference: simulation truth, the conventional reconstruction (energyReco, timeReco, "
    "uvwRecoFI; angle from xyzVTX to xyzRecoFI), or truth when present.",
)
@click.option("--tasks", default=None, help="Comma-separated subset of the predicted tasks.")
@click.option("--suffix", default="", help="Appended to every output file name (e.g. _v2).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def analyze(
    predictions: Path,
    output_dir: Path | None,
    against: str,
    tasks: str | None,
    suffix: str,
    as_json: bool,
) -> None:
    """Compare the regressor predictions in PREDICTIONS (written by `xec infer`) with the
    reference they carry; events whose reference is invalid (1e10, NaN) are left out and
    counted."""
    from xectrain.analysis import AnalysisError, analyze_inference

    out = output_dir or predictions.with_name(f"{predictions.stem}_analysis")
    subset = [t.strip() for t in tasks.split(",") if t.strip()] if tasks else None
    try:
        report = analyze_inference(predictions, out, against, subset, suffix)
    except AnalysisError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report, indent=1))
        return
    click.echo(f"{report['events']} events of {predictions} -> {out}")
    for task, entry in report["tasks"].items():
        if "skipped" in entry:
            click.echo(f"  {task:<9} skipped: {entry['skipped']}")
            continue
        m = entry["metrics"]
        shown = ", ".join(f"{k} {v:.4g}" for k, v in list(m.items())[:4])
        left = f", {entry['left_out']} left out" if entry["left_out"] else ""
        click.echo(f"  {task:<9} vs {entry['reference']}: {entry['events']} events{left}; {shown}")
