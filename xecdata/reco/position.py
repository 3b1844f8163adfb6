"""Point-source position of a shower: centroid start, then the Poisson fit of the inner face.

The method of the MEG LXe reconstruction (J. Adam et al., "The MEG detector for mu+ -> e+ gamma
decay search", Eur. Phys. J. C 73 (2013) 2365, LXe detector section; kept for MEG II with
the MPPC inner face: A. M. Baldini et al., "The design of the MEG II experiment",
Eur. Phys. J. C 78 (2018) 380; K. Afanaciev et al., "Operation and performance of the MEG II
detector", Eur. Phys. J. C 84 (2024) 190, arXiv:2310.11902):

1. the brightest live inner-face sensor, moved to the largest 3 x 3 sum around it (one bright
   sensor is not a peak); the light-weighted centroid of the 5 x 5 sensors around that peak
   gives the start (u, v);
2. the live sensors of the (2 half + 1)^2 window of the 93 x 44 inner-face grid around the
   peak (shifted inward at the face's edges) are fitted to N0 * Omega_s(x) / (4 pi) times the
   attenuation exp(-r_s / L) of the direct light over the distance r_s to the sensor, free
   (u, v, w, N0), Poisson likelihood (``xecdata.reco.fitkernel``). L is
   ``ATTENUATION_LENGTH``, the simulator's Rayleigh length (its only attenuation of the
   direct light: absorption is longer than 100 cm, ``xecdata.sim.effects``), imported from
   the simulator, not typed again.

A point-source fit of a shower lands on the light-weighted shower, deeper than the first
interaction; ``xecdata.reco.depth`` moves it back along the line of flight with a correction
from the calibration simulation (as MEG corrects its fit with simulation).

Dead sensors (npho > 9e9, NaN, Inf) are left out. Each event gets a status: ``OK`` or why it
was not fitted (``STATUS_NAMES``). The photons that the fitted source sends to the dead sensors
of the window are returned too, so that the energy sum can restore them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from xecdata.geometry import INNER_SHAPE
from xecdata.markers import INVALID_ABOVE
from xecdata.reco.fitkernel import fractions, levenberg_marquardt, start_point
from xecdata.reco.lightmodel import _JIT, inner_face
from xecdata.sim.effects import RAYLEIGH_LENGTH

WINDOW_HALF = 9  # sensors each side of the peak: a 19 x 19 window (+-13.6 cm); 5 before default@5
CENTROID_HALF = 2
MIN_INNER_PHOTONS = 2000.0  # inner-face photons (~240 pe): less is "no inner-face signal"
MIN_FIT_SENSORS = 8
ATTENUATION_LENGTH = RAYLEIGH_LENGTH  # cm, of the direct light in the fit's model

OK, ALL_DEAD, NO_INNER_SIGNAL, FEW_SENSORS, FIT_FAILED = 0, 1, 2, 3, 4
STATUS_NAMES = {ALL_DEAD: "all_sensors_dead", NO_INNER_SIGNAL: "no_inner_signal",
                FEW_SENSORS: "too_few_live_sensors", FIT_FAILED: "fit_failed"}  # fmt: skip


@dataclass(frozen=True)
class PointFit:
    """Fits of a batch of B events.

    params (B, 4): u, v, w (cm) and N0 (photons) of the point source, NaN if not fitted;
    status (B,) int8: OK or a STATUS_NAMES code; n_fit (B,) int16: live sensors fitted;
    dead_fill (B,): photons the fitted source sends to the window's dead sensors.
    """

    params: np.ndarray
    status: np.ndarray
    n_fit: np.ndarray
    dead_fill: np.ndarray


@numba.njit(**_JIT)
def _alive(x: float) -> bool:
    return np.abs(x) <= INVALID_ABOVE  # False for NaN, Inf and the 1e10 marker


@numba.njit(**_JIT)
def _brightest(row: np.ndarray, n_inner: int) -> tuple[int, float, bool]:
    """(brightest live inner sensor or -1, live inner photons, any live sensor at all)."""
    best, best_id, total = -1.0, -1, 0.0
    for s in range(n_inner):
        x = row[s]
        if _alive(x):
            total += max(x, 0.0)
            if x > best:
                best, best_id = x, s
    alive = best_id >= 0
    s = n_inner
    while not alive and s < row.shape[0]:
        alive = _alive(row[s])
        s += 1
    return best_id, total, alive


@numba.njit(**_JIT)
def _peak(row: np.ndarray, brightest: int, n_i: int, n_j: int) -> int:
    """The sensor with the largest live 3 x 3 sum within 2 sensors of the brightest one."""
    i0, j0 = brightest // n_j, brightest % n_j
    top, top_id = -1.0, brightest
    for i in range(max(i0 - 2, 0), min(i0 + 3, n_i)):
        for j in range(max(j0 - 2, 0), min(j0 + 3, n_j)):
            tot = 0.0
            for a in range(max(i - 1, 0), min(i + 2, n_i)):
                for b in range(max(j - 1, 0), min(j + 2, n_j)):
                    x = row[a * n_j + b]
                    if _alive(x):
                        tot += x
            if tot > top:
                top, top_id = tot, i * n_j + j
    return top_id


@numba.njit(**_JIT)
def _window(peak: int, half: int, n_i: int, n_j: int) -> tuple[int, int, int, int]:
    """Grid ranges [i0, i1) x [j0, j1) of the window around peak, shifted inside the face."""
    i, j = peak // n_j, peak % n_j
    i0 = min(max(i - half, 0), n_i - 2 * half - 1)
    j0 = min(max(j - half, 0), n_j - 2 * half - 1)
    return i0, i0 + 2 * half + 1, j0, j0 + 2 * half + 1


@numba.njit(**_JIT)
def _centroid(row: np.ndarray, peak: int, uv: np.ndarray, n_i: int, n_j: int) -> np.ndarray:
    """Light-weighted (u, v) of the live sensors within CENTROID_HALF of the peak."""
    i0, i1, j0, j1 = _window(peak, CENTROID_HALF, n_i, n_j)
    su, sv, sw = 0.0, 0.0, 0.0
    for i in range(i0, i1):
        for j in range(j0, j1):
            s = i * n_j + j
            if _alive(row[s]) and row[s] > 0:
                su += row[s] * uv[s, 0]
                sv += row[s] * uv[s, 1]
                sw += row[s]
    out = np.empty(2)
    out[0], out[1] = su / sw, sv / sw
    return out


@numba.njit(**_JIT)
def _fit_one(
    row: np.ndarray, face: tuple[np.ndarray, np.ndarray, np.ndarray], half: int,
    out: np.ndarray, work: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    inv_len: float,
) -> tuple[int, int, float]:  # fmt: skip
    """Fit one event (row: npho of all sensors) into out (4,): (status, sensors, dead fill)."""
    frame, consts, uv = face
    ids, n, f, grad = work
    n_i, n_j = INNER_SHAPE
    brightest, inner, alive = _brightest(row, n_i * n_j)
    if not alive:
        return ALL_DEAD, 0, 0.0
    if inner < MIN_INNER_PHOTONS:
        return NO_INNER_SIGNAL, 0, 0.0
    peak = _peak(row, brightest, n_i, n_j)
    uv0 = _centroid(row, peak, uv, n_i, n_j)
    i0, i1, j0, j1 = _window(peak, half, n_i, n_j)
    k, n_dead = 0, 0
    for i in range(i0, i1):
        for j in range(j0, j1):
            s = i * n_j + j
            if _alive(row[s]):
                ids[k], n[k] = s, max(row[s], 0.0)
                k += 1
            else:  # dead ones fill the array from its end
                n_dead += 1
                ids[ids.shape[0] - n_dead] = s
    if k < MIN_FIT_SENSORS:
        return FEW_SENSORS, k, 0.0
    out[:] = start_point(uv0, ids, n, k, frame, consts, f, grad, inv_len)
    if levenberg_marquardt(out, ids, n, k, frame, consts, f, grad, inv_len) < 0:
        return FIT_FAILED, k, 0.0
    fill = 0.0
    if n_dead:
        dead = ids[ids.shape[0] - n_dead :].copy()
        fractions(out, dead, n_dead, frame, consts, f, grad, inv_len)
        fill = out[3] * f[:n_dead].sum()
    return OK, k, fill


@numba.njit(**_JIT)
def _fit_batch(
    npho: np.ndarray, face: tuple[np.ndarray, np.ndarray, np.ndarray], half: int,
    params: np.ndarray, status: np.ndarray, n_fit: np.ndarray, fill: np.ndarray, inv_len: float,
) -> None:  # fmt: skip
    n_win = (2 * half + 1) ** 2
    work = (np.empty(n_win, np.int64), np.empty(n_win), np.empty(n_win), np.empty((n_win, 3)))
    out = np.empty(4)
    for e in range(npho.shape[0]):
        out[:] = np.nan
        status[e], n_fit[e], fill[e] = _fit_one(npho[e], face, half, out, work, inv_len)
        params[e] = out


def fit_positions(
    npho: np.ndarray, half: int = WINDOW_HALF, attenuation_length: float | None = None
) -> PointFit:
    """Point-source fits of a batch: npho (B, 4760) photons (1e10 / NaN = dead), window
    half-width `half` in sensors, attenuation length of the direct light in cm (None: no
    attenuation in the model)."""
    n_i, n_j = INNER_SHAPE
    if not 1 <= half <= (min(n_i, n_j) - 1) // 2:
        raise ValueError(f"fit window half-width {half} must be 1 to {(min(n_i, n_j) - 1) // 2}")
    if attenuation_length is not None and not attenuation_length > 0:
        raise ValueError(f"attenuation length {attenuation_length} cm must be > 0 (or None)")
    inv_len = 1.0 / attenuation_length if attenuation_length else 0.0
    face = inner_face()
    b = len(npho)
    params, fill = np.empty((b, 4)), np.empty(b)
    status, n_fit = np.empty(b, np.int8), np.empty(b, np.int16)
    _fit_batch(np.ascontiguousarray(npho), (face.frame, face.consts, face.uv), half, params,
               status, n_fit, fill, inv_len)  # fmt: skip
    return PointFit(params, status, n_fit, fill)
