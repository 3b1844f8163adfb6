"""`xec inspect`: what a store holds, how precisely, where it came from, whether it is done."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("inspect")
@click.argument("store", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON.")
def inspect_command(store: Path, as_json: bool) -> None:
    """Events, splits, schemes with hashes, arrays (dtype, chunks, codec, bytes/event),
    precision, statistics, provenance and completeness of STORE."""
    from xecdata.store import StoreError
    from xecdata.store.describe import describe, format_text

    try:
        desc = describe(store)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(desc, indent=1) if as_json else format_text(desc))
