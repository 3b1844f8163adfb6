"""Robust location and width estimates shared by the metrics and the reconstruction."""

from __future__ import annotations

import numpy as np


def half_width_68(res: np.ndarray) -> float:
    """Half of the central 68.27 % interval, (q84.13 - q15.87) / 2; equals sigma for a Gaussian."""
    q_lo, q_hi = np.percentile(np.asarray(res, dtype=np.float64), [15.865, 84.135])
    return float(q_hi - q_lo) / 2.0


def shortest_half_midpoint(x: np.ndarray) -> float:
    """Midpoint of the shortest interval holding half of the values: a mode estimate that a
    one-sided tail (energy leakage, late times) does not pull."""
    s = np.sort(np.asarray(x, np.float64).ravel())
    if s.size == 0:
        raise ValueError("shortest_half_midpoint of no values")
    h = len(s) // 2
    if h == 0:
        return float(s[0])
    i = int(np.argmin(s[h:] - s[: len(s) - h]))
    return float(s[i] + s[i + h]) / 2.0
