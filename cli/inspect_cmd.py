"""`xec inspect`: what a store, checkpoint, exported model or input ROOT file holds.

A folder is a store (events, splits, schemes, precision, provenance, completeness); a `.root`
file is checked as ingestion would check it; an `.onnx` file shows its xec metadata; any other
file is read as a checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click


def _store(path: Path) -> tuple[dict[str, Any], str]:
    from xecdata.store.describe import describe, format_text

    desc = describe(path)
    return desc, format_text(desc)


def _verify(path: Path) -> tuple[dict[str, Any], str]:
    from xecdata.store.verify import format_report, verify_store

    report = verify_store(path)
    out = report.to_dict()
    out["problem"] = not report.clean
    return out, format_report(report)


def _checkpoint(path: Path) -> tuple[dict[str, Any], str]:
    from xectrain.checkpoint.describe import describe_checkpoint, format_checkpoint

    desc = describe_checkpoint(path)
    return desc, format_checkpoint(desc)


def _onnx(path: Path) -> tuple[dict[str, Any], str]:
    from xecmodel import read_onnx_metadata

    try:
        meta = read_onnx_metadata(path)
    except Exception as exc:  # onnx raises several types for foreign files
        raise click.ClickException(f"{path}: not an exported xec model ({exc})") from exc
    text = "\n".join([f"ONNX model {path}"] + [f"  {k:<14}{v}" for k, v in meta.items()])
    return meta, text


def _root(path: Path, tree: str, npho: str | None, time: str, sample: int) -> tuple[dict, str]:
    from xecdata.rootcheck import describe_root_file, format_root_file

    desc = describe_root_file(path, tree, npho, time, sample)
    return desc, format_root_file(desc)


@click.command("inspect")
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON.")
@click.option("--tree", default="tree", show_default=True, help="TTree name (ROOT files).")
@click.option("--npho-branch", default=None, help="Npho branch (ROOT files; default npho).")
@click.option(
    "--time-branch", default="relative_time", show_default=True, help="Time branch (ROOT files)."
)
@click.option(
    "--sample", default=1000, show_default=True, help="Events summarised (ROOT files; 0: none)."
)
@click.option(
    "--verify",
    is_flag=True,
    help="Stores: read every chunk, list the damaged ones and the `xec repair` command that "
    "rebuilds them (exit status 1 when any is damaged).",
)
def inspect_command(
    target: Path,
    as_json: bool,
    tree: str,
    npho_branch: str | None,
    time_branch: str,
    sample: int,
    verify: bool,
) -> None:
    """What TARGET holds: a store folder (events, splits, schemes with hashes, arrays,
    precision, statistics, provenance, completeness), a checkpoint (.pth: kind, epoch, best
    metric, scheme, tasks, parameters, resumable), an exported model (.onnx: its metadata), or
    an input ROOT file (.root: branches, layout, content check, sensor statistics). A ROOT file
    with a content problem, or a store with a damaged chunk (--verify), exits with status 1
    after the report."""
    if not target.exists():
        raise click.ClickException(f"{target} does not exist")
    suffix = target.suffix.lower()
    if verify and not target.is_dir():
        raise click.ClickException(f"--verify checks stores; {target} is not a store folder")
    if target.is_dir():
        desc, text = _verify(target) if verify else _store(target)
    elif suffix == ".root":
        desc, text = _root(target, tree, npho_branch, time_branch, sample)
    elif suffix == ".onnx":
        desc, text = _onnx(target)
    else:
        desc, text = _checkpoint(target)
    click.echo(json.dumps(desc, indent=1, default=str) if as_json else text)
    if desc.get("problem"):
        raise SystemExit(1)
