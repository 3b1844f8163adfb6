"""Photon time: sensor times corrected for the light path, combined with outlier rejection.

As in the MEG LXe analysis (J. Adam et al., Eur. Phys. J. C 73 (2013) 2365; K. Afanaciev et
al., Eur. Phys. J. C 84 (2024) 190): each sensor's time is corrected for the propagation of
the scintillation light from the reconstructed interaction point, with an effective light
speed, and for the time walk of dim signals; the corrected times are combined by a fit
(a weighted mean) that drops the sensors far from it, and the result is moved back to the
gamma's emission at the vertex. Per event, with ns and cm:

    t'_s = t_s - L_s / v_eff - a_type / n_s          (L_s = |x_FI - p_s|, n_s = npho)
    sigma_s^2 = c0_type + c1_type / n_s + c2_type / n_s^2
    T = sum(t'_s / sigma_s^2) / sum(1 / sigma_s^2) over the kept sensors; sensors with
        |t'_s - T| > clip * sigma_s are dropped and T recomputed, up to ``MAX_PASSES`` times;
    timeReco = T - offset(w_FI, E) - |x_FI - x_vertex| / c

(c = ``xecdata.sim.optics.C_LIGHT``: the gamma flies at the speed of light from the vertex to
the first interaction). Sensors enter with a valid time and more than ``min_npho`` photons
(default ``MIN_NPHO``; dimmer ones weigh little: sigma grows as 1 / n), clipping at ``clip``.
v_eff, the walk a, the resolution model (c0, c1, c2) per sensor type and the offset (in depth
bins, linear in ln E: ``xecdata.reco.tables``) are fitted to a calibration simulation
(``TimeCalibration``, ``xecdata.reco.calibrate``). The speed is an effective one: the light of
a shower comes from a source that moves at c along the shower, and first photons are delayed
by the scintillation decay; a single speed from the refractive index describes neither.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from xecdata.geometry import sensor_table
from xecdata.markers import INVALID_ABOVE
from xecdata.reco.lightmodel import _JIT
from xecdata.reco.tables import BinnedLinear
from xecdata.sim.optics import C_LIGHT

MIN_NPHO = 200.0  # photons (about 24 photoelectrons on an MPPC, 32 on a PMT)
CLIP = 3.0
MAX_PASSES = 4
SENSOR_TYPES = ("MPPC", "PMT")


@dataclass(frozen=True)
class TimeCalibration:
    """Constants of the time estimate (ns, cm, photons); per-type tuples are (MPPC, PMT)."""

    inv_speed: float  # ns / cm: 1 / v_eff
    walk: tuple[float, float]  # ns * photons
    sigma2: tuple[tuple[float, float, float], tuple[float, float, float]]  # ns^2 (c0, c1, c2)
    offset: BinnedLinear  # ns, against the first interaction's depth w (cm) and ln E
    min_npho: float = MIN_NPHO  # photons: dimmer sensors are not used
    clip: float = CLIP  # sigmas: outlier rejection

    def to_dict(self) -> dict[str, object]:
        return {"inv_speed_ns_per_cm": self.inv_speed, "walk_ns_photons": list(self.walk),
                "sigma2_ns2": [list(s) for s in self.sigma2], "offset_ns": self.offset.to_dict(),
                "min_npho": self.min_npho, "clip_sigma": self.clip,
                "sensor_types": list(SENSOR_TYPES)}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict) -> TimeCalibration:
        return cls.from_parameters(
            np.array([d["inv_speed_ns_per_cm"], *d["walk_ns_photons"], *d["sigma2_ns2"][0],
                      *d["sigma2_ns2"][1], d["min_npho"], d["clip_sigma"]], dtype=np.float64),
            BinnedLinear.from_dict(d["offset_ns"]),
        )  # fmt: skip

    @classmethod
    def from_parameters(cls, par: np.ndarray, offset: BinnedLinear) -> TimeCalibration:
        """From the kernels' parameter vector (11,) and the offset table."""
        if par.shape != (11,) or not np.all(np.isfinite(par)):
            raise ValueError("time calibration: 11 finite constants expected")
        p = [float(v) for v in par]
        return cls(p[0], (p[1], p[2]), ((p[3], p[4], p[5]), (p[6], p[7], p[8])), offset,
                   p[9], p[10])  # fmt: skip

    def kernel_parameters(self) -> np.ndarray:
        """(11,) [1/v_eff, walk MPPC, walk PMT, c0 c1 c2 MPPC, c0 c1 c2 PMT, min_npho, clip]:
        what the kernels read (the offset is applied after them)."""
        return np.array([self.inv_speed, *self.walk, *self.sigma2[0], *self.sigma2[1],
                         self.min_npho, self.clip])  # fmt: skip


