"""`xec repair`: rebuild damaged shards of a finished store from its source files."""

from __future__ import annotations

from pathlib import Path

import click

from xec_cli.ingest_cmd import command_line


def parse_units(text: str | None) -> list[int] | None:
    """'3,7,9' -> [3, 7, 9]; None stays None (every damaged unit)."""
    if text is None:
        return None
    try:
        return sorted({int(u) for u in text.split(",") if u.strip()})
    except ValueError:
        raise click.BadParameter(f"give shard numbers like 3,7 (got {text!r})") from None


@click.command("repair")
@click.argument("store", type=click.Path(path_type=Path))
@click.option(
    "--units",
    default=None,
    help="Shards (work units) to rebuild, e.g. 3,7, as `xec inspect --verify` prints them. "
    "Default: verify the whole store and rebuild whatever is damaged.",
)
@click.option("--workers", type=int, default=None, help="Worker processes (default: all cores).")
def repair_command(store: Path, units: str | None, workers: int | None) -> None:
    """Rebuild shards of STORE from the ROOT files its provenance names (checked by size and
    sha256; a changed file is refused). The rebuilt shards equal the undamaged ones."""
    from xecdata.repair import repair

    command = command_line("repair", [str(store)], {"units": units, "workers": workers})
    res = repair(store, parse_units(units), workers=workers, command=command)
    if not res.units and not res.small_arrays:
        click.echo(f"repair: store {res.store} has no damaged chunk; nothing to do")
        return
    click.echo(
        f"repair: rebuilt shards {res.units} of {res.store} ({res.events} events from "
        f"{len(res.files)} source files) and small arrays {res.small_arrays or 'none'} in "
        f"{res.seconds:.1f} s; check with `xec inspect --verify {store}`"
    )
