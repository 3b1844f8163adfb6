"""The conventional LXe reconstruction: the baseline an ML reconstruction has to beat.

Per event, from the sensors' photon counts and times, as the MEG / MEG II LXe analysis does it
(J. Adam et al., "The MEG detector for mu+ -> e+ gamma decay search", Eur. Phys. J. C 73
(2013) 2365, arXiv:1303.2348; A. M. Baldini et al., "The design of the MEG II experiment",
Eur. Phys. J. C 78 (2018) 380, arXiv:1801.04688; K. Afanaciev et al., "Operation and
performance of the MEG II detector", Eur. Phys. J. C 84 (2024) 190, arXiv:2310.11902):

- position (``position``, ``fitkernel``, ``lightmodel``): centroid start, then a Poisson fit of
  the inner-face photon counts to N0 * Omega(x) / (4 pi) with the simulator's solid angles, and
  the shift from the fitted point back to the first interaction along the line of flight
  (``depth``) -> uvwRecoFI, xyzRecoFI (cm);
- energy (``energy``): photon sum weighted per face, uniformity map, scale and linearity
  -> energyReco (GeV);
- time (``timing``): sensor times corrected for the light path and the walk, weighted mean
  with outlier rejection, gamma flight from the vertex -> timeReco (ns, the clock of
  timeTruth);
- angle: direction from xyzVTX to xyzRecoFI -> emiAngReco (deg, the convention of emiAng).

The constants come from a calibration (``calibration``: versioned, content-hashed JSON, tied to
a geometry) built from simulated events by ``calibrate`` (``xec reco calibrate``); xec ships
``default@N.json`` (rebuild recipe: ``calibrate.DEFAULT_RECIPE``). ``run`` streams files or
stores through ``reconstruct`` (``xec reco``); ``resolution`` compares with simulation truth.
Events that cannot be reconstructed get the 1e10 marker and a status, never disappear.
Kernels are numba (no Python loop over sensors); torch is not imported.
"""

from xecdata.reco import kernelcache

kernelcache.refresh()

from xecdata.reco.calibration import (  # noqa: E402
    Calibration,
    CalibrationError,
    default_calibration,
    load_calibration,
)
from xecdata.reco.reconstruct import BRANCHES, STATUS_BRANCH, RecoBatch, reconstruct  # noqa: E402

__all__ = [
    "BRANCHES",
    "STATUS_BRANCH",
    "Calibration",
    "CalibrationError",
    "RecoBatch",
    "default_calibration",
    "load_calibration",
    "reconstruct",
]
