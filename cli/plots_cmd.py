"""`xec plots RUN_DIR`: redraw a run's resolution PDFs from its prediction CSVs."""

from __future__ import annotations

from pathlib import Path

import click

from xectrain.artifacts import PLOTTED_TASKS, regenerate_plots


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--tasks",
    "-t",
    multiple=True,
    type=click.Choice(PLOTTED_TASKS),
    help="Only these tasks (repeat the option); default: every task with a CSV.",
)
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the PDFs here instead of RUN_DIR.",
)
def plots(run_dir: Path, tasks: tuple[str, ...], output_dir: Path | None) -> None:
    """Regenerate resolution_<task>_<run>.pdf from predictions_<task>_<run>.csv in RUN_DIR."""
    try:
        written = regenerate_plots(run_dir, tasks or None, output_dir)
    except FileNotFoundError as err:
        raise click.ClickException(str(err)) from None
    for task, path in written.items():
        click.echo(f"{task}: {path}")
