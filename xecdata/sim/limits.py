"""Truth-based resolution limits of the simulated detector (not a reconstruction).

Both estimators use the truth, so they bound from below what a reconstruction (``xec reco``,
a model) can reach on the same events; ``benchmarks/realism.py`` runs them effect by effect
(docs/detector-realism.md). Fiducial volume |u| < 23.9 cm, |v| < 67.9 cm, split at w = 2 cm.

- Energy (``energy_limits``): the photon counts summed per face group (inner, outer, outer
  centre patch, US, DS, top, bottom) with group weights (``fit_group_weights``, least squares
  on a calibration sample), then a uniformity correction, a 4th-order polynomial in the true
  (u, v, w) fitted on the even events; sigma68 (half the 16-84 % range), the upper-side
  width (84 % - median) and the median of the log residual on the odd events, in %.
- Time (``time_limits``): the light path from the true conversion point subtracted from each
  sensor time (sensors over 100 photoelectrons), photoelectron-weighted mean with three
  3-sigma clippings, minus timeTruth, in ps.
"""

from __future__ import annotations

import numpy as np

from xecdata.geometry import FACE_CODE, sensor_table, xyz_to_uvw
from xecdata.sim.optics import C_LIGHT, N_LXE

FIDUCIAL_U, FIDUCIAL_V, W_SPLIT = 23.9, 67.9, 2.0
PATCH_FIRST = 4742  # ids of the outer face's centre patch beyond the coarse grid


def _groups() -> np.ndarray:
    t = sensor_table()
    g = t.face.copy()
    g[(t.face == FACE_CODE["outer"]) & (np.arange(len(g)) >= PATCH_FIRST)] = g.max() + 1
    return g


def group_sums(npho: np.ndarray) -> np.ndarray:
    """(E, S) photon counts (1e10 = dead) -> (E, G) sums per face group."""
    g = _groups()
    x = np.where(npho > 1e9, 0.0, npho)
    return np.stack([x[:, g == k].sum(1) for k in range(g.max() + 1)], 1)


def _poly(uvw: np.ndarray) -> np.ndarray:
    u, v, w = (uvw / np.array([25.0, 70.0, 10.0])).T
    cols = [u**a * v**b * w**c for a in range(5) for b in range(5) for c in range(5)
            if a + b + c <= 4]  # fmt: skip
    return np.stack(cols, 1)


def widths(x: np.ndarray) -> dict[str, float]:
    """sigma68 (half the 16-84 % range), upper-side width (84 % - median) and median."""
    q16, q50, q84 = np.quantile(x, [0.16, 0.5, 0.84])
    return {"sigma68": float(q84 - q16) / 2, "upper": float(q84 - q50), "median": float(q50)}


def fit_group_weights(npho: np.ndarray) -> np.ndarray:
    """Face-group weights (G,) that make the weighted sum of a calibration sample's photon
    counts (E, S) as constant as possible (least squares), normalized to a mean of 1."""
    a = group_sums(npho)
    weights, *_ = np.linalg.lstsq(a / a.mean(), np.ones(len(a)), rcond=None)
    return weights / a.mean()


def energy_limits(ev: dict[str, np.ndarray], weights: np.ndarray) -> dict[str, dict]:
    uvw = ev["uvwTruth"].astype(float)
    e = np.log(np.maximum(group_sums(ev["npho"]) @ weights, 1e-30))
    fid = (np.abs(uvw[:, 0]) < FIDUCIAL_U) & (np.abs(uvw[:, 1]) < FIDUCIAL_V)
    even = np.arange(len(e)) % 2 == 0
    x = _poly(uvw)
    coef, *_ = np.linalg.lstsq(x[fid & even], e[fid & even], rcond=None)
    r = 100 * (e - x @ coef)
    shallow = uvw[:, 2] < W_SPLIT
    return {"w<2": widths(r[fid & ~even & shallow]), "w>2": widths(r[fid & ~even & ~shallow])}


def time_limits(ev: dict[str, np.ndarray]) -> dict[str, dict]:
    conv, vtx = ev["xyzTruth"].astype(float), ev["xyzVTX"].astype(float)
    path = np.linalg.norm(sensor_table().pos[None] - conv[:, None], axis=2) * (N_LXE / C_LIGHT)
    flight = np.linalg.norm(conv - vtx, axis=1) / C_LIGHT
    rt = ev["relative_time"].astype(float)
    est = rt * 1e9 - path - flight[:, None]
    w = np.where((rt < 1e8) & (ev["nphe"] > 100), ev["nphe"].astype(float), 0.0)
    for _ in range(3):
        m = (w * est).sum(1) / w.sum(1)
        sd = np.sqrt((w * (est - m[:, None]) ** 2).sum(1) / w.sum(1))
        w = np.where(np.abs(est - m[:, None]) < np.maximum(3 * sd, 0.05)[:, None], w, 0.0)
    d = 1e3 * ((w * est).sum(1) / w.sum(1) - ev["timeTruth"])
    uvw = xyz_to_uvw(conv)
    fid = (np.abs(uvw[:, 0]) < FIDUCIAL_U) & (np.abs(uvw[:, 1]) < FIDUCIAL_V)
    shallow = uvw[:, 2] < W_SPLIT
    return {"w<2": widths(d[fid & shallow]), "w>2": widths(d[fid & ~shallow])}
