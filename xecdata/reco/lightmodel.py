"""The expected light of a point source on one inner-face MPPC, with its gradient, for the fit.

The position fit compares the inner-face photon counts with N0 * Omega_s(x) / (4 pi): N0
photons emitted isotropically at x, Omega_s the solid angle of the sensitive area of MPPC s.
Omega is the simulator's own light model (``xecdata.sim.optics`` / ``xecdata.sim.solid_angle``),
evaluated the way the simulator evaluates it for sensor-deposit pairs:

- within ``EXACT_MPPC`` of the sensor centre, the exact solid angle of the 2 x 2 chips, summed
  over the chips' rectangles with F(x, y) = atan(x y / (h sqrt(x^2 + y^2 + h^2)));
- beyond, the second-order multipole A h / r^3 (1 + s2 (4.5 r^2 - 7.5 h^2) / r^4), with A and
  s2 the sensitive area and its second moment per axis (``sensor_optics().s2``). The simulator
  drops the s2 term beyond ``FAR_MPPC``; the fit keeps it there (a smooth model, < 1 % apart).

The per-pair numbers are not typed again here: the sensor frames, chip edges, areas, second
moments and switch radii are read from ``xecdata.geometry`` and ``xecdata.sim.optics``, and a
test compares this kernel with ``xecdata.sim.optics.near_geometric_factor`` pair by pair. Only
the arithmetic is restated, in numba, because the fit evaluates it ~10^5 times per event.

The gradient is analytic: for a rectangle corner, with rho = sqrt(x^2 + y^2 + h^2),
dF/dx = y h / (rho (x^2 + h^2)), dF/dy = x h / (rho (y^2 + h^2)) and
dF/dh = -x y (rho^2 + h^2) / (rho (x^2 + h^2)(y^2 + h^2)).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numba
import numpy as np

from xecdata.geometry import FACE_CODE, MPPC_CHIP, MPPC_GAP, R_INNER, sensor_table
from xecdata.sim.optics import sensor_optics

N_INNER = int(np.sum(sensor_table().face == FACE_CODE["inner"]))
# chip edges along each in-plane axis relative to the package centre (cm): -outer, -inner, ...
CHIP_EDGES = np.array([-(MPPC_GAP / 2 + MPPC_CHIP), -MPPC_GAP / 2, MPPC_GAP / 2,
                       MPPC_GAP / 2 + MPPC_CHIP])  # fmt: skip
_JIT: dict[str, Any] = dict(nogil=True, cache=True, fastmath=False, error_model="numpy")


@dataclass(frozen=True)
class InnerFace:
    """Per-MPPC constants the fit reads (S = number of inner-face sensors).

    frame (S, 12): position, axis_a, axis_b, normal (cm, unit vectors);
    consts (S, 3): [sensitive area / (4 pi), s2, exact-formula radius squared];
    uv (S, 2): the sensor centre's (u, v) in cm.
    """

    frame: np.ndarray
    consts: np.ndarray
    uv: np.ndarray


@cache
def inner_face() -> InnerFace:
    """Build (once) the inner-face constants from the geometry and the simulator's optics."""
    t, opt = sensor_table(), sensor_optics()
    ids = np.flatnonzero(t.face == FACE_CODE["inner"])
    frame = np.concatenate([t.pos[ids], t.axis_a[ids], t.axis_b[ids], t.normal[ids]], axis=1)
    consts = np.stack([t.area[ids] / (4 * np.pi), opt.s2[ids], opt.exact[ids] ** 2], axis=1)
    pos = t.pos[ids]
    uv = np.stack([pos[:, 2], np.arctan2(pos[:, 1], -pos[:, 0]) * R_INNER], axis=1)
    return InnerFace(np.ascontiguousarray(frame), np.ascontiguousarray(consts), uv)


@numba.njit(**_JIT)
def _rect_corner(x: float, y: float, h: float) -> tuple[float, float, float, float]:
    """F(x, y, h) and (dF/dx, dF/dy, dF/dh)."""
    x2, y2, h2 = x * x, y * y, h * h
    rho = np.sqrt(x2 + y2 + h2)
    xh, yh = x2 + h2, y2 + h2
    return (
        np.arctan(x * y / (h * rho)),
        y * h / (rho * xh),
        x * h / (rho * yh),
        -x * y * (rho * rho + h2) / (rho * xh * yh),
    )


