"""Solid angles of the sensitive areas of the sensors seen from points in the xenon.

Two exact formulas (steradians), both checked against numerical integration in the tests:

- MPPC: 2 x 2 square chips of side ``MPPC_CHIP`` = 0.59 cm separated by ``MPPC_GAP`` = 0.05 cm
  (``xecdata.geometry``). A rectangle [x1, x2] x [y1, y2] in its plane seen from a height h > 0
  subtends F(x2, y2) - F(x1, y2) - F(x2, y1) + F(x1, y1) with
  F(x, y) = atan(x y / (h sqrt(x^2 + y^2 + h^2))) (exact; summed over the four chips).
- PMT: a disc of radius ``PMT_RADIUS`` = 2.25 cm. Exact closed form with complete and
  incomplete elliptic integrals through Heuman's lambda function (F. Paxton, Rev. Sci.
  Instrum. 30 (1959) 254): with L the height above the disc plane, r0 the distance of the point's
  projection from the disc centre, rm the radius, R1 = sqrt(L^2 + (r0 - rm)^2),
  Rmax = sqrt(L^2 + (r0 + rm)^2), k^2 = 1 - R1^2 / Rmax^2, xi = atan(L / |r0 - rm|):
  Omega = 2 pi - 2 L K(k) / Rmax - pi Lambda0(xi, k) inside (r0 < rm),
  pi - 2 L K(k) / Rmax on the rim, and -2 L K(k) / Rmax + pi Lambda0(xi, k) outside.
- Far away both tend to the point-source value A h / r^3 (A the sensitive area); how the
  simulator switches between these and a multipole expansion is in ``xecdata.sim.optics``.

Points behind a sensor's plane (h <= 0) see nothing: a sensor facing away gets no light.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from xecdata.geometry import MPPC_CHIP, MPPC_GAP, PMT_RADIUS, sensor_table

# chip edges along each in-plane axis, relative to the package centre (cm)
_CHIP_EDGES = (
    (-(MPPC_GAP / 2 + MPPC_CHIP), -MPPC_GAP / 2),
    (MPPC_GAP / 2, MPPC_GAP / 2 + MPPC_CHIP),
)


def _rect_corner(x: np.ndarray, y: np.ndarray, h: np.ndarray) -> np.ndarray:
    return np.arctan(x * y / (h * np.sqrt(x * x + y * y + h * h)))


def rectangle_solid_angle(
    x1: np.ndarray, x2: np.ndarray, y1: np.ndarray, y2: np.ndarray, h: np.ndarray
) -> np.ndarray:
    """Exact solid angle of the rectangle [x1, x2] x [y1, y2] seen from height h > 0 above
    the origin of its plane (all arrays broadcast; cm in, sr out)."""
    return (
        _rect_corner(x2, y2, h)
        - _rect_corner(x1, y2, h)
        - _rect_corner(x2, y1, h)
        + _rect_corner(x1, y1, h)
    )


def mppc_solid_angle(a: np.ndarray, b: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Exact solid angle of a 2 x 2-chip MPPC seen from in-plane offsets (a, b) along the
    sensor's axis_a / axis_b and height h along its normal (cm); 0 where h <= 0."""
    a, b, h = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a, b, h)))
    front = h > 0
    hh = np.where(front, h, 1.0)
    total = np.zeros(a.shape)
    for a1, a2 in _CHIP_EDGES:
        for b1, b2 in _CHIP_EDGES:
            total += rectangle_solid_angle(a - a2, a - a1, b - b2, b - b1, hh)
    return np.where(front, total, 0.0)


def _heuman_lambda(xi: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Heuman's lambda function Lambda0(xi | m) with parameter m = k^2."""
    mc = 1.0 - m
    kk, ek = special.ellipk(m), special.ellipe(m)
    fi, ei = special.ellipkinc(xi, mc), special.ellipeinc(xi, mc)
    return (2.0 / np.pi) * (ek * fi + kk * ei - kk * fi)


def disc_solid_angle(r0: np.ndarray, h: np.ndarray, radius: float = PMT_RADIUS) -> np.ndarray:
    """Exact solid angle of a disc of the given radius seen from a point at distance r0 (cm)
    from its axis and height h along its normal; 0 where h <= 0."""
    r0, h = np.broadcast_arrays(np.abs(np.asarray(r0, float)), np.asarray(h, float))
    front = h > 0
    L = np.where(front, h, 1.0)
    rmax = np.hypot(L, r0 + radius)
    r1 = np.hypot(L, r0 - radius)
    m = np.clip(1.0 - (r1 / rmax) ** 2, 0.0, 1.0 - 1e-16)
    term = 2.0 * L * special.ellipk(m) / rmax
    dr = r0 - radius
    xi = np.arctan2(L, np.abs(dr))
    lam = np.pi * _heuman_lambda(xi, m)
    omega = np.where(dr < 0, 2 * np.pi - term - lam, np.where(dr > 0, lam - term, np.pi - term))
    return np.where(front, np.maximum(omega, 0.0), 0.0)


def local_coords(points: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, ...]:
    """Offsets (a, b, h) in cm of points (N, 3) from sensors ids (N,), along each sensor's
    axis_a, axis_b and inward normal."""
    t = sensor_table()
    d = np.asarray(points, dtype=np.float64) - t.pos[ids]
    return (
        np.einsum("nk,nk->n", d, t.axis_a[ids]),
        np.einsum("nk,nk->n", d, t.axis_b[ids]),
        np.einsum("nk,nk->n", d, t.normal[ids]),
    )


def exact_solid_angle(points: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Exact solid angle (sr) of sensors ids (N,) seen from points (N, 3) in cm."""
    ids = np.asarray(ids)
    a, b, h = local_coords(points, ids)
    pmt = sensor_table().is_pmt[ids]
    out = np.empty(len(ids))
    out[~pmt] = mppc_solid_angle(a[~pmt], b[~pmt], h[~pmt])
    out[pmt] = disc_solid_angle(np.hypot(a[pmt], b[pmt]), h[pmt])
    return out
