"""Photon energy: weighted photon sum, uniformity correction, energy scale.

As in the MEG LXe analysis (J. Adam et al., Eur. Phys. J. C 73 (2013) 2365; K. Afanaciev et
al., Eur. Phys. J. C 84 (2024) 190): the energy is proportional to the number of scintillation
photons, estimated by the sum of the detected photons with a weight per sensor group (making
up for the different photocathode coverage of each face), corrected for the position
dependence of the light collection (the uniformity map) and converted with an energy scale
(with its linearity); all come from a calibration (here a simulation: ``xec reco calibrate``).

- Sums: photons of the live sensors per face (inner MPPC, outer, US, DS, top, bottom PMTs;
  ``FACE_NAMES``), the inner face's sum completed with what the fitted source sends to the dead
  sensors of the fit window (``PointFit.dead_fill``). Dead sensors elsewhere are not
  restored: their share of the light is part of the calibration when it is simulated with the
  same dead fraction.
- Linear estimate: E_lin = sum_f weight_f * S_f, the weights fitted to the calibration events
  by non-negative least squares of E_lin / E_true - 1 (``fit_face_weights``).
- Uniformity: U(u, v, w) = sum_k c_k (u/su)^a_k (v/sv)^b_k (w/sw)^c_k, the monomials of total
  degree <= ``UNIFORMITY_DEGREE`` (at most cubic in w), fitted to E_lin / E_true with 3-sigma
  clipping; the position is the reconstructed first interaction, clamped to the fiducial volume.
- Scale and linearity: E_u = E_lin / U relates to the energy as E_u / E = a + b ln(E / E_REF),
  a and b a straight line through the peaks (midpoint of the shortest half, robust against the
  low-energy tail of leakage) of E_u / E_true in bins of true energy (one bin, b = 0, for a
  calibration at a single energy); E solves it by fixed-point iteration.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from itertools import pairwise, product

import numba
import numpy as np
from scipy.optimize import nnls

from xecdata.geometry import FACE_NAMES, FIDUCIAL_U, FIDUCIAL_V, FIDUCIAL_W, sensor_table
from xecdata.markers import INVALID_ABOVE
from xecdata.reco.lightmodel import _JIT
from xecdata.reco.tables import E_REF
from xecdata.robust import half_width_68, shortest_half_midpoint

UNIFORMITY_DEGREE = 4
LINEARITY_BIN = 0.15  # width of the true-energy bins in ln E (16 %)
LINEARITY_MIN = 200  # events per bin
UNIFORMITY_SCALES = (FIDUCIAL_U, FIDUCIAL_V, 20.0)  # cm: keeps the monomials of order 1
CLIP_SIGMA = 3.0


@cache
def _face_runs() -> np.ndarray:
    """(R, 3) [start, stop, face] of the runs of consecutive sensor ids on one face."""
    face = sensor_table().face
    cut = np.flatnonzero(np.diff(face)) + 1
    starts, stops = np.r_[0, cut], np.r_[cut, len(face)]
    return np.stack([starts, stops, face[starts]], 1).astype(np.int64)


@numba.njit(**_JIT)
def _face_sums(npho: np.ndarray, runs: np.ndarray, out: np.ndarray) -> None:
    for e in range(npho.shape[0]):
        out[e] = 0.0
        for r in range(runs.shape[0]):
            acc = 0.0
            for s in range(runs[r, 0], runs[r, 1]):  # a tight loop: vectorised
                x = npho[e, s]
                acc += x if np.abs(x) <= INVALID_ABOVE else 0.0
            out[e, runs[r, 2]] += acc


def face_sums(npho: np.ndarray, dead_fill: np.ndarray | None = None) -> np.ndarray:
    """(B, 4760) photons -> (B, 6) live photons per face (order of FACE_NAMES); the inner
    face's sum plus dead_fill (B,) where given (finite)."""
    out = np.empty((len(npho), len(FACE_NAMES)))
    _face_sums(np.ascontiguousarray(npho), _face_runs(), out)
    if dead_fill is not None:
        out[:, 0] += np.where(np.isfinite(dead_fill), dead_fill, 0.0)
    return out


def monomials() -> tuple[tuple[int, int, int], ...]:
    """Exponents (a, b, c) of the uniformity map's terms, in a fixed order."""
    return tuple(
        (a, b, c)
        for a, b, c in product(range(UNIFORMITY_DEGREE + 1), repeat=3)
        if a + b + c <= UNIFORMITY_DEGREE and c <= 3
    )


