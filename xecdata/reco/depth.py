"""From the point-source fit to the first interaction: a shift back along the line of flight.

A shower starts at the first interaction (conversion) point and deposits its energy over
several X0 beyond it, along the photon's direction; the point-source fit lands on the
light-weighted part of the shower the inner face sees, deeper than the conversion and, for an
oblique photon, displaced along its direction. The first-interaction estimate is therefore

    x_FI = x_fit - d(w_fit) * n,   n = (x_fit - x_vertex) / |x_fit - x_vertex|,

with d(w) the median distance, along n, between the fitted point and the true conversion point
in the calibration simulation, tabulated in bins of the fitted depth w_fit and interpolated
linearly (``DepthCorrection``; built by ``xec reco calibrate``). MEG corrects its fitted
position with simulation in the same spirit (J. Adam et al., Eur. Phys. J. C 73 (2013) 2365).
Without a vertex the target centre (the origin) is the start of the line of flight.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from xecdata.geometry import uvw_to_xyz, xyz_to_uvw

# fitted-depth bin edges (cm): fine near the face, where the light pattern changes fastest
DEPTH_EDGES = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 12.0, 15.0, 19.0, 25.0, 45.0)
MIN_PER_BIN = 20


@dataclass(frozen=True)
class DepthCorrection:
    """d(w_fit): bin centres (cm) and the shift (cm) at each, for linear interpolation."""

    w_fit: tuple[float, ...]
    shift: tuple[float, ...]

    def to_dict(self) -> dict[str, list[float]]:
        return {"w_fit": list(self.w_fit), "shift": list(self.shift)}

    @classmethod
    def from_dict(cls, d: dict[str, list[float]]) -> DepthCorrection:
        w, s = tuple(map(float, d["w_fit"])), tuple(map(float, d["shift"]))
        if len(w) != len(s) or len(w) < 1 or any(b <= a for a, b in pairwise(w)):
            raise ValueError("depth correction: w_fit must increase and match shift in length")
        return cls(w, s)

    def shift_at(self, w_fit: np.ndarray) -> np.ndarray:
        """d at each fitted depth (flat beyond the outer bin centres)."""
        return np.interp(w_fit, self.w_fit, self.shift)


def line_of_flight(xyz_fit: np.ndarray, vertex: np.ndarray) -> np.ndarray:
    """(B, 3) unit vectors from the vertex to the fitted point."""
    d = xyz_fit - vertex
    return d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)


def first_interaction(
    uvw_fit: np.ndarray, vertex: np.ndarray, corr: DepthCorrection
) -> tuple[np.ndarray, np.ndarray]:
    """(xyz, uvw) (B, 3) of the first interaction from fitted (u, v, w) and vertices (B, 3)."""
    xyz = uvw_to_xyz(uvw_fit)
    fi = xyz - corr.shift_at(uvw_fit[:, 2])[:, None] * line_of_flight(xyz, vertex)
    return fi, xyz_to_uvw(fi)


def fit_depth_correction(
    uvw_fit: np.ndarray, vertex: np.ndarray, xyz_true: np.ndarray
) -> DepthCorrection:
    """The table from calibration events (fitted points, vertices, true conversion points):
    median shift per fitted-depth bin with at least MIN_PER_BIN events, at the bins' median
    fitted depth."""
    xyz = uvw_to_xyz(uvw_fit)
    along = np.einsum("ij,ij->i", xyz - xyz_true, line_of_flight(xyz, vertex))
    w = uvw_fit[:, 2]
    centres, shifts = [], []
    for lo, hi in pairwise(DEPTH_EDGES):
        sel = (w >= lo) & (w < hi)
        if sel.sum() >= MIN_PER_BIN:
            centres.append(float(np.median(w[sel])))
            shifts.append(float(np.median(along[sel])))
    if not centres:
        raise ValueError(
            f"depth correction: no fitted-depth bin holds {MIN_PER_BIN} calibration events; "
            "simulate more events for the calibration"
        )
    return DepthCorrection(tuple(centres), tuple(shifts))