def sensor_type_codes() -> np.ndarray:
    """(4760,) int64: 0 for MPPCs, 1 for PMTs (the index into the per-type constants)."""
    return sensor_table().is_pmt.astype(np.int64)


@numba.njit(**_JIT)
def corrected_time(
    t_s: float, n: float, dist: float, typ: int, par: np.ndarray
) -> tuple[float, float]:
    """(t', sigma^2) of one sensor: time t_s (ns) with n photons at distance dist (cm)."""
    t = t_s - dist * par[0] - par[1 + typ] / n
    c = 3 + 3 * typ
    return t, max(par[c] + par[c + 1] / n + par[c + 2] / (n * n), 1e-8)


@numba.njit(**_JIT)
def usable(t: float, n: float, min_npho: float) -> bool:
    """A sensor with a valid time and enough light for the time estimate."""
    return np.abs(t) <= INVALID_ABOVE and np.abs(n) <= INVALID_ABOVE and n > min_npho


@numba.njit(**_JIT)
def _one_event(
    time: np.ndarray, npho: np.ndarray, fi: np.ndarray, pos: np.ndarray, typ: np.ndarray,
    par: np.ndarray, tc: np.ndarray, w: np.ndarray,
) -> tuple[float, int]:  # fmt: skip
    """(T, sensors kept) of one event; NaN, 0 when no sensor has a usable time."""
    k = 0
    for s in range(time.shape[0]):
        n = npho[s]
        if usable(time[s], n, par[9]):
            d0, d1, d2 = fi[0] - pos[s, 0], fi[1] - pos[s, 1], fi[2] - pos[s, 2]
            tc[k], sig2 = corrected_time(time[s] * 1e9, n, np.sqrt(d0 * d0 + d1 * d1 + d2 * d2),
                                         typ[s], par)  # fmt: skip
            w[k] = 1.0 / sig2
            k += 1
    if k == 0:
        return np.nan, 0
    keep = np.ones(k, np.bool_)
    mean, kept = 0.0, k
    for _ in range(MAX_PASSES):
        sw, st = 0.0, 0.0
        for q in range(k):
            if keep[q]:
                sw += w[q]
                st += w[q] * tc[q]
        mean = st / sw
        changed, kept = False, 0
        for q in range(k):
            good = (tc[q] - mean) ** 2 * w[q] <= par[10] * par[10]
            changed |= good != keep[q]
            keep[q] = good
            kept += good
        if not changed or kept == 0:
            break
    return mean, kept


@numba.njit(**_JIT)
def _event_times(
    time: np.ndarray, npho: np.ndarray, fi: np.ndarray, pos: np.ndarray, typ: np.ndarray,
    par: np.ndarray, out: np.ndarray, n_used: np.ndarray,
) -> None:  # fmt: skip
    tc, w = np.empty(time.shape[1]), np.empty(time.shape[1])
    for e in range(time.shape[0]):
        if np.isfinite(fi[e, 0]):
            out[e], n_used[e] = _one_event(time[e], npho[e], fi[e], pos, typ, par, tc, w)
        else:
            out[e], n_used[e] = np.nan, 0


def interaction_times(
    time: np.ndarray, npho: np.ndarray, fi: np.ndarray, par: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """T (B,) in ns (NaN where no sensor is usable or fi is NaN) and sensors kept (B,), from
    sensor times (B, 4760) in s, npho (B, 4760), first interactions fi (B, 3) cm and the
    kernel parameters (``TimeCalibration.kernel_parameters``)."""
    b = len(time)
    out, n_used = np.empty(b), np.empty(b, np.int32)
    _event_times(np.ascontiguousarray(time), np.ascontiguousarray(npho),
                 np.ascontiguousarray(fi, dtype=np.float64), sensor_table().pos,
                 sensor_type_codes(), par, out, n_used)  # fmt: skip
    return out, n_used


def flight_time(fi: np.ndarray, vertex: np.ndarray) -> np.ndarray:
    """(B,) ns the gamma takes from the vertex to the first interaction (both (B, 3) cm)."""
    return np.linalg.norm(fi - vertex, axis=1) / C_LIGHT
