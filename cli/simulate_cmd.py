"""`xec simulate`: write toy LXe detector events as ROOT files (a shell over xecdata.sim)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from xecdata.sim import COMPRESSIONS, SimConfig, parse_energy, simulate
from xecdata.sim.effects import EFFECTS, parse_effects
from xecdata.sim.response import TIME_MIN_NPHE
from xecdata.sim.writer import DEFAULT_COMPRESSION

if TYPE_CHECKING:
    from xecdata.reco.calibration import Calibration

_DEFAULTS = SimConfig()
# per-effect parameters: option name, SimConfig field, help
_EFFECT_PARAMS = (
    ("--shower-spot-scale", "shower_spot_scale", "Spots per shower relative to GFlash's count."),
    ("--rayleigh-length", "rayleigh_length", "Rayleigh scattering length of the light (cm)."),
    ("--reflectivity", "reflectivity", "Specular reflectivity of the inner face (MPPCs)."),
    ("--gain-spread", "gain_spread", "Relative spread of the sensors' efficiency x gain."),
    ("--calibration-error", "calibration_error", "Relative error of each sensor's calibration."),
    ("--noise-pe", "noise_pe", "Electronics charge noise per channel (photoelectrons)."),
    ("--time-jitter", "sigma_1pe", "Single-photoelectron time jitter (ns), / sqrt(nphe)."),
    ("--time-floor", "sigma_floor", "Electronics time jitter per channel (ns)."),
    ("--time-calibration-error", "time_calibration_error", "Per-channel time offsets (ns)."),
    ("--board-jitter", "board_jitter", "Clock jitter per DAQ board of 16 channels (ns)."),
    ("--crate-jitter", "crate_jitter", "Clock jitter per DAQ crate of 16 boards (ns)."),
    ("--reference-jitter", "reference_jitter", "Jitter of the event's time reference (ns)."),
)


def _energy(ctx: click.Context, param: click.Parameter, value: str) -> tuple[float, float]:
    try:
        return parse_energy(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from err


def _effects(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    try:
        return parse_effects(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from err


def effect_options(fn: Callable[..., None]) -> Callable[..., None]:
    """The --effects switch and one option per effect parameter (defaults: SimConfig's)."""
    for option, field, text in reversed(_EFFECT_PARAMS):
        default = getattr(_DEFAULTS, field)
        fn = click.option(option, field, type=click.FloatRange(min=0.0), default=default,
                          show_default=True, help=text)(fn)  # fmt: skip
    fn = click.option(
        "--detector-seed",
        "detector_seed",
        type=click.IntRange(min=0),
        default=_DEFAULTS.detector_seed,
        show_default=True,
        help="Seed of the detector's fixed sensor constants (gain spread, calibration "
        "errors, time offsets), the same in every run; another value is another detector.",
    )(fn)
    return click.option(
        "--effects",
        default="all",
        show_default=True,
        callback=_effects,
        help="Detector effects: 'all' (the realistic detector), 'none' (ideal) or a comma "
        f"list of {', '.join(EFFECTS)}; '-NAME' removes one (e.g. 'all,-noise').",
    )(fn)


def _calibration(path: Path | None) -> Calibration:
    """The reconstruction calibration of --reco, checked against this geometry."""
    from xecdata.reco.calibration import default_calibration, load_calibration

    cal = default_calibration() if path is None else load_calibration(path)
    cal.check_usable(str(path or cal.id))
    return cal


@click.command()
@click.option(
    "-n",
    "--events",
    "n_events",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="Number of events.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="A .root file, or a folder that receives xecsim_run<run>_<k>.root files.",
)
@click.option(
    "--events-per-file",
    type=click.IntRange(min=1),
    default=None,
    help="Split the events into files of this size (needs a folder as -o).",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Random seed; the same seed gives the same events, however they are split.",
)
@click.option(
    "--energy",
    default="52.8",
    show_default=True,
    callback=_energy,
    help="Gamma energy in MeV: '52.8' (line), '40:55' (flat range), 'line' or 'flat' "
    "(15-60). Nothing under 14.5 MeV is produced.",
)
@click.option(
    "--dead-fraction",
    type=click.FloatRange(0.0, 1.0, max_open=True),
    default=0.0,
    show_default=True,
    help="Fraction of channels dead for the whole run (1e10).",
)
@click.option(
    "--pileup",
    type=click.IntRange(1, 4),
    default=1,
    show_default=True,
    help="Maximum gammas per event; nGamma is uniform in 1..PILEUP.",
)
@click.option(
    "--compression",
    type=click.Choice(sorted(COMPRESSIONS)),
    default=DEFAULT_COMPRESSION,
    show_default=True,
    help="ROOT basket compression.",
)
@click.option(
    "--compression-level",
    type=click.IntRange(1, 9),
    default=None,
    help="Compression level (default 1, the fastest).",
)
@click.option(
    "--run",
    "run_number",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Run number written to the `run` branch and the file names.",
)
@click.option(
    "--time-threshold",
    type=click.FloatRange(min=0.0),
    default=TIME_MIN_NPHE,
    show_default=True,
    help="Sensors with fewer photoelectrons get no time (1e10).",
)
@click.option(
    "--reco",
    is_flag=True,
    help="Also write the conventional reconstruction (xec reco's branches) of each event.",
)
@click.option(
    "--calibration",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Reconstruction calibration for --reco (default: the one shipped with xec).",
)
@effect_options
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
def simulate_command(
    n_events: int,
    output: Path,
    events_per_file: int | None,
    seed: int,
    energy: tuple[float, float],
    dead_fraction: float,
    pileup: int,
    compression: str,
    compression_level: int | None,
    run_number: int,
    time_threshold: float,
    reco: bool,
    calibration: Path | None,
    quiet: bool,
    **effect_params: object,
) -> None:
    """Simulate gammas in the toy LXe detector and write ROOT files (tree `tree`)."""
    if calibration is not None and not reco:
        raise click.UsageError("--calibration applies to --reco; add --reco or drop it")
    cal = _calibration(calibration) if reco else None
    try:
        config = SimConfig(energy=energy, dead_fraction=dead_fraction, pileup=pileup,
                           run=run_number, time_min_nphe=time_threshold,
                           **effect_params)  # type: ignore[arg-type]  # fmt: skip
        paths = simulate(n_events, output, seed=seed, config=config,
                         events_per_file=events_per_file, compression=compression,
                         compression_level=compression_level, progress=not quiet,
                         reco=cal)  # fmt: skip
    except ValueError as err:
        raise click.UsageError(str(err)) from err
    if not quiet:
        size = sum(p.stat().st_size for p in paths) / 1e6
        click.echo(f"wrote {n_events} events in {len(paths)} file(s), {size:.1f} MB:")
        for p in paths:
            click.echo(f"  {p}")
