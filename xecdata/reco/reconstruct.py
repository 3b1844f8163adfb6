"""One batch of events through the whole conventional reconstruction.

position fit (``position``) -> first interaction (``depth``) -> its position bias
(``bias``, calibrations from default@4) -> energy (``energy``) -> time
(``timing``) -> angle (direction vertex -> first interaction, ``xecdata.sim.kinematics.
emission_angles``: the convention of ``emiAng``, theta from +z, phi = atan2(y, x) in
[0, 360) degrees). Every output branch is float32 with the input files' 1e10 marker where the
event could not be reconstructed; ``statusReco`` says why (``REASONS``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xecdata.markers import valid_rows
from xecdata.reco.calibration import Calibration
from xecdata.reco.depth import first_interaction
from xecdata.reco.energy import face_sums
from xecdata.reco.position import OK, STATUS_NAMES, fit_positions
from xecdata.reco.timing import flight_time, interaction_times
from xecdata.sim.kinematics import emission_angles
from xecdata.sim.response import INVALID

# output branches (units: cm, cm, GeV, ns, deg) and the per-event status
BRANCHES = ("uvwRecoFI", "xyzRecoFI", "energyReco", "timeReco", "emiAngReco")
STATUS_BRANCH = "statusReco"  # "Reco" in the name: ingest and infer carry it along
NO_TIME_FLAG, NO_VERTEX_FLAG = 8, 16  # statusReco bits added to the position code
REASONS = (*STATUS_NAMES.values(), "no_usable_time", "no_vertex")
TARGET_CENTRE = np.zeros(3)  # cm: the start of the line of flight without a vertex


@dataclass
class RecoBatch:
    """Reconstructed branches of a batch (B events) and why values are missing.

    branches: name -> float32 (B,) or (B, k), INVALID where missing; position (B,) int8 status
    of the position fit (0 or a STATUS_NAMES code); no_time, no_vertex (B,) bool.
    """

    branches: dict[str, np.ndarray]
    position: np.ndarray
    no_time: np.ndarray
    no_vertex: np.ndarray

    def status(self) -> np.ndarray:
        """(B,) int8 statusReco: position code + NO_TIME_FLAG + NO_VERTEX_FLAG."""
        code = self.position.astype(np.int16) + NO_TIME_FLAG * self.no_time
        code += NO_VERTEX_FLAG * self.no_vertex
        return code.astype(np.int8)

    def failure_counts(self) -> dict[str, int]:
        """Events per reason (a position failure also leaves time and angle out)."""
        counts = {STATUS_NAMES[c]: int((self.position == c).sum()) for c in STATUS_NAMES}
        fitted = self.position == OK
        counts["no_usable_time"] = int((self.no_time & fitted).sum())
        counts["no_vertex"] = int((self.no_vertex & fitted).sum())
        return counts


def _marked(values: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """float32 copy of values with INVALID in the rows that are not ok."""
    out = np.asarray(values, np.float64).copy()
    out[~ok] = INVALID
    return out.astype(np.float32)


def reconstruct(
    npho: np.ndarray, time: np.ndarray, vertex: np.ndarray | None, cal: Calibration
) -> RecoBatch:
    """Reconstruct B events: npho (B, 4760) photons and time (B, 4760) s (the input files'
    npho and relative_time; 1e10 / NaN where no value), vertex (B, 3) cm or None (no xyzVTX:
    the target centre is used for the line of flight and the gamma's flight time, and the
    angle is left out)."""
    b = len(npho)
    fit = fit_positions(npho, int(cal.settings["window_half"]), cal.attenuation_length)
    fitted = fit.status == OK
    has_vtx = np.zeros(b, bool) if vertex is None else valid_rows(vertex)
    vtx = np.tile(TARGET_CENTRE, (b, 1))
    if vertex is not None:
        vtx[has_vtx] = np.asarray(vertex, np.float64)[has_vtx]
    uvw_fit = np.where(fitted[:, None], fit.params[:, :3], 0.0)
    sums = face_sums(npho, fit.dead_fill)
    xyz, uvw = first_interaction(uvw_fit, vtx, cal.energy.linear(sums), cal.depth)
    if cal.position is not None:
        xyz, uvw = cal.position.correct(uvw)
    xyz[~fitted] = np.nan
    energy = cal.energy.energy(sums, uvw)
    t_fi, _ = interaction_times(time, npho, xyz, cal.time.kernel_parameters())
    t_gamma = t_fi - cal.time.offset.at(uvw[:, 2], energy) - flight_time(xyz, vtx)
    has_time = np.isfinite(t_gamma)
    direction = np.where(fitted[:, None], xyz - vtx, 1.0)
    angles = emission_angles(direction / np.linalg.norm(direction, axis=1, keepdims=True))
    branches = {
        "uvwRecoFI": _marked(uvw, fitted),
        "xyzRecoFI": _marked(xyz, fitted),
        "energyReco": _marked(energy, fitted & np.isfinite(energy)),
        "timeReco": _marked(t_gamma, fitted & has_time),
        "emiAngReco": _marked(angles, fitted & has_vtx),
    }
    return RecoBatch(branches, fit.status, fitted & ~has_time, fitted & ~has_vtx)
