"""Sensor response of the toy simulator: photoelectron statistics, times, thresholds, dead
channels. Everything here acts on (E, 4760) arrays of one block of events.

Parameters and their sources:
- Photoelectrons: nphe ~ Poisson(mu). Exact Poisson draws for mu < ``POISSON_EXACT_BELOW`` =
  10; above, a normal deviate with the Cornish-Fisher skewness term,
  round(mu + sqrt(mu) z + (z^2 - 1) / 6), whose distribution differs from Poisson by less than
  0.25 % in total variation at mu = 10 and less at larger mu (tested); about four times
  faster than exact draws, which would otherwise be the largest cost of the simulator.
- Measured photoelectrons: nphe plus the Gaussian charge noise (effect ``noise``); photon
  counts npho = measured nphe / the calibrated efficiency of the sensor (its type's detection
  efficiency, times the true spread and the calibration error with the effect ``gain``).
  With noise, the measured charge is continuous and is written digitized, nphe in steps of
  ``NPHE_STEP`` = 1/64 pe and npho in steps of ``NPHO_STEP`` = 1/16 photon (both far below
  the noise; full float32 mantissas of noise would double the size of the files).
- Time of a sensor hit by at least one photoelectron: the first-light time plus (a) the
  scintillation delay of the first of its nphe photoelectrons, exponential with mean
  ``TAU_SCINT`` / nphe, TAU_SCINT = 45 ns (the recombination component that dominates gamma
  showers, DESIGN.md; the earliest of n exponential emission times is exponential with mean
  tau / n), so dim sensors are late, never early; (b) with the effect ``jitter``, a Gaussian
  of sigma sqrt(sigma_1pe^2 / nphe + sigma_floor^2), defaults ``SIGMA_1PE`` = 0.5 ns
  (single-photoelectron jitter: photosensor transit-time spread and single-photon timing)
  and ``SIGMA_FLOOR`` = 30 ps (electronics): a 1000-pe sensor gets ~55 ps RMS in total, a
  10^4-pe one ~30 ps; (c) with the effect ``time_calibration``, the channel's fixed residual
  offset; (d) with the effects ``clock`` and ``time_reference``, the offsets shared by the
  channels of a DAQ board, of a crate and of the whole event (``xecdata.sim.effects``).
- Times are written for sensors with at least ``time_min_nphe`` measured photoelectrons
  (default ``TIME_MIN_NPHE`` = 2) and one true photoelectron, 1e10 otherwise;
  ``relative_time`` is the time minus that of the earliest sensor with more than
  ``REF_MIN_NPHE`` = 50 measured photoelectrons.
- Dead channels: one fixed list per run (seeded from the run's seed), every per-sensor value
  written as ``INVALID`` = 1e10 (the invalid marker of the input files, DESIGN.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xecdata.geometry import N_SENSORS
from xecdata.sim.effects import BOARDS_PER_CRATE, CHANNELS_PER_BOARD

INVALID = 1e10
POISSON_EXACT_BELOW = 10.0
TAU_SCINT = 45.0  # ns
SIGMA_1PE = 0.5  # ns
SIGMA_FLOOR = 0.03  # ns
TIME_MIN_NPHE = 2.0
NPHE_STEP, NPHO_STEP = 1.0 / 64.0, 1.0 / 16.0  # digitization with the noise effect
REF_MIN_NPHE = 50.0


def poisson_counts(rng: np.random.Generator, mu: np.ndarray) -> np.ndarray:
    """Photoelectron counts (float32, same shape as mu) drawn around mu >= 0."""
    flat = mu.reshape(-1)
    out = np.zeros(flat.shape, np.float32)
    i_small = np.flatnonzero((flat > 0) & (flat < POISSON_EXACT_BELOW))
    i_big = np.flatnonzero(flat >= POISSON_EXACT_BELOW)
    out[i_small] = rng.poisson(flat[i_small].astype(np.float64))
    m = flat[i_big]
    z = rng.standard_normal(m.shape, dtype=np.float32)
    x = m + np.sqrt(m) * z + (z * z - np.float32(1.0)) * np.float32(1.0 / 6.0)
    out[i_big] = np.maximum(np.rint(x), 0.0)
    return out.reshape(mu.shape)


@dataclass(frozen=True)
class Readout:
    """How the sensors read out a block (the switched-off effects have zero widths)."""

    efficiency: np.ndarray  # (S,) float32 calibrated efficiency: npho = nphe / efficiency
    min_nphe: float = TIME_MIN_NPHE  # measured photoelectrons needed for a time
    sigma_1pe: float = 0.0  # ns, single-photoelectron jitter (scaled by 1 / sqrt(nphe))
    sigma_floor: float = 0.0  # ns, electronics floor of each time
    noise_pe: float = 0.0  # photoelectrons of Gaussian charge noise
    time_offset: np.ndarray | None = None  # (S,) float32 ns residual calibration offsets
    board_jitter: float = 0.0  # ns per DAQ board and event (correlated within a board)
    crate_jitter: float = 0.0  # ns per DAQ crate and event
    reference_jitter: float = 0.0  # ns per event, common to every channel


def sensor_response(
    rngs: dict[str, np.random.Generator],
    mu: np.ndarray,
    t_first: np.ndarray,
    readout: Readout,
    dead: np.ndarray,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-sensor branches from expected photoelectrons mu (E, S) and first-light times
    t_first (E, S, ns) of one block: npho, nphe, time and relative_time (float32, seconds for
    times, 1e10 where invalid) and the reference time t_ref (E,) in ns (NaN if none).

    rngs: 'response' (photoelectron counts), 'delay' (scintillation delays), and 'jitter' /
    'noise' when those widths are not zero; each effect has its own stream.
    """
    n_ev = mu.shape[0]
    mu[:, dead] = 0.0
    nphe = poisson_counts(rngs["response"], mu)
    measured = _measured_charge(rngs, nphe, readout.noise_pe)
    lit = np.flatnonzero((nphe >= 1) & (t_first < np.inf))  # sensors hit by a photon
    t = _sensor_times(rngs, t_first.reshape(-1)[lit], nphe.reshape(-1)[lit], readout)
    if readout.time_offset is not None:
        t += readout.time_offset[lit % N_SENSORS]
    common = _correlated_offsets(rngs, n_ev, readout)
    if common is not None:
        t += common.reshape(-1)[lit]
    ok = measured.reshape(-1)[lit] >= readout.min_nphe
    idx, t = lit[ok], t[ok]
    ref = np.flatnonzero(measured.reshape(-1)[idx] > REF_MIN_NPHE)
    t_ref = _event_min(idx[ref] // N_SENSORS, t[ref], n_ev)  # (E,) ns
    time = np.full(n_ev * N_SENSORS, INVALID, np.float32)
    time[idx] = t * np.float32(1e-9)
    time = time.reshape(n_ev, N_SENSORS)
    # invalid entries stay exactly 1e10: float32 values near 1e10 are 1024 apart
    relative = time - (t_ref * np.float32(1e-9))[:, None]
    relative[np.isnan(t_ref)] = INVALID
    npho = measured / readout.efficiency
    if readout.noise_pe > 0:  # digitized: steps far below the noise keep the files small
        npho *= np.float32(1 / NPHO_STEP)
        np.rint(npho, out=npho)
        npho *= np.float32(NPHO_STEP)
    npho[:, dead] = INVALID
    measured[:, dead] = INVALID
    return {"npho": npho, "nphe": measured, "time": time, "relative_time": relative}, t_ref


def _measured_charge(
    rngs: dict[str, np.random.Generator], nphe: np.ndarray, noise_pe: float
) -> np.ndarray:
    """Measured photoelectrons: nphe plus Gaussian noise, digitized in NPHE_STEP (a copy)."""
    if noise_pe <= 0:
        return nphe.copy()
    out = rngs["noise"].standard_normal(nphe.shape, dtype=np.float32)
    out *= np.float32(noise_pe / NPHE_STEP)
    out += nphe * np.float32(1 / NPHE_STEP)
    np.rint(out, out=out)
    out *= np.float32(NPHE_STEP)
    return out


def _sensor_times(
    rngs: dict[str, np.random.Generator], t_first: np.ndarray, n: np.ndarray, readout: Readout
) -> np.ndarray:
    """Times (ns) of sensors with n >= 1 photoelectrons and first light at t_first: the
    first photoelectron's scintillation delay plus the jitter."""
    delay = rngs["delay"].standard_exponential(n.shape, dtype=np.float32)
    t = t_first + delay * (np.float32(TAU_SCINT) / n)
    if readout.sigma_1pe > 0 or readout.sigma_floor > 0:
        var = np.float32(readout.sigma_1pe**2) / n + np.float32(readout.sigma_floor**2)
        t += np.sqrt(var) * rngs["jitter"].standard_normal(n.shape, dtype=np.float32)
    return t


def _correlated_offsets(
    rngs: dict[str, np.random.Generator], n_ev: int, readout: Readout
) -> np.ndarray | None:
    """(E, S) float32 ns offsets shared by channels of a board, of a crate (effect ``clock``)
    and of an event (``time_reference``), or None when both are off. Drawn for the whole
    block whatever is lit, so that the draws do not depend on the light."""
    out = None
    if readout.board_jitter > 0 or readout.crate_jitter > 0:
        sensor = np.arange(N_SENSORS)
        board = sensor // CHANNELS_PER_BOARD
        crate = board // BOARDS_PER_CRATE
        z_board = rngs["clock"].standard_normal((n_ev, board[-1] + 1), dtype=np.float32)
        z_crate = rngs["clock"].standard_normal((n_ev, crate[-1] + 1), dtype=np.float32)
        out = z_board[:, board] * np.float32(readout.board_jitter)
        out += z_crate[:, crate] * np.float32(readout.crate_jitter)
    if readout.reference_jitter > 0:
        z = rngs["time_reference"].standard_normal((n_ev, 1), dtype=np.float32)
        ref = np.broadcast_to(z * np.float32(readout.reference_jitter), (n_ev, N_SENSORS))
        out = ref.copy() if out is None else out + ref
    return out


def _event_min(event: np.ndarray, values: np.ndarray, n_ev: int) -> np.ndarray:
    """(n_ev,) minimum of values per event index (event sorted ascending), NaN if none."""
    starts = np.searchsorted(event, np.arange(n_ev))
    has = np.diff(np.append(starts, len(event))) > 0
    out = np.full(n_ev, np.nan, np.float32)
    if has.any():
        out[has] = np.minimum.reduceat(values, starts[has])
    return out


def dead_channels(seed: int, fraction: float) -> np.ndarray:
    """Sorted ids of the run's dead channels: round(fraction * 4760) distinct sensors chosen
    by a generator seeded from (seed, 'dead list'), independent of the event blocks."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"--dead-fraction {fraction} must be in [0, 1)")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
    n_dead = round(fraction * N_SENSORS)
    return np.sort(rng.choice(N_SENSORS, size=n_dead, replace=False))
