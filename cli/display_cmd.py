"""`xec display`: event displays (photons and times on the unfolded detector) of chosen events
of a store or an input ROOT file, one PDF per event."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np


def _parse_id(text: str) -> tuple[int, int]:
    try:
        run, event = text.split(":")
        return int(run), int(event)
    except ValueError:
        msg = f"{text!r}: write RUN:EVENT, e.g. 1000:17"
        raise click.BadParameter(msg, param_hint="--id") from None


def _title(source: str, entry: int, columns: dict[str, np.ndarray], kinds: dict[str, str],
           how: str) -> str:  # fmt: skip
    """Source, entry and ids, then the event's truth and reconstruction in display units
    (branches of a task shown as that task: E in MeV, θ/φ in deg, ...)."""
    from xecdata.tasks import task_of_branch
    from xectrain.artifacts.eventdisplay import titled

    ids = " ".join(f"{k} {int(columns[k])}" for k in ("run", "event") if k in columns)
    head = f"{Path(source).name}  entry {entry}  {ids}  ({how})"
    groups: dict[str, dict[str, np.ndarray]] = {"truth": {}, "reco": {}}
    for name, value in columns.items():
        kind = kinds.get(name)
        if kind in groups:
            task = task_of_branch(name)
            groups[kind][task.name if task else name] = value
    return titled(head, groups)


@click.command("display")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("-e", "--entry", "entries", multiple=True, type=int,
              help="Event index in the store / entry in the file; repeat for several.")  # fmt: skip
@click.option("--id", "ids", multiple=True, help="RUN:EVENT to find by its ids; repeatable.")
@click.option("--scheme", default=None,
              help="Store only: invert this scheme's tensor (default: raw arrays if kept, "
                   "else the store's first scheme).")  # fmt: skip
@click.option("--tree", default="tree", show_default=True, help="TTree name (ROOT files).")
@click.option("--npho-branch", default=None, help="Npho branch (ROOT files; default npho).")
@click.option("--time-branch", default="relative_time", show_default=True,
              help="Time branch (ROOT files).")  # fmt: skip
@click.option("-o", "--output-dir", type=click.Path(path_type=Path), default=Path("."),
              show_default=True, help="Folder for the PDFs.")  # fmt: skip
def display(
    source: Path,
    entries: tuple[int, ...],
    ids: tuple[str, ...],
    scheme: str | None,
    tree: str,
    npho_branch: str | None,
    time_branch: str,
    output_dir: Path,
) -> None:
    """Draw events of SOURCE (a store folder or an input .root file): photons and times of
    every sensor, dead sensors and invalid times grey, truth / reconstruction in the title.
    Writes OUTPUT_DIR/event_<entry>.pdf (event_<run>_<event>.pdf when picked with --id)."""
    from xecdata.events import root_events, store_events
    from xecdata.rootio import InputError
    from xecdata.store import StoreError
    from xectrain.artifacts.eventdisplay import plot_event
    from xectrain.evaluation.passes import NS_PER_S

    if not entries and not ids:
        raise click.UsageError("name events with --entry N or --id RUN:EVENT")
    wanted = [_parse_id(i) for i in ids]
    try:
        if source.is_dir():
            ev = store_events(source, entries, wanted, scheme)
        else:
            ev = root_events(source, entries, wanted, tree, npho_branch, time_branch)
    except (KeyError, IndexError, InputError, StoreError) as exc:
        raise click.ClickException(str(exc).strip("'\"")) from exc
    output_dir.mkdir(parents=True, exist_ok=True)
    for k, entry in enumerate(ev.entries):
        cols = {name: v[k] for name, v in ev.columns.items()}
        by_id = k >= len(entries) and "run" in cols and "event" in cols
        name = f"event_{int(cols['run'])}_{int(cols['event'])}" if by_id else f"event_{entry}"
        path = plot_event(ev.npho[k], NS_PER_S * ev.time[k], output_dir / f"{name}.pdf",
                          _title(ev.source, int(entry), cols, ev.kinds, ev.how))  # fmt: skip
        click.echo(f"wrote {path}")