@numba.njit(**_JIT)
def _mppc_exact(a: float, b: float, h: float) -> tuple[float, float, float, float]:
    """Exact solid angle of the 2 x 2 chips at in-plane offset (a, b), height h > 0, and its
    derivatives d/d(a, b, h)."""
    total, ga, gb, gh = 0.0, 0.0, 0.0, 0.0
    for ca in range(2):
        a1, a2 = CHIP_EDGES[2 * ca], CHIP_EDGES[2 * ca + 1]
        for cb in range(2):
            b1, b2 = CHIP_EDGES[2 * cb], CHIP_EDGES[2 * cb + 1]
            # the simulator's rectangle [a - a2, a - a1] x [b - b2, b - b1], corner by corner
            for x, y, sign in ((a - a1, b - b1, 1.0), (a - a2, b - b1, -1.0),
                               (a - a1, b - b2, -1.0), (a - a2, b - b2, 1.0)):  # fmt: skip
                f, fx, fy, fh = _rect_corner(x, y, h)
                total += sign * f
                ga += sign * fx
                gb += sign * fy
                gh += sign * fh
    return total, ga, gb, gh


@numba.njit(**_JIT)
def exact_fraction(
    d0: float, d1: float, d2: float, h: float, s: int, frame: np.ndarray
) -> tuple[float, float, float, float]:
    """Omega_s / (4 pi) and its gradient, exact formula, at offset d from MPPC s's centre
    (height h = d . normal > 0)."""
    a = d0 * frame[s, 3] + d1 * frame[s, 4] + d2 * frame[s, 5]
    b = d0 * frame[s, 6] + d1 * frame[s, 7] + d2 * frame[s, 8]
    omega, ga, gb, gh = _mppc_exact(a, b, h)
    inv = 1.0 / (4.0 * np.pi)
    return (
        omega * inv,
        inv * (ga * frame[s, 3] + gb * frame[s, 6] + gh * frame[s, 9]),
        inv * (ga * frame[s, 4] + gb * frame[s, 7] + gh * frame[s, 10]),
        inv * (ga * frame[s, 5] + gb * frame[s, 8] + gh * frame[s, 11]),
    )


@numba.njit(**_JIT)
def multipole_fraction(
    d0: float, d1: float, d2: float, h: float, r2: float, n: tuple[float, float, float],
    area4pi: float, s2: float,
) -> tuple[float, float, float, float]:  # fmt: skip
    """Omega / (4 pi) and its gradient in the multipole form at offset d (|d|^2 = r2, height
    h > 0 along the normal n): g = h r^-3 + s2 (4.5 h r^-5 - 7.5 h^3 r^-7), times A / (4 pi)."""
    ir2 = 1.0 / r2
    ir3 = ir2 / np.sqrt(r2)
    ir5, h2 = ir3 * ir2, h * h
    ir7 = ir5 * ir2
    g = h * ir3 + s2 * (4.5 * h * ir5 - 7.5 * h2 * h * ir7)
    dg_dh = area4pi * (ir3 + s2 * (4.5 * ir5 - 22.5 * h2 * ir7))
    dg_dr2 = 2.0 * area4pi * (-1.5 * h * ir5 + s2 * (-11.25 * h + 26.25 * h2 * h * ir2) * ir7)
    return (
        area4pi * g,
        dg_dh * n[0] + dg_dr2 * d0,
        dg_dh * n[1] + dg_dr2 * d1,
        dg_dh * n[2] + dg_dr2 * d2,
    )


@numba.njit(**_JIT)
def light_fraction(
    x0: float, x1: float, x2: float, s: int, frame: np.ndarray, consts: np.ndarray
) -> tuple[float, float, float, float]:
    """Omega_s(x) / (4 pi) of inner MPPC s seen from x = (x0, x1, x2) in cm, and its gradient
    with respect to x. 0 (and a zero gradient) behind the sensor plane."""
    d0, d1, d2 = x0 - frame[s, 0], x1 - frame[s, 1], x2 - frame[s, 2]
    n = (frame[s, 9], frame[s, 10], frame[s, 11])
    h = d0 * n[0] + d1 * n[1] + d2 * n[2]
    if h <= 0.0:
        return 0.0, 0.0, 0.0, 0.0
    r2 = d0 * d0 + d1 * d1 + d2 * d2
    if r2 < consts[s, 2]:
        return exact_fraction(d0, d1, d2, h, s, frame)
    return multipole_fraction(d0, d1, d2, h, r2, n, consts[s, 0], consts[s, 1])
