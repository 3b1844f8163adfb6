"""`xec bench`: throughput benchmarks. One subcommand per benchmark (ingest, reco, ...); results
print as text or JSON and can be written to a file (see benchmarks/)."""

from __future__ import annotations

import json
from pathlib import Path

import click

MIN_EVENTS = click.IntRange(min=256)  # fewer events time start-up, not throughput


def _thread_counts(ctx: click.Context, param: click.Parameter, text: str) -> tuple[int, ...]:
    """'1,2,4' -> (1, 2, 4); refuses anything but positive whole numbers."""
    try:
        counts = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        raise click.BadParameter(f"{text!r}: give thread counts like 1,2,4")
    return counts


@click.group("bench")
def bench() -> None:
    """Throughput benchmarks (results: benchmarks/results/)."""


def emit(result: dict[str, object], text: str, as_json: bool, output: Path | None) -> None:
    """Print a benchmark result; also write it as JSON to `output` when given."""
    click.echo(json.dumps(result, indent=1) if as_json else text)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=1) + "\n")


@bench.command("ingest")
@click.option("--events", type=MIN_EVENTS, default=16384, show_default=True,
              help="Simulated events.")  # fmt: skip
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="'All cores' worker count (default: all).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write the JSON result here (e.g. benchmarks/results/ingest.json).",
)
def bench_ingest(events: int, workers: int | None, as_json: bool, output: Path | None) -> None:
    """Ingest events/s (1 worker, all cores) vs a bare uproot read, bytes/event per codec
    profile vs the ROOT source, decode speed of the stored tensor."""
    from xecdata.store.bench import format_report, run_benchmark

    result = run_benchmark(events=events, workers=workers)
    emit(result, format_report(result), as_json, output)


@bench.command("loader")
@click.argument("store", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--backend",
    "backends",
    multiple=True,
    default=("cpu", "resident", "dali", "root"),
    show_default=True,
    help="Backend to measure (repeat the option for several).",
)
@click.option("--threads", default="1,2", show_default=True, callback=_thread_counts,
              help="Decode thread counts, comma-separated.")  # fmt: skip
@click.option("--batch-size", type=click.IntRange(min=1), default=1024, show_default=True)
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--output", type=click.Path(path_type=Path), default=None, help="Also write JSON.")
def bench_loader(
    store: Path,
    backends: tuple[str, ...],
    threads: tuple[int, ...],
    batch_size: int,
    device: str,
    as_json: bool,
    output: Path | None,
) -> None:
    """Loader events/s and GB/s per backend and thread count against the memory-mapped
    read of the same bytes uncompressed (the machine's bound)."""
    import torch

    from xecdata.loaders import BACKENDS
    from xecdata.loaders.bench import format_report, run_store_benchmark

    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise click.BadParameter(f"{unknown[0]!r}: choose from {', '.join(BACKENDS)}",
                                 param_hint="--backend")  # fmt: skip
    if device == "cuda" and not torch.cuda.is_available():
        raise click.BadParameter("no CUDA device is visible here; use cpu", param_hint="--device")
    result = run_store_benchmark(
        store, backends=backends, threads=threads, batch_size=batch_size, device=device
    )
    emit(result, format_report(result), as_json, output)


@bench.command("reco")
@click.option("--events", type=MIN_EVENTS, default=8192, show_default=True,
              help="Simulated events.")  # fmt: skip
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True,
              help="Runs (best counts).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--output", type=click.Path(path_type=Path), default=None,
              help="Also write JSON (e.g. benchmarks/results/reco.json).")  # fmt: skip
def bench_reco(events: int, repeats: int, as_json: bool, output: Path | None) -> None:
    """Events/s per core of `xec reco`'s whole path (read, reconstruct, write) against the
    simulator's own rate in the same process, and the CPU time of each stage."""
    from xecdata.reco.bench import format_report, run_benchmark
    from xectrain.artifacts.rootio import TableRootWriter

    result = run_benchmark(lambda path, example: TableRootWriter(path, example, tree="reco"),
                           events=events, repeats=repeats)  # fmt: skip
    emit(result, format_report(result), as_json, output)


@bench.command("physics")
@click.option(
    "--profile",
    type=click.Choice(["cpu", "gpu"]),
    default="cpu",
    show_default=True,
    help="cpu: tiny model, small sets (2 cores, <= 25 min); gpu: base model, full size (one GPU).",
)
@click.option(
    "--train-events",
    type=click.IntRange(min=256),
    default=None,
    help="Training events (default: the profile's).",
)
@click.option(
    "--val-events",
    type=click.IntRange(min=64),
    default=None,
    help="Events per reference set (default: the profile's).",
)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=None,
    help="Training epochs (default: the profile's).",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the simulated files, store and run here (default: a temporary folder).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=Path("benchmarks/results/physics.json"),
    show_default=True,
    help="JSON result; the markdown table (.md) and the PDF (.pdf) go beside it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def bench_physics(
    profile: str,
    train_events: int | None,
    val_events: int | None,
    epochs: int | None,
    workdir: Path | None,
    output: Path,
    as_json: bool,
) -> None:
    """The regressor against the conventional reconstruction on the same simulated events
    (52.8 MeV line, flat 15-60 MeV; realistic detector): sigma68 and bias of E, u, v, w, t,
    theta, phi, fiducial w > 2 / w < 2 cm and in bins of energy and depth."""
    import tempfile

    from xectrain.analysis.physics import markdown_report
    from xectrain.analysis.physics_bench import get_profile, run_physics, write_outputs

    chosen = get_profile(profile, train_events=train_events, val_events=val_events, epochs=epochs)
    log = (lambda _: None) if as_json else click.echo
    with tempfile.TemporaryDirectory(prefix="xec-physics-") as tmp:
        work = workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        result, residuals = run_physics(chosen, work, log)
    given = {"--train-events": train_events, "--val-events": val_events, "--epochs": epochs}
    command = f"xec bench physics --profile {profile}" + "".join(
        f" {k} {v}" for k, v in given.items() if v is not None
    )
    write_outputs(
        result,
        residuals,
        output,
        output.with_suffix(".md"),
        output.with_suffix(".pdf"),
        command,
    )
    emit(result, markdown_report(result["sets"], f"profile {profile}"), as_json, None)
