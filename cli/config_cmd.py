"""`xec config migrate|show`: bring an earlier tool's config over, print a resolved config."""

from __future__ import annotations

from pathlib import Path

import click

from xectrain.config.sections import KINDS

KIND_CHOICE = click.Choice(KINDS)


@click.group()
def config() -> None:
    """Run configurations: migrate one of the earlier tool (xec-ml-wl), show a resolved one."""


@config.command()
@click.argument("old", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the xec configuration (YAML).")  # fmt: skip
@click.option("--kind", type=KIND_CHOICE, help="Model kind (default: guessed from the file).")
@click.option("--store", help="The store ingested from the earlier data.train_path / val_path.")
@click.option("--strict", is_flag=True, help="Fail (write nothing) when a key is not migrated.")
@click.option(
    "--keys",
    "show_keys",
    is_flag=True,
    help="List every key of the earlier tool with its xec key or why none, then exit.",
)
def migrate(old: Path | None, output: Path | None, kind: str | None, store: str | None,
            strict: bool, show_keys: bool) -> None:  # fmt: skip
    """Write the xec equivalent of the earlier tool's config OLD to -o NEW: one comment line
    above each key says which earlier key it came from and how its value was converted; keys
    with no xec equivalent are named with the reason (on stderr and in NEW)."""
    from xectrain.config import read_yaml
    from xectrain.config.legacy import key_table
    from xectrain.config.migrate import migrate_config, render_migration

    if show_keys:
        for old_key, new_key, note in key_table():
            click.echo(f"{old_key:34} {new_key:32} {note}".rstrip())
        return
    if old is None or output is None:
        raise click.UsageError("give the earlier config and -o NEW.yaml (or --keys)")
    m = migrate_config(read_yaml(old), kind, store, str(old))
    for key, why in m.not_migrated:
        click.echo(f"not migrated: {key}: {why}", err=True)
    if strict and m.not_migrated:
        raise click.ClickException(f"{len(m.not_migrated)} key(s) not migrated (--strict)")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_migration(m, str(old)))
    summary = f"{len(m.values) - 1} key(s) set, {len(m.not_migrated)} not migrated"
    click.echo(f"wrote {output} ({m.kind} config): {summary}")
    click.echo(f"train it: xec train {m.kind} -c {output}")


@config.command()
@click.option("-c", "--config", "path", type=click.Path(exists=True, dir_okay=False),
              help="YAML run configuration.")  # fmt: skip
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override one key.")
@click.option("--kind", type=KIND_CHOICE,
              help="Model kind (default: the file's model.kind, else regressor).")  # fmt: skip
def show(path: str | None, sets: tuple[str, ...], kind: str | None) -> None:
    """Print the resolved configuration (defaults <- -c file <- --set) as YAML."""
    import yaml

    from xectrain.config import load_config, read_yaml, to_dict

    if kind is None and path is not None:
        kind = (read_yaml(path).get("model") or {}).get("kind")
    cfg = load_config(kind or "regressor", path, sets)
    click.echo(yaml.safe_dump(to_dict(cfg), sort_keys=False), nl=False)
