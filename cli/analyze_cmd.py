"""`xec analyze`: an `xec infer` output against the truth (simulation) or the conventional
reconstruction (real data) it carries: metrics per task and resolution plots; or MAE /
inpainter prediction files: residuals of the reconstructed sensors per face and channel."""

from __future__ import annotations

import json
from pathlib import Path

import click

from xecdata.tasks import TASKS

from .names import split_names


@click.command("analyze")
@click.argument(
    "predictions",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option("-o", "--output-dir", type=click.Path(path_type=Path), default=None,
              help="Folder for analysis.json and the PDFs (default: beside the file, "
                   "<name>_analysis/).")  # fmt: skip
@click.option(
    "--against",
    type=click.Choice(["auto", "truth", "reco"]),
    default="auto",
    show_default=True,
    help="Reference: simulation truth, the conventional reconstruction ("
    + ", ".join(t.reco for t in TASKS.values() if t.reco)
    + "; without emiAngReco the angle from xyzVTX to xyzRecoFI), or truth when present.",
)
@click.option("--tasks", default=None, help="Comma-separated subset of the predicted tasks.")
@click.option(
    "--conventional",
    is_flag=True,
    help="Also measure the conventional reconstruction the file carries (xec simulate --reco) "
    "against the truth on the same events: the ML-vs-conventional table (physics.md, .json, .pdf).",
)
@click.option("--suffix", default="", help="Appended to every output file name (e.g. _v2).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def analyze(
    predictions: tuple[Path, ...],
    output_dir: Path | None,
    against: str,
    tasks: str | None,
    conventional: bool,
    suffix: str,
    as_json: bool,
) -> None:
    """Compare the regressor predictions in PREDICTIONS (written by `xec infer`) with the
    reference they carry; events whose reference is invalid (1e10, NaN) are left out and
    counted. MAE / inpainter prediction files (several: the ranks of one validation) and their
    `xec infer --mask-fraction` outputs get the residuals of their reconstructed sensors per
    face and channel instead."""
    from xectrain.analysis.predictions import AnalysisError, analyze_inference

    first = predictions[0]
    out = output_dir or first.with_name(f"{first.stem}_analysis")
    if _is_reconstruction(first):
        if against != "auto" or tasks or conventional:
            raise click.UsageError(
                "--against and --tasks apply to xec infer outputs (so does --conventional); "
                "MAE / inpainter prediction files are analysed per face and channel (drop those "
                "options)"
            )
        _reconstruction(predictions, out, suffix, as_json)
        return
    if len(predictions) > 1:
        raise click.UsageError("give one xec infer output at a time (several: MAE / inpainter)")
    predictions_file = first
    subset = split_names(tasks)
    try:
        report = analyze_inference(predictions_file, out, against, subset, suffix)
        if conventional:
            from xectrain.analysis.physics_files import compare_inference

            report["conventional"] = compare_inference(predictions_file, out, suffix)
    except AnalysisError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report, indent=1))
        return
    if "faces" in report:  # a model that fills sensors: residuals per face and channel
        _echo_faces(report, 1, out)
        return
    click.echo(f"{report['events']} events of {predictions_file} -> {out}")
    for task, entry in report["tasks"].items():
        if "skipped" in entry:
            click.echo(f"  {task:<9} skipped: {entry['skipped']}")
            continue
        m = entry["metrics"]
        shown = ", ".join(f"{k} {v:.4g}" for k, v in list(m.items())[:4])
        left = f", {entry['left_out']} left out" if entry["left_out"] else ""
        click.echo(f"  {task:<9} vs {entry['reference']}: {entry['events']} events{left}; {shown}")
        if "warning" in entry:
            click.echo(f"  {'':<9} WARNING: {entry['warning']}")
    if conventional:
        from xectrain.analysis.physics import markdown_split

        click.echo(f"\nML vs conventional, both against the truth ({out / f'physics{suffix}.md'}):")
        click.echo(markdown_split(report["conventional"]))


def _is_reconstruction(path: Path) -> bool:
    """An MAE / inpainter predictions file (its metadata has a `layout`)."""
    from xectrain.artifacts.rootio import read_metadata

    try:
        return "layout" in read_metadata(path)
    except Exception:  # not ROOT, or no metadata tree: analyze_inference explains
        return False


def _reconstruction(paths: tuple[Path, ...], out: Path, suffix: str, as_json: bool) -> None:
    from xectrain.analysis.reconstruction import analyze_reconstruction

    try:
        report = analyze_reconstruction(paths, out, suffix, progress=not as_json)
    except (ValueError, KeyError) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report, indent=1))
        return
    _echo_faces(report, len(paths), out)


def _echo_faces(report: dict, n_files: int, out: Path) -> None:
    click.echo(f"{report['kind']} predictions of {n_files} file(s) -> {out}")
    for face, per in report["faces"].items():
        parts = [
            f"{c}: n {v['n']}, bias {v['bias']:.3g}, rmse {v['rmse']:.3g}"
            for c, v in per.items()
            if v["n"]
        ]
        click.echo(f"  {face:<7} " + "; ".join(parts))
