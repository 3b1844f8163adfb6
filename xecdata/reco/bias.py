"""Position-dependent bias of the reconstructed first interaction, from the calibration
simulation.

After the depth correction (``xecdata.reco.depth``) the first-interaction estimate is still
biased in a way that depends on where the shower is: on the default detector (52.8 MeV, fiducial)
u_reco - u_true runs linearly from about +3.7 mm at u = -21 cm to -3.2 mm at u = +21 cm (the
fit pulls oblique showers towards the face centre along z), v_reco - v_true follows u with half
that slope, and both shrink towards the centre at the lateral edges of the face
(docs/detector-realism.md). MEG corrects the fitted position with simulation in the same way
(J. Adam et al., Eur. Phys. J. C 73 (2013) 2365, LXe section). The correction is

    (u, v, w)_corrected = (u, v, w) - b(u, v, w),

each component of b a polynomial of total degree <= ``BIAS_DEGREE`` in the reconstructed
(u, v, w) (clamped to the fiducial volume and scaled like the energy uniformity map,
``xecdata.reco.energy.design``), fitted by least squares with ``CLIP_SIGMA`` clipping to the
residuals reco - true of the calibration events reconstructed inside the fiducial volume. It
uses no truth at reconstruction time; it is part of the hashed calibration.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from typing import Any

import numpy as np

from xecdata.geometry import in_fiducial, uvw_to_xyz
from xecdata.reco.energy import CLIP_SIGMA, design
from xecdata.robust import half_width_68

BIAS_DEGREE = 3
MIN_BIAS_EVENTS = 500


def bias_terms() -> tuple[tuple[int, int, int], ...]:
    """Exponents (a, b, c) of u, v, w of the bias polynomials, in a fixed order."""
    r = range(BIAS_DEGREE + 1)
    return tuple((a, b, c) for a, b, c in product(r, repeat=3) if a + b + c <= BIAS_DEGREE)


@dataclass(frozen=True)
class PositionBias:
    """Terms and, per component u, v, w, the coefficients (cm) of the bias polynomial."""

    terms: tuple[tuple[int, int, int], ...]
    coefficients: tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]

    def to_dict(self) -> dict[str, Any]:
        coef = {n: list(c) for n, c in zip("uvw", self.coefficients, strict=True)}
        return {"terms": [list(t) for t in self.terms], "coefficients": coef}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PositionBias:
        terms = tuple((int(a), int(b), int(c)) for a, b, c in d["terms"])
        coef = tuple(tuple(float(x) for x in d["coefficients"][n]) for n in "uvw")
        if any(len(c) != len(terms) for c in coef):
            raise ValueError("position bias: one coefficient per term and component")
        return cls(terms, coef)  # type: ignore[arg-type]

    def bias(self, uvw: np.ndarray) -> np.ndarray:
        """b (B, 3) cm at reconstructed positions uvw (B, 3)."""
        return design(uvw, self.terms) @ np.asarray(self.coefficients).T

    def correct(self, uvw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(xyz, uvw) (B, 3) of the corrected first interaction; NaN rows stay NaN."""
        out = uvw - self.bias(np.nan_to_num(uvw))
        out[~np.isfinite(uvw).all(axis=1)] = np.nan
        return uvw_to_xyz(out), out


def fit_position_bias(uvw_reco: np.ndarray, uvw_true: np.ndarray) -> PositionBias:
    """The bias polynomials from calibration events: reconstructed and true first
    interactions (N, 3) cm; events reconstructed outside the fiducial volume are not used."""
    terms = bias_terms()
    use = in_fiducial(uvw_reco) & np.isfinite(uvw_true).all(axis=1)
    if use.sum() < MIN_BIAS_EVENTS:
        raise ValueError(f"only {int(use.sum())} events for the position bias; "
                         f"at least {MIN_BIAS_EVENTS} are needed")  # fmt: skip
    x, res = design(uvw_reco[use], terms), uvw_reco[use] - uvw_true[use]
    coefs = []
    for k in range(3):
        keep = np.ones(len(x), bool)
        for _ in range(4):
            c = np.linalg.lstsq(x[keep], res[keep, k], rcond=None)[0]
            r = res[:, k] - x @ c
            keep = np.abs(r) < CLIP_SIGMA * half_width_68(r[keep])
        coefs.append(tuple(float(v) for v in c))
    return PositionBias(terms, (coefs[0], coefs[1], coefs[2]))
