"""Sensor response of the toy simulator: photoelectron statistics, times, thresholds, dead
channels. Everything here acts on (E, 4760) arrays of one block of events.

Parameters and their sources:
- Photoelectrons: nphe ~ Poisson(mu). Exact Poisson draws for mu < ``POISSON_EXACT_BELOW`` =
  10; above, a normal deviate with the Cornish-Fisher skewness term,
  round(mu + sqrt(mu) z + (z^2 - 1) / 6), whose distribution differs from Poisson by less than
  0.25 % in total variation at mu = 10 and less at larger mu (tested); about four times
  faster than exact draws, which would otherwise be the largest cost of the simulator.
- Photon counts: npho = nphe / efficiency (the sensor type's detection efficiency).
- Time of a sensor: the first-light time plus (a) the scintillation delay of the first of
  its nphe photoelectrons, exponential with mean ``TAU_SCINT`` / nphe, TAU_SCINT = 45 ns (the
  recombination component that dominates gamma showers, DESIGN.md; the earliest of n
  exponential emission times is exponential with mean tau / n), so dim sensors are late, never
  early; and (b) a Gaussian of sigma sqrt(``SIGMA_1PE``^2 / nphe + ``SIGMA_FLOOR``^2) with
  SIGMA_1PE = 0.5 ns (photosensor transit-time spread) and SIGMA_FLOOR = 30 ps (electronics,
  calibration). A 1000-pe sensor gets ~55 ps RMS in total, a 10^4-pe one ~30 ps.
- Times are written for sensors with at least ``time_min_nphe`` photoelectrons (default
  ``TIME_MIN_NPHE`` = 2), 1e10 otherwise; ``relative_time`` is the time minus that of the
  earliest sensor with more than ``REF_MIN_NPHE`` = 50 photoelectrons.
- Dead channels: one fixed list per run (seeded from the run's seed), every per-sensor value
  written as ``INVALID`` = 1e10 (the invalid marker of the input files, DESIGN.md).
"""

from __future__ import annotations

import numpy as np

from xecdata.geometry import N_SENSORS

INVALID = 1e10
POISSON_EXACT_BELOW = 10.0
TAU_SCINT = 45.0  # ns
SIGMA_1PE = 0.5  # ns
SIGMA_FLOOR = 0.03  # ns
TIME_MIN_NPHE = 2.0
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


def sensor_response(
    rng: np.random.Generator,
    mu: np.ndarray,
    t_first: np.ndarray,
    efficiency: np.ndarray,
    dead: np.ndarray,
    min_nphe: float,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-sensor branches from expected photoelectrons mu (E, S) and first-light times
    t_first (E, S, ns) of one block: npho, nphe, time and relative_time (float32, seconds for
    times, 1e10 where invalid) and the reference time t_ref (E,) in ns (NaN if none)."""
    n_ev = mu.shape[0]
    mu[:, dead] = 0.0
    nphe = poisson_counts(rng, mu)
    idx = np.flatnonzero((nphe >= min_nphe) & (t_first < np.inf))  # sensors with a time
    n = nphe.reshape(-1)[idx]
    sigma = np.sqrt(np.float32(SIGMA_1PE**2) / n + np.float32(SIGMA_FLOOR**2))
    delay = rng.standard_exponential(idx.shape, dtype=np.float32) * (np.float32(TAU_SCINT) / n)
    t = t_first.reshape(-1)[idx] + delay + sigma * rng.standard_normal(idx.shape, dtype=np.float32)
    ref = np.flatnonzero(n > REF_MIN_NPHE)
    t_ref = _event_min(idx[ref] // N_SENSORS, t[ref], n_ev)  # (E,) ns
    time = np.full(n_ev * N_SENSORS, INVALID, np.float32)
    time[idx] = t * np.float32(1e-9)
    time = time.reshape(n_ev, N_SENSORS)
    # invalid entries stay exactly 1e10: float32 values near 1e10 are 1024 apart
    relative = time - (t_ref * np.float32(1e-9))[:, None]
    relative[np.isnan(t_ref)] = INVALID
    npho = nphe / efficiency
    npho[:, dead] = INVALID
    nphe[:, dead] = INVALID
    return {"npho": npho, "nphe": nphe, "time": time, "relative_time": relative}, t_ref


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
