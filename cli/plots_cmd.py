"""`xec plots RUN_DIR`: redraw a run's resolution PDFs from its prediction CSVs."""

from __future__ import annotations

from pathlib import Path

import click

from xectrain.artifacts import plotted_tasks, regenerate_plots

from .names import split_names


def parse_tasks(values: tuple[str, ...], known: tuple[str, ...], option: str) -> list[str]:
    """Task names from a repeated and/or comma-separated option, checked against `known`."""
    tasks = split_names(*values) or []
    unknown = [t for t in tasks if t not in known]
    if unknown:
        raise click.BadParameter(
            f"unknown task {', '.join(map(repr, unknown))}; choose from {', '.join(known)}",
            param_hint=option,
        )
    return tasks


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--tasks",
    "-t",
    multiple=True,
    help=f"Only these tasks, comma-separated or repeated ({', '.join(plotted_tasks())}); "
    "default: every task with a CSV.",
)
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the PDFs here instead of RUN_DIR.",
)
@click.option(
    "--suffix",
    default="",
    help="Appended to every output file name: resolution_<task>_<run><suffix>.pdf (e.g. _v2).",
)
def plots(run_dir: Path, tasks: tuple[str, ...], output_dir: Path | None, suffix: str) -> None:
    """Regenerate resolution_<task>_<run>.pdf from predictions_<task>_<run>.csv in RUN_DIR."""
    wanted = parse_tasks(tasks, plotted_tasks(), "--tasks")
    if "/" in suffix or "\\" in suffix:
        raise click.BadParameter(f"{suffix!r} is not part of a file name", param_hint="--suffix")
    try:
        written = regenerate_plots(run_dir, wanted or None, output_dir, suffix)
    except FileNotFoundError as err:
        raise click.ClickException(str(err)) from None
    for task, path in written.items():
        click.echo(f"{task}: {path}")
