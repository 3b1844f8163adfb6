"""Detector effects of the toy simulator: their names, switches, random streams and the
detector's sensor constants they draw.

Every effect can be switched on or off on its own (``SimConfig.effects``); the default is all
of them (the simulated detector is as sharp as the real one, no sharper) and ``none`` is the
ideal detector of the tests that check truth recovery. Each effect draws its random numbers
from its own stream, ``SeedSequence(seed, spawn_key=(0, block, stream))``, so that switching
one effect never changes the draws of another, and events stay independent of the file split.

The effects, their parameters (``SimConfig`` fields) and sources; docs/detector-realism.md
has the table:

- ``shower`` (``xecdata.sim.shower``): shower-to-shower fluctuations and leakage. The energy
  is sampled as GFlash spots (Grindhammer & Peters, hep-ex/0001020; Geant4 GFlash homogeneous
  tuning): N = 93 ln(Z) (E/GeV)^0.876 spots (28 at 52.8 MeV in xenon), depths drawn
  independently from the longitudinal profile, radii from the two-component (core + tail)
  radial profile; spots outside the xenon leak. Off: the smooth toy shower (stratified
  depths, equal deposits, Gaussian lateral spread). Tuned: ``shower_spot_scale`` = 4 times
  GFlash's spot count (113 spots at 52.8 MeV). GFlash's count is a fit to GeV showers; its
  extrapolation to 50 MeV makes each spot carry 3.6 % of the energy, so that leakage comes in
  3.6 % steps and the conventional reconstruction of the default detector is a third to two
  times broader than MEG II's published resolutions in energy and position; 4 times the
  spots brings them to the published values (docs/detector-realism.md, where the
  measurements with 1 and 4 are).
- ``yield``: intrinsic fluctuation of the scintillation yield (recombination), 2.3 % at
  511 keV (Romo-Luque et al., arXiv:2210.07625, liquid-xenon scintillation-only readout),
  scaled as 1/sqrt(E) per deposit (independent electrons): 0.23 % on a 52.8 MeV shower.
- ``rayleigh``: elastic Rayleigh scattering of the scintillation light with
  ``rayleigh_length`` = 45 cm (measured in the MEG 100 l prototype, Baldini et al., NIM A 545
  (2005) 753, arXiv:physics/0407033, which also found the absorption length > 100 cm: no
  absorption is modelled). Direct light is attenuated by exp(-r / L); the scattered light is
  re-emitted from four fixed points around the shower's light centroid, at the mean distance
  of the first scattering (``xecdata.sim.scattering``).
- ``reflection``: specular reflection of the light on the inner face (the MPPC surfaces) with
  ``reflectivity`` (an image source behind the face); the PMT quartz windows are index-matched
  to the xenon (n = 1.61 vs ~1.6) and reflect nothing here.
- ``gain``: per-sensor photon-detection-efficiency (PDE x gain) spread ``gain_spread`` (the
  true efficiencies, which change the photostatistics) and the residual error of its
  calibration ``calibration_error`` (what converts nphe to npho: npho is off by that factor).
  Both are fixed for the detector, drawn from ``detector_seed`` (the same in every run).
- ``noise``: electronics noise of the charge, Gaussian ``noise_pe`` photoelectrons per channel
  and event, added to nphe (counts may then be negative, as in real data); the measured
  charge is written digitized (``xecdata.sim.response``).
- ``jitter``: single-photoelectron time jitter ``sigma_1pe`` (photosensor transit-time spread
  and single-photon timing) as sigma_1pe / sqrt(nphe), plus an electronics floor
  ``sigma_floor`` per channel and event.
- ``time_calibration``: per-channel residual time offsets after the inter-channel time
  calibration, Gaussian ``time_calibration_error``, fixed for the detector (``detector_seed``).
- ``clock``: the jitter of the sampling clocks between DAQ boards, correlated between the
  channels of a board: per event, every board of ``CHANNELS_PER_BOARD`` = 16 channels
  (WaveDREAM boards; channel ids taken in order, board = id // 16, the real cabling is not
  modelled) gets a Gaussian offset ``board_jitter``, and every crate of
  ``BOARDS_PER_CRATE`` = 16 boards (WaveDAQ crates; MEG II synchronises more than 30 crates
  with over 9000 channels, S. Ritt, "Experiences with picosecond level timing in large
  systems", CERN Indico 1214183) one of ``crate_jitter``. Both 20 ps: assumed (no public
  number was found for either; the design aims at a few ps).
- ``time_reference``: the jitter of the event's time reference, one Gaussian offset
  ``reference_jitter`` per event common to every channel (the trigger / reference clock
  phase the photon time is measured against). Assumed and tuned: with every other effect at
  its value the conventional reconstruction's time resolution is 26 / 32 ps (w < 2 / w > 2
  cm), a third to a half of MEG II's published 65-85 ps, and no per-channel effect moves it
  (they average over hundreds of sensors); 60 ps brings it to 65 / 68 ps
  (docs/detector-realism.md). It stands for the
  correlated terms the toy does not model one by one (the real time reference, the
  shower's own time development, waveform-level effects common to a board); replace it with
  measured contributions when they are known.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from xecdata.geometry import N_SENSORS

EFFECTS = (
    "shower",
    "yield",
    "rayleigh",
    "reflection",
    "gain",
    "noise",
    "jitter",
    "time_calibration",
    "clock",
    "time_reference",
)
# realistic defaults of the effects' parameters (the module docstring gives the sources)
SHOWER_SPOT_SCALE = 4.0  # x GFlash's spot count (tuned, see the docstring)
RAYLEIGH_LENGTH = 45.0  # cm
REFLECTIVITY = 0.25
GAIN_SPREAD = 0.10
CALIBRATION_ERROR = 0.05
NOISE_PE = 1.0  # photoelectrons
TIME_CALIBRATION_ERROR = 0.03  # ns
YIELD_SIGMA, YIELD_REF_MEV = 0.023, 0.511  # relative width at the reference energy
CHANNELS_PER_BOARD, BOARDS_PER_CRATE = 16, 16  # WaveDREAM boards, WaveDAQ crates
BOARD_JITTER = 0.02  # ns per board and event (assumed)
CRATE_JITTER = 0.02  # ns per crate and event (assumed)
REFERENCE_JITTER = 0.06  # ns per event (assumed, tuned: see the docstring)
# random streams of one event block: kinematics is block_rng's own stream (0, block)
STREAMS = {name: k + 1 for k, name in enumerate(("response", "delay", *EFFECTS))}
_RUN_STREAM = 3  # spawn_key (3,) of the detector's sensor constants (dead list uses (1,))


def parse_effects(text: str) -> tuple[str, ...]:
    """'all', 'none', 'shower,noise' or 'all,-noise' -> the sorted tuple of effect names."""
    chosen: set[str] = set()
    for raw in text.split(","):
        item = raw.strip().lower()
        if item in ("all", "none", ""):
            chosen |= set(EFFECTS) if item == "all" else set()
        elif item.startswith("-") and item[1:] in EFFECTS:
            chosen.discard(item[1:])
        elif item in EFFECTS:
            chosen.add(item)
        else:
            raise ValueError(
                f"--effects {text!r}: unknown effect {item!r}; use 'all', 'none' or a comma "
                f"list of {', '.join(EFFECTS)} (a leading '-' removes one, e.g. 'all,-noise')"
            )
    return tuple(e for e in EFFECTS if e in chosen)


def check_effects(effects: tuple[str, ...]) -> None:
    """Raise ValueError for an unknown effect name."""
    unknown = sorted(set(effects) - set(EFFECTS))
    if unknown:
        raise ValueError(f"unknown effect(s) {unknown}: choose from {', '.join(EFFECTS)}")


def stream_rng(seed: int, block: int, stream: str) -> np.random.Generator:
    """The generator of one named stream ('response', 'delay' or an effect) of a block."""
    key = (0, block, STREAMS[stream])
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


@dataclass(frozen=True)
class SensorCalibration:
    """The detector's sensor constants drawn from its seed (S = 4760), all float32."""

    efficiency_factor: np.ndarray  # (S,) true efficiency / nominal (gain spread)
    calibration_factor: np.ndarray  # (S,) calibrated / true efficiency (calibration error)
    time_offset: np.ndarray  # (S,) ns, residual time-calibration offsets


@lru_cache(maxsize=8)
def sensor_calibration(
    detector_seed: int, gain_spread: float, calibration_error: float, time_error: float
) -> SensorCalibration:
    """The detector's sensor constants: Gaussian relative spreads (truncated at 3 sigma, so that
    every factor stays positive) and Gaussian time offsets; zero widths give exact ones."""
    for width, option in ((gain_spread, "--gain-spread"), (calibration_error, "--cal-error")):
        if not 0.0 <= width < 1.0 / 3.0:
            raise ValueError(f"{option} {width}: choose a relative width in [0, 1/3)")
    key = (_RUN_STREAM,)
    rng = np.random.default_rng(np.random.SeedSequence(detector_seed, spawn_key=key))
    z = np.clip(rng.standard_normal((3, N_SENSORS)), -3.0, 3.0)
    return SensorCalibration(
        efficiency_factor=(1.0 + gain_spread * z[0]).astype(np.float32),
        calibration_factor=(1.0 + calibration_error * z[1]).astype(np.float32),
        time_offset=(time_error * z[2]).astype(np.float32),
    )
