"""`xec renormalize`: add a normalization scheme to a store from its raw arrays."""

from __future__ import annotations

from pathlib import Path

import click

from xec_cli.ingest_cmd import command_line, print_result


@click.command("renormalize")
@click.argument("store", type=click.Path(path_type=Path))
@click.option("--scheme", required=True, help="Scheme id (name@version) or scheme YAML/JSON file.")
@click.option("--workers", type=int, default=None, help="Worker processes (default: all cores).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def renormalize_command(store: Path, scheme: str, workers: int | None, quiet: bool) -> None:
    """Add the tensor of scheme --scheme to STORE (made with `xec ingest --keep-raw`).

    Re-running the same command resumes an interrupted run.
    """
    from xecdata.ingest import renormalize

    command = command_line("renormalize", [str(store)], {"scheme": scheme, "workers": workers})
    res = renormalize(store, scheme, workers=workers, progress=not quiet, command=command)
    print_result(res)
