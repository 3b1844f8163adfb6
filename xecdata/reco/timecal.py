"""Fit of the time constants (``TimeCalibration``) to calibration events with known truth.

Per sensor, y_s = t_s - T_true with T_true = timeTruth + |x_FI - x_vertex| / c (the emission
at the reconstructed first interaction on the truth clock) is modelled as

    y_s = L_s / v_eff + a_type / n_s + b + noise,   var(noise) = c0 + c1 / n + c2 / n^2,

a linear least-squares problem in (1 / v_eff, a_MPPC, a_PMT, b) accumulated over every
usable sensor of every event (numba), first unweighted, then weighted by the resolution model
and with 3-sigma clipping. The resolution model per sensor type is fitted (non-negative least
squares) to the squared robust widths of the residuals in bins of n, from a deterministic
subsample of the sensors. The event-level offset (T - T_true of the calibration events, in
bins of depth and linear in ln E, ``xecdata.reco.tables``) is fitted by
``xecdata.reco.calibrate`` once these constants are known.
"""

from __future__ import annotations

from itertools import pairwise

import numba
import numpy as np
from scipy.optimize import nnls

from xecdata.geometry import sensor_table
from xecdata.reco.lightmodel import _JIT
from xecdata.reco.timing import (
    CLIP,
    MIN_NPHO,
    corrected_time,
    sensor_type_codes,
    usable,
)
from xecdata.robust import half_width_68

SAMPLE_STRIDE = 13  # one sensor in 13 enters the resolution-model fit
NPHO_BINS = np.geomspace(MIN_NPHO, 2e5, 20)
MIN_PER_BIN = 50
ROUNDS = 3


@numba.njit(**_JIT)
def _accumulate(
    time: np.ndarray, npho: np.ndarray, fi: np.ndarray, target: np.ndarray, pos: np.ndarray,
    typ: np.ndarray, par: np.ndarray, intercept: float, clip: float, ata: np.ndarray,
    aty: np.ndarray,
) -> None:  # fmt: skip
    """Add the weighted normal equations of the rows within clip sigma into ata, aty."""
    x = np.empty(4)
    for e in range(time.shape[0]):
        if not (np.isfinite(fi[e, 0]) and np.isfinite(target[e])):
            continue
        for s in range(time.shape[1]):
            n = npho[e, s]
            if not usable(time[e, s], n, par[9]):
                continue
            d = np.sqrt(((fi[e] - pos[s]) ** 2).sum())
            y = time[e, s] * 1e9 - target[e]
            res, sig2 = corrected_time(y, n, d, typ[s], par)
            if (res - intercept) ** 2 > clip * clip * sig2:
                continue
            x[0], x[1], x[2], x[3] = d, (1 - typ[s]) / n, typ[s] / n, 1.0
            w = 1.0 / sig2
            for a in range(4):
                aty[a] += w * x[a] * y
                for b in range(4):
                    ata[a, b] += w * x[a] * x[b]


@numba.njit(**_JIT)
def _sample(
    time: np.ndarray, npho: np.ndarray, fi: np.ndarray, target: np.ndarray, pos: np.ndarray,
    typ: np.ndarray, par: np.ndarray, intercept: float, stride: int, out: np.ndarray,
) -> int:  # fmt: skip
    """Residuals (res, n, type) of every stride-th usable sensor into out (M, 3); the count."""
    k, seen = 0, 0
    for e in range(time.shape[0]):
        if not (np.isfinite(fi[e, 0]) and np.isfinite(target[e])):
            continue
        for s in range(time.shape[1]):
            n = npho[e, s]
            if not usable(time[e, s], n, par[9]):
                continue
            seen += 1
            if seen % stride or k >= out.shape[0]:
                continue
            d = np.sqrt(((fi[e] - pos[s]) ** 2).sum())
            res, _ = corrected_time(time[e, s] * 1e9 - target[e], n, d, typ[s], par)
            out[k, 0], out[k, 1], out[k, 2] = res - intercept, n, typ[s]
            k += 1
    return k


def _solve(batches: list[tuple], par: np.ndarray, intercept: float, clip: float) -> np.ndarray:
    """(1/v, a_MPPC, a_PMT, b) from the normal equations over all batches."""
    ata, aty = np.zeros((4, 4)), np.zeros(4)
    pos, typ = sensor_table().pos, sensor_type_codes()
    for time, npho, fi, target in batches:
        _accumulate(time, npho, fi, target, pos, typ, par, intercept, clip, ata, aty)
    if ata[0, 0] == 0:
        raise ValueError("time calibration: no sensor with a usable time in the calibration")
    return np.linalg.solve(ata, aty)


def _resolution_model(batches: list[tuple], par: np.ndarray, intercept: float) -> np.ndarray:
    """(2, 3) [c0, c1, c2] per sensor type from binned robust widths of the residuals."""
    pos, typ = sensor_table().pos, sensor_type_codes()
    parts = []
    for time, npho, fi, target in batches:
        out = np.empty((time.shape[0] * time.shape[1] // SAMPLE_STRIDE + 1, 3))
        k = _sample(time, npho, fi, target, pos, typ, par, intercept, SAMPLE_STRIDE, out)
        parts.append(out[:k])
    res = np.concatenate(parts)
    model = np.zeros((2, 3))
    for t in (0, 1):
        rows, rhs = [], []
        for lo, hi in pairwise(NPHO_BINS):
            sel = (res[:, 2] == t) & (res[:, 1] >= lo) & (res[:, 1] < hi)
            if sel.sum() >= MIN_PER_BIN:
                n = float(np.median(res[sel, 1]))
                rows.append([1.0, 1.0 / n, 1.0 / n**2])
                rhs.append(half_width_68(res[sel, 0]) ** 2)
        if rows:  # relative errors: each bin's squared width weighs the same
            a, y = np.array(rows), np.array(rhs)
            model[t] = nnls(a / y[:, None], np.ones(len(y)))[0]
        else:  # no sensor of this type in the calibration: a flat 1 ns^2 (never used)
            model[t] = (1.0, 0.0, 0.0)
    return model


def fit_time_constants(batches: list[tuple]) -> np.ndarray:
    """The kernels' parameters (11,) (``TimeCalibration.kernel_parameters``) from batches of
    (time (B, 4760) s, npho (B, 4760), first interactions (B, 3) cm, T_true (B,) ns) of the
    calibration events (rows with NaN are skipped)."""
    cut = [MIN_NPHO, CLIP]
    flat = np.array([0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, *cut])
    coef = _solve(batches, flat, 0.0, np.inf)
    for _ in range(ROUNDS):
        par = np.concatenate([coef[:3], np.ones(6), cut])
        sigma2 = _resolution_model(batches, par, coef[3])
        par = np.concatenate([coef[:3], sigma2.ravel(), cut])
        coef = _solve(batches, par, coef[3], CLIP)
    return np.concatenate([coef[:3], _resolution_model(batches, par, coef[3]).ravel(), cut])
