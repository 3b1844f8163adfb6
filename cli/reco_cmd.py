"""`xec reco`: the conventional LXe reconstruction (a shell over xecdata.reco):
`xec reco INPUT... -o OUT.root [--calibration FILE] [--json]` and
`xec reco calibrate SIM... -o CALIB.json [--name NAME --version N]`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click


class _DefaultGroup(click.Group):
    """A group whose first argument, when it is not a subcommand, goes to `run`: `xec reco
    IN.root -o OUT.root` and `xec reco calibrate ...` both work."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group("reco", cls=_DefaultGroup)
def reco() -> None:
    """Conventional reconstruction of the photon (position, energy, time, angle) from the
    sensors: `xec reco INPUT... -o OUT.root` (the `run` command), or build a calibration with
    `xec reco calibrate`."""


def _input_message(err: Any) -> str:
    """An input error, without the ingest's --skip-bad advice (xec reco has no such option)."""
    if "--skip-bad" not in err.fix:
        return str(err)
    return str(err).replace(err.fix, "Remove it from the inputs (ROOT files in the input "
                            "layout, folders of them, or stores)")  # fmt: skip


def _calibration(path: Path | None) -> Any:
    from xecdata.reco.calibration import default_calibration, load_calibration

    cal = default_calibration() if path is None else load_calibration(path)
    cal.check_usable(str(path) if path else f"the shipped calibration {cal.id}")
    return cal


@reco.command("run")
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="ROOT file to write (tree `reco` + `metadata`).")  # fmt: skip
@click.option("--calibration", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Calibration JSON (default: the one shipped with xec).")  # fmt: skip
@click.option("--batch-size", default=1024, show_default=True, type=click.IntRange(min=1))
@click.option("--tree", default="tree", show_default=True, help="TTree of ROOT inputs.")
@click.option("--npho-branch", help="Photon-count branch (default npho, else relative_npho).")
@click.option("--time-branch", default="relative_time", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON (only JSON).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def run(inputs: tuple[str, ...], output: Path, calibration: Path | None, batch_size: int,
        tree: str, npho_branch: str | None, time_branch: str, as_json: bool,
        quiet: bool) -> None:  # fmt: skip
    """Reconstruct the events of INPUT... (ROOT files, folders of them, URLs of ROOT files:
    root://, https://, s3://, or stores) into
    OUT.root: run, event, uvwRecoFI, xyzRecoFI (cm), energyReco (GeV), timeReco (ns),
    emiAngReco (deg) and statusReco; 1e10 where an event cannot be reconstructed."""
    from xecdata.reco.calibration import CalibrationError
    from xecdata.reco.resolution import format_table
    from xecdata.reco.run import reconstruct_files
    from xecdata.rootio import InputError
    from xecdata.store import StoreError
    from xectrain.artifacts.rootio import TableRootWriter

    def say(text: str) -> None:
        click.echo(f"note: {text}", err=True)

    try:
        cal = _calibration(calibration)
        summary = reconstruct_files(
            inputs, lambda example: TableRootWriter(output, example, tree="reco"), cal,
            batch=batch_size, tree=tree, npho_branch=npho_branch, time_branch=time_branch,
            progress=not (quiet or as_json), say=say,
        )  # fmt: skip
    except InputError as err:
        raise click.ClickException(_input_message(err)) from None
    except (CalibrationError, StoreError, ValueError) as err:
        raise click.ClickException(str(err)) from None
    if as_json:
        click.echo(json.dumps(summary, indent=1))
        return
    failed = ", ".join(f"{k} {v}" for k, v in summary["failed"].items() if v) or "none"
    rate = summary["events_per_s"]
    click.echo(f"{summary['events']} events -> {summary['output']} ({rate:.0f} events/s, "
               f"calibration {summary['calibration']}); not reconstructed: {failed}")  # fmt: skip
    if summary["resolution"]:
        click.echo("resolution against the truth in the inputs (sigma68, fiducial):")
        click.echo(format_table(summary["resolution"]))


@reco.command("calibrate")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Calibration JSON to write.")  # fmt: skip
@click.option("--name", default="calib", show_default=True, help="Calibration name.")
@click.option("--version", "version", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--tree", default="tree", show_default=True, help="TTree of ROOT inputs.")
@click.option("--npho-branch", help="Photon-count branch (default npho, else relative_npho).")
@click.option("--time-branch", default="relative_time", show_default=True)
@click.option("--attenuation-length", type=click.FloatRange(min=0.0, min_open=True),
              help="Attenuate the direct light over this length (cm) in the position fit's "
                   "model (the simulator's Rayleigh length is 45); off by default.")  # fmt: skip
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def calibrate(inputs: tuple[Path, ...], output: Path, name: str, version: int, tree: str,
              npho_branch: str | None, time_branch: str, attenuation_length: float | None,
              quiet: bool) -> None:  # fmt: skip
    """Build the reconstruction's calibration (first-interaction depth correction, energy
    weights / uniformity / scale, time constants) from simulated files SIM... (ROOT files,
    folders or stores with truth, e.g. from `xec simulate`). Same inputs, same bytes."""
    from xecdata.reco.calibrate import build_calibration
    from xecdata.reco.calibration import NAME_PATTERN, CalibrationError
    from xecdata.reco.inputs import resolve
    from xecdata.rootio import InputError

    if not re.fullmatch(NAME_PATTERN, name):
        raise click.BadParameter(f"{name!r} must match {NAME_PATTERN}", param_hint="--name")
    try:
        cal = build_calibration(resolve(inputs), name, version, progress=not quiet, tree=tree,
                                npho_branch=npho_branch, time_branch=time_branch,
                                attenuation_length=attenuation_length)  # fmt: skip
    except InputError as err:
        raise click.ClickException(_input_message(err)) from None
    except (CalibrationError, ValueError) as err:
        raise click.ClickException(str(err)) from None
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(cal.to_json(), encoding="utf-8")
    click.echo(f"{cal.id} {cal.hash} -> {output} ({cal.source['events_fitted']} of "
               f"{cal.source['events']} events fitted)")  # fmt: skip
