"""Corrections tabulated in depth bins, linear in the log of the energy within each bin.

Shower-shape effects on the reconstruction (how far the point-source fit lands beyond the
first interaction, the time offset of the light-weighted time) depend on the depth and grow
with the shower length, which goes as ln E (PDG, "Passage of particles through matter",
longitudinal shower profile: t_max = ln(E / E_c) + C). A ``BinnedLinear`` table holds, at the
median depth of each bin, an intercept and a slope in x = ln(E / ``E_REF``):

    y(w, E) = a(w) + b(w) ln(E / E_REF),   a, b linear between bin centres, flat outside.

The tables are fitted against the true energy of the calibration events (a line determines
no slope: it is 0 then) and applied with the reconstructed one.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np

E_REF = 0.0528  # GeV: the signal line, where the slope term vanishes
MIN_PER_BIN = 20
MIN_LOG_SPREAD = 0.05  # sd of ln E in a bin below which no slope is fitted
X_BINS = 5  # quantile bins of ln E within a depth bin


@dataclass(frozen=True)
class BinnedLinear:
    """Bin centres w (increasing), intercepts a and slopes b (same length)."""

    w: tuple[float, ...]
    a: tuple[float, ...]
    b: tuple[float, ...]

    def to_dict(self) -> dict[str, list[float]]:
        return {"w": list(self.w), "intercept": list(self.a), "slope_ln_e": list(self.b)}

    @classmethod
    def from_dict(cls, d: dict[str, list[float]]) -> BinnedLinear:
        w, a, b = (tuple(map(float, d[k])) for k in ("w", "intercept", "slope_ln_e"))
        if not (len(w) == len(a) == len(b) >= 1) or any(y <= x for x, y in pairwise(w)):
            raise ValueError("binned table: w must increase and match intercept / slope")
        return cls(w, a, b)

    def at(self, w: np.ndarray, energy: np.ndarray) -> np.ndarray:
        """y at depths w (B,) cm and energies (B,) GeV (E <= 0 or NaN: the intercept)."""
        x = np.log(np.where(energy > 0, energy, E_REF) / E_REF)
        return np.interp(w, self.w, self.a) + np.interp(w, self.w, self.b) * x


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Robust (intercept, slope) of y against x: a straight line through the medians of y in
    ``X_BINS`` quantile bins of x, weighted by their counts (medians: a one-sided tail, late
    times or leaked energy, does not pull it); the median and no slope when x hardly varies."""
    if np.std(x) < MIN_LOG_SPREAD:
        return float(np.median(y)), 0.0
    order = np.argsort(x, kind="stable")
    parts = np.array_split(order, X_BINS)
    xs = [float(np.median(x[p])) for p in parts]
    ys = [float(np.median(y[p])) for p in parts]
    slope, icpt = np.polyfit(xs, ys, 1, w=np.sqrt([len(p) for p in parts]))
    return float(icpt), float(slope)


def fit_binned_linear(
    w: np.ndarray, energy: np.ndarray, y: np.ndarray, edges: tuple[float, ...]
) -> BinnedLinear:
    """The table from events (depth w, energy in GeV, value y); bins with fewer than
    MIN_PER_BIN events are skipped."""
    x = np.log(np.maximum(energy, 1e-6) / E_REF)
    centres, a, b = [], [], []
    for lo, hi in pairwise(edges):
        sel = (w >= lo) & (w < hi) & np.isfinite(y) & np.isfinite(x)
        if sel.sum() >= MIN_PER_BIN:
            centres.append(float(np.median(w[sel])))
            icpt, slope = _line(x[sel], y[sel])
            a.append(icpt)
            b.append(slope)
    if not centres:
        raise ValueError(f"no depth bin holds {MIN_PER_BIN} calibration events; simulate more")
    return BinnedLinear(tuple(centres), tuple(a), tuple(b))
