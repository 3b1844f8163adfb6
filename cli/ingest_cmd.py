"""`xec ingest`: ROOT files -> a normalized, versioned Zarr tensor store (xecdata.ingest)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from xecdata.ingest import IngestResult

from xecdata.store.codecs import PROFILE_NAMES
from xecdata.store.format import CHUNK_EVENTS, SHARD_CHUNKS

FLAGS = {"schemes": "--scheme"}  # parameter name -> flag, where they differ


def command_line(verb: str, args: list[str], options: dict[str, object]) -> str:
    """The command as a user would type it again to resume (options that differ from their
    defaults, at their values)."""
    ctx = click.get_current_context(silent=True)
    defaults = {p.name: p.default for p in ctx.command.params} if ctx is not None else {}
    parts = ["xec", verb, *args]
    for key, value in options.items():
        if (key in defaults and value == defaults[key]) or value == ():
            continue
        flag = FLAGS.get(key, "--" + key.replace("_", "-"))
        if value is True:
            parts.append(flag)
        elif isinstance(value, (list, tuple)):
            for v in value:
                parts += [flag, str(v)]
        elif value not in (None, False):
            parts += [flag, str(value)]
    return shlex.join(parts)


def print_result(res: IngestResult) -> None:
    """The closing summary of an ingest / append / renormalize (or of one part of it)."""
    rate = res.events_written / res.seconds if res.seconds else 0.0
    state = "now holds" if res.complete else "is not complete yet; its plan has"
    click.echo(
        f"{res.action}: {res.store} {state} {res.n_events} events "
        f"({res.events_written} written by {res.units_run} units, {res.units_resumed} units "
        f"already done) in {res.seconds:.1f} s = {rate:.0f} events/s with {res.workers} "
        f"worker{'s' if res.workers != 1 else ''}; "
        f"peak RSS per worker {res.peak_rss_mb:.0f} MB"
    )
    for note in res.notes:
        click.echo(f"note: {note}")
    for s in res.skipped:
        click.echo(f"skipped: {s['path']}: {s['reason']}", err=True)


@click.command("ingest")
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    help="Store directory (conventionally NAME.xec.zarr).",
)
@click.option(
    "--scheme",
    "schemes",
    multiple=True,
    help="Normalization scheme id (name@version, or a bare name for its latest "
    "version) or a scheme YAML/JSON file; repeat for several. Default: new.",
)
@click.option("--tree", default="tree", show_default=True, help="TTree name.")
@click.option(
    "--npho-branch",
    default=None,
    help="Photon-count branch. Default: npho, else relative_npho (with a note).",
)
@click.option("--time-branch", default="relative_time", show_default=True, help="Time branch.")
@click.option(
    "--codec",
    type=click.Choice(PROFILE_NAMES),
    default=None,
    help="Codec profile: fast (default), dense, none, gpu (plain zstd chunks).",
)
@click.option("--workers", type=int, default=None, help="Worker processes (default: all cores).")
@click.option(
    "--val-fraction",
    type=float,
    default=None,
    help="Validation fraction in chunk-sized blocks (default 0.1).",
)
@click.option("--keep-raw", is_flag=True, help="Also keep raw float32 npho/time (lossless).")
@click.option("--append", is_flag=True, help="Add the inputs to a finished store.")
@click.option("--skip-bad", is_flag=True, help="Record bad input files in the metadata and go on.")
@click.option(
    "--allow-duplicate", is_flag=True, help="Ingest files whose checksum is already in the store."
)
@click.option(
    "--chunk-events", type=int, default=CHUNK_EVENTS, show_default=True, help="Events per chunk."
)
@click.option(
    "--shard-chunks",
    type=int,
    default=SHARD_CHUNKS,
    show_default=True,
    help="Chunks per shard file (= one work unit).",
)
@click.option(
    "--part",
    default=None,
    metavar="K/N",
    help="Run the K-th of N shares of the work, so that N processes (e.g. on N nodes of a "
    "cluster, one shared file system) fill one store; the last to finish completes it.",
)
@click.option(
    "--finalize",
    is_flag=True,
    help="Complete a store whose --part runs have all finished (if none could).",
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def ingest_command(
    inputs: tuple[str, ...],
    output: Path,
    quiet: bool,
    part: str | None,
    finalize: bool,
    **options: object,
) -> None:
    """Ingest ROOT files, folders, globs or URLs (root://, https://, s3://) INPUT... into the
    store -o STORE.

    Re-running the same command resumes an interrupted ingest; the result is identical to an
    uninterrupted run, whatever --workers, and whatever --part split the work.
    """
    from xecdata.ingest import IngestError, ingest
    from xecdata.rootio import InputError
    from xecdata.store import StoreError
    from xecdata.store.parts import parse_part

    args = [*inputs, "-o", str(output)]
    command = command_line("ingest", args, options)  # the same for every part
    try:
        share = parse_part(part) if part is not None else None
        res = ingest(inputs, output, progress=not quiet, command=command, part=share,
                     finalize=finalize, **options)  # type: ignore[arg-type]  # fmt: skip
    except (IngestError, InputError, StoreError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    print_result(res)
