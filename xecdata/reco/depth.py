"""From the point-source fit to the first interaction: a shift back along the line of flight.

A shower starts at the first interaction (conversion) point and deposits its energy over
several X0 beyond it, along the photon's direction; the point-source fit lands on the
light-weighted part of the shower the inner face sees, deeper than the conversion and, for an
oblique photon, displaced along its direction. The first-interaction estimate is therefore

    x_FI = x_fit - d(w_fit, E) * n,   n = (x_fit - x_vertex) / |x_fit - x_vertex|,

with d the distance along n between the fitted point and the true conversion point in the
calibration simulation, tabulated in bins of the fitted depth w_fit, linear in ln E
(``xecdata.reco.tables.BinnedLinear``; E the uncorrected photon-sum energy; the shower, and so
the shift, grows with ln E). MEG corrects its fitted position with simulation in the same
spirit (J. Adam et al., Eur. Phys. J. C 73 (2013) 2365). Without a vertex the target centre
(the origin) is the start of the line of flight.
"""

from __future__ import annotations

import numpy as np

from xecdata.geometry import uvw_to_xyz, xyz_to_uvw
from xecdata.reco.tables import BinnedLinear, fit_binned_linear

# fitted-depth bin edges (cm): fine near the face, where the light pattern changes fastest
DEPTH_EDGES = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 12.0, 15.0, 19.0, 25.0, 45.0)


def line_of_flight(xyz_fit: np.ndarray, vertex: np.ndarray) -> np.ndarray:
    """(B, 3) unit vectors from the vertex to the fitted point."""
    d = xyz_fit - vertex
    return d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)


def first_interaction(
    uvw_fit: np.ndarray, vertex: np.ndarray, energy: np.ndarray, corr: BinnedLinear
) -> tuple[np.ndarray, np.ndarray]:
    """(xyz, uvw) (B, 3) of the first interaction from fitted (u, v, w), vertices (B, 3) and
    uncorrected energies (B,) GeV."""
    xyz = uvw_to_xyz(uvw_fit)
    shift = corr.at(uvw_fit[:, 2], energy)
    fi = xyz - shift[:, None] * line_of_flight(xyz, vertex)
    return fi, xyz_to_uvw(fi)


def fit_depth_correction(
    uvw_fit: np.ndarray, vertex: np.ndarray, energy: np.ndarray, xyz_true: np.ndarray
) -> BinnedLinear:
    """The table from calibration events: fitted points, vertices, true energies (GeV) and
    true conversion points."""
    xyz = uvw_to_xyz(uvw_fit)
    along = np.einsum("ij,ij->i", xyz - xyz_true, line_of_flight(xyz, vertex))
    return fit_binned_linear(uvw_fit[:, 2], energy, along, DEPTH_EDGES)