def design(uvw: np.ndarray, terms: tuple[tuple[int, int, int], ...]) -> np.ndarray:
    """(B, K) monomials at uvw (B, 3), clamped to the fiducial volume and scaled."""
    lim = np.array([[-FIDUCIAL_U, -FIDUCIAL_V, 0.0], [FIDUCIAL_U, FIDUCIAL_V, FIDUCIAL_W]])
    x = np.clip(uvw, lim[0], lim[1]) / np.array(UNIFORMITY_SCALES)
    return np.stack([x[:, 0] ** a * x[:, 1] ** b * x[:, 2] ** c for a, b, c in terms], 1)


@dataclass(frozen=True)
class EnergyCalibration:
    """Face weights (GeV per photon), uniformity terms and coefficients, scale (a, b)."""

    weights: tuple[float, ...]
    terms: tuple[tuple[int, int, int], ...]
    coefficients: tuple[float, ...]
    scale: tuple[float, float]

    def to_dict(self) -> dict[str, object]:
        return {"faces": list(FACE_NAMES), "weights": list(self.weights),
                "terms": [list(t) for t in self.terms], "coefficients": list(self.coefficients),
                "scale_ln_e": list(self.scale)}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict) -> EnergyCalibration:
        if list(d["faces"]) != list(FACE_NAMES) or len(d["terms"]) != len(d["coefficients"]):
            raise ValueError("energy calibration: faces or uniformity terms do not match")
        terms = tuple((int(a), int(b), int(c)) for a, b, c in d["terms"])
        a, b = map(float, d["scale_ln_e"])
        return cls(tuple(map(float, d["weights"])), terms,
                   tuple(map(float, d["coefficients"])), (a, b))  # fmt: skip

    def linear(self, sums: np.ndarray) -> np.ndarray:
        """E_lin (B,) in GeV from face sums (B, 6). Row sums, not a BLAS product: a row's
        result does not depend on the batch it comes in."""
        return (sums * np.asarray(self.weights)).sum(axis=1)

    def uniformity(self, uvw: np.ndarray) -> np.ndarray:
        """U (B,) at reconstructed positions (B, 3)."""
        return (design(uvw, self.terms) * np.asarray(self.coefficients)).sum(axis=1)

    def uniform(self, sums: np.ndarray, uvw: np.ndarray) -> np.ndarray:
        """E_u = E_lin / U (B,): the photon sum corrected for the light collection."""
        return self.linear(sums) / self.uniformity(uvw)

    def energy(self, sums: np.ndarray, uvw: np.ndarray) -> np.ndarray:
        """Calibrated energy (B,) in GeV: E_u / (a + b ln(E / E_REF)), solved for E."""
        e_u = self.uniform(sums, uvw)
        a, b = self.scale
        e = e_u / a
        for _ in range(3):  # |b| << a: converges to float precision in a few steps
            e = e_u / (a + b * np.log(np.where(e > 0, e, E_REF) / E_REF))
        return e


def fit_face_weights(sums: np.ndarray, e_true: np.ndarray) -> np.ndarray:
    """Non-negative weights (6,) minimising sum((sums @ w) / e_true - 1)^2."""
    a = sums / e_true[:, None]
    used = np.abs(a).sum(0) > 0  # a face without light in every event gets weight 0
    w = np.zeros(sums.shape[1])
    w[used] = nnls(a[:, used], np.ones(len(a)))[0]
    return w


def fit_uniformity(uvw: np.ndarray, ratio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients of U fitted to ratio = E_lin / E_true with CLIP_SIGMA clipping, and the
    events kept."""
    terms = monomials()
    x = design(uvw, terms)
    keep = np.isfinite(ratio)
    for _ in range(4):
        coef = np.linalg.lstsq(x[keep], ratio[keep], rcond=None)[0]
        res = ratio - x @ coef
        sigma = half_width_68(res[keep])
        keep = np.abs(res) < CLIP_SIGMA * sigma
    return coef, keep


def fit_linearity(e_u: np.ndarray, e_true: np.ndarray) -> tuple[float, float]:
    """(a, b) of E_u / E_true = a + b ln(E_true / E_REF): a line through the peaks of the ratio
    in bins of ln E_true (LINEARITY_BIN wide, LINEARITY_MIN events), weighted by their counts."""
    x, ratio = np.log(e_true / E_REF), e_u / e_true
    edges = np.arange(x.min(), x.max() + LINEARITY_BIN, LINEARITY_BIN)
    xs, peaks, counts = [], [], []
    for lo, hi in pairwise(edges):
        sel = (x >= lo) & (x < hi)
        if sel.sum() >= LINEARITY_MIN:
            xs.append(float(np.median(x[sel])))
            peaks.append(shortest_half_midpoint(ratio[sel]))
            counts.append(float(sel.sum()))
    if len(xs) < 2:
        return shortest_half_midpoint(ratio), 0.0
    b, a = np.polyfit(xs, peaks, 1, w=np.sqrt(counts))
    return float(a), float(b)
