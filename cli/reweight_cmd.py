"""`xec reweight`: fit the histogram reweighting of a store once and cache it in the store."""

from __future__ import annotations

from pathlib import Path

import click

from xecdata.tasks import TASKS


def parse_task(spec: str) -> tuple[str, tuple[int, ...]]:
    """'energy' -> ('energy', ()), 'angle=20,20' -> ('angle', (20, 20))."""
    name, _, bins = spec.partition("=")
    try:
        return name.strip(), tuple(int(b) for b in bins.split(",") if b.strip())
    except ValueError:
        raise click.BadParameter(f"--task {spec}: give NAME or NAME=BINS (angle=20,20)") from None


@click.command("reweight")
@click.argument("store", type=click.Path(path_type=Path))
@click.option(
    "--task",
    "tasks",
    multiple=True,
    required=True,
    help="Task to flatten, with optional bins (default shown): "
    + ", ".join(
        f"{t.reweight.key}[={','.join(map(str, t.reweight.bins))}]"
        for t in TASKS.values()
        if t.reweight
    )
    + "; repeat for several (their weights multiply).",
)
@click.option("--eps", type=float, default=1e-6, show_default=True, help="Weight 1/(count+eps).")
def reweight_command(store: Path, tasks: tuple[str, ...], eps: float) -> None:
    """Fit the reweighting tables on STORE's training split and write them into the store
    (atomically, under its lock). Training and loaders with the same settings then read them
    instead of fitting; they never write the store themselves, so it may be read-only."""
    from xecdata.ingest import IngestError, store_lock
    from xecdata.reweight import ReweightConfig, write_reweighter
    from xecdata.store import StoreError, open_store

    try:
        config = ReweightConfig.from_bins(dict(map(parse_task, tasks)), eps)
        st = open_store(store)
        with store_lock(st.path):
            _, path, written = write_reweighter(st, config)
    except (IngestError, StoreError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    bins = ", ".join(f"{t} {list(b)}" for t, b in config.task_bins().items())
    state = "written to" if written else "already cached in"
    click.echo(f"reweight: tables for {bins} (mean weight 1 over the training split) {state} "
               f"{path}")  # fmt: skip
