"""Gamma kinematics for the toy simulator: vertex, energy, direction, conversion, shower.

Frame and conventions (MEG, ``xecdata.geometry``): cm, ns, MeV inside the simulator; target
at the origin, beam along +z, the xenon at x < 0. Emission angles follow the MEG convention
theta = polar angle from +z and phi = atan2(y, x), both in degrees; phi is reported in
[0, 360) because the detector acceptance straddles phi = 180 deg and a (-180, 180] range would
cut it in two.

Parameters and their sources:
- Energy: the mu -> e gamma signal line ``E_LINE`` = 52.8 MeV (m_mu / 2) by default, a flat
  spectrum over ``E_FLAT`` = 15-60 MeV, or any user range; gammas under ``E_MIN`` = 14.5 MeV
  are never produced (DESIGN.md "Physics facts": such events are dropped; sampling the range
  above the cut is the same distribution as generating and dropping).
- Vertex: approximately the MEG II target, an elliptical foil with semi-axes
  ``TARGET_SEMI_AXES`` = (13.5, 3.3) cm slanted by ``TARGET_SLANT_DEG`` = 15 deg to the beam
  axis ("The design of the MEG II experiment", Eur. Phys. J. C 78 (2018) 380), hit by a
  Gaussian beam spot of ``BEAM_SIGMA`` = 1 cm in x and y; the stopping point lies on the foil
  plane (z = x / tan 15 deg), points outside the ellipse are redrawn. A thin target: the
  vertices spread a few cm along z and ~1 cm across.
- Direction: isotropic, restricted to the rays from the vertex that enter the inner face at
  |u| < ``ACCEPT_U`` = 25 cm and |v| < ``ACCEPT_V`` = 70 cm (uniform in cos(theta) and phi over
  a box covering that window; misses are redrawn).
- First interaction: exponential depth along the direction from the inner-face entry point
  with mean free path ``LAMBDA_CONV`` = 9/7 X0 = 3.69 cm (pair-production limit; X0 = 2.87 cm
  for LXe, DESIGN.md). There is no material before the xenon. A gamma that would cross the
  xenon without converting (probability ~exp(-41/3.69) ~ 1.5e-5) is redrawn, so every event
  converts inside the xenon volume.
- Shower: ``n_deposits`` equal-energy deposits along the direction from the conversion point;
  depths t (in X0) are stratified samples of the longitudinal profile
  dE/dt ~ t^(a-1) exp(-b t) with b = ``SHOWER_B`` = 0.5 and t_max = (a-1)/b =
  ln(E / ``E_CRIT``) + 0.5 (PDG "Passage of particles through matter", photon-initiated
  showers; E_CRIT = 610 MeV / (Z + 1.24) = 11.0 MeV for Z = 54). Each deposit is displaced
  laterally by a Gaussian of width ``LATERAL_FRAC`` * R_M * min(t / t_max, 2), R_M = 5.2 cm
  the Moliere radius (DESIGN.md); 0.25 R_M at the maximum is a toy choice that keeps 92-93 % of
  the energy within one R_M. Deposits outside the xenon (``inside_xenon``) are dropped: their
  energy leaks out.
- Xenon volume (from the sensor-plane parameters of ``xecdata.geometry``): R_INNER <= r <=
  R_OUTER, |phi'| <= HEX_WALL_PHI (top/bottom walls) and |z| under the slanted US/DS planes
  z = ENDCAP_Z0 + (ENDCAP_DZ / ENDCAP_DR) (r - ENDCAP_R0).
"""

from __future__ import annotations

import numpy as np
from scipy import special

from xecdata.geometry import (
    ENDCAP_DR,
    ENDCAP_DZ,
    ENDCAP_R0,
    ENDCAP_Z0,
    HEX_WALL_PHI,
    R_INNER,
    R_OUTER,
)

E_LINE = 52.8  # MeV
E_FLAT = (15.0, 60.0)  # MeV
E_MIN = 14.5  # MeV
TARGET_SEMI_AXES = (13.5, 3.3)  # cm (along the slanted foil, along y)
TARGET_SLANT_DEG = 15.0
BEAM_SIGMA = 1.0  # cm
ACCEPT_U, ACCEPT_V = 25.0, 70.0  # cm on the inner face
X0 = 2.87  # cm, LXe radiation length
MOLIERE_RADIUS = 5.2  # cm
LAMBDA_CONV = 9.0 / 7.0 * X0  # cm, photon conversion mean free path
E_CRIT = 610.0 / (54 + 1.24)  # MeV
SHOWER_B = 0.5
LATERAL_FRAC = 0.25

# sampling box of directions that covers the acceptance window from any vertex
_COS_BOX = 0.6
_PHI_BOX_DEG = 68.0  # around phi = 180 deg


def check_energy_range(lo: float, hi: float) -> None:
    """Raise ValueError unless lo <= hi and the range reaches above the 14.5 MeV cut."""
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo > hi:
        raise ValueError(f"energy range {lo}:{hi} MeV is not an increasing range; use LO:HI")
    if hi < E_MIN:
        raise ValueError(
            f"energy range {lo}:{hi} MeV lies under the {E_MIN} MeV cut: every event would be "
            f"dropped; choose energies of at least {E_MIN} MeV"
        )


def sample_energy(
    rng: np.random.Generator, shape: tuple[int, ...], lo: float, hi: float
) -> np.ndarray:
    """Gamma energies (MeV), uniform in [max(lo, 14.5), hi] (a line when lo == hi)."""
    check_energy_range(lo, hi)
    lo = max(lo, E_MIN)
    return lo + (hi - lo) * rng.random(shape)


def sample_vertex(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 3) decay points on the slanted elliptical target (cm)."""
    out = np.empty((n, 3))
    todo = np.arange(n)
    slant = np.deg2rad(TARGET_SLANT_DEG)
    while todo.size:
        x, y = rng.normal(0.0, BEAM_SIGMA, (2, todo.size))
        s = x / np.sin(slant)  # coordinate along the foil's long axis
        ok = (s / TARGET_SEMI_AXES[0]) ** 2 + (y / TARGET_SEMI_AXES[1]) ** 2 < 1.0
        out[todo[ok]] = np.stack([x[ok], y[ok], x[ok] / np.tan(slant)], -1)
        todo = todo[~ok]
    return out


def inner_face_entry(vtx: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Distance (cm) along the unit direction from vtx (inside r < R_INNER) to the inner face."""
    dx, dy = direction[..., 0], direction[..., 1]
    x0, y0 = vtx[..., 0], vtx[..., 1]
    a = dx * dx + dy * dy
    b = x0 * dx + y0 * dy
    c = x0 * x0 + y0 * y0 - R_INNER**2
    return (-b + np.sqrt(b * b - a * c)) / np.maximum(a, 1e-12)


def _random_directions(rng: np.random.Generator, n: int) -> np.ndarray:
    cos_t = rng.uniform(-_COS_BOX, _COS_BOX, n)
    phi = np.deg2rad(180.0 + rng.uniform(-_PHI_BOX_DEG, _PHI_BOX_DEG, n))
    sin_t = np.sqrt(1.0 - cos_t**2)
    return np.stack([sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t], -1)


def sample_gammas(rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    """Vertex (n, 3), unit direction (n, 3) and first interaction point (n, 3), all in cm,
    for gammas inside the inner-face acceptance that convert inside the xenon."""
    vtx, dirs, conv = (np.empty((n, 3)) for _ in range(3))
    todo = np.arange(n)
    while todo.size:
        v = sample_vertex(rng, todo.size)
        d = _random_directions(rng, todo.size)
        s_in = inner_face_entry(v, d)
        entry = v + s_in[:, None] * d
        v_face = np.arctan2(entry[:, 1], -entry[:, 0]) * R_INNER
        depth = rng.exponential(LAMBDA_CONV, todo.size)
        p = entry + depth[:, None] * d
        ok = (np.abs(entry[:, 2]) < ACCEPT_U) & (np.abs(v_face) < ACCEPT_V) & inside_xenon(p)
        idx = todo[ok]
        vtx[idx], dirs[idx], conv[idx] = v[ok], d[ok], p[ok]
        todo = todo[~ok]
    return vtx, dirs, conv


def inside_xenon(xyz: np.ndarray) -> np.ndarray:
    """(..., 3) points (cm) -> (...,) bool: inside the xenon volume bounded by the sensor
    planes (inner and outer cylinders, top/bottom walls, slanted US/DS planes)."""
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    r = np.hypot(x, y)
    phi = np.degrees(np.arctan2(y, -x))
    z_wall = ENDCAP_Z0 + (ENDCAP_DZ / ENDCAP_DR) * (r - ENDCAP_R0)
    return (r >= R_INNER) & (r <= R_OUTER) & (np.abs(phi) <= HEX_WALL_PHI) & (np.abs(z) <= z_wall)


def shower_shape(energy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gamma-profile shape a and depth of the maximum t_max (X0) for energies (MeV)."""
    t_max = np.log(np.maximum(energy, E_MIN) / E_CRIT) + 0.5
    return SHOWER_B * t_max + 1.0, t_max


def perpendicular_basis(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors (..., 3) orthogonal to the unit directions d and to each other."""
    helper = np.zeros_like(d)
    helper[..., 2] = 1.0  # gamma directions are far from the z axis (|cos theta| < 0.6)
    e1 = np.cross(d, helper)
    e1 /= np.linalg.norm(e1, axis=-1, keepdims=True)
    return e1, np.cross(d, e1)


def shower_deposits(
    rng: np.random.Generator, conv: np.ndarray, dirs: np.ndarray, energy: np.ndarray, n_dep: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Energy deposits of showers starting at conv (..., 3) along dirs (..., 3).

    Returns positions (..., n_dep, 3) cm, energies (..., n_dep) MeV (0 for deposits outside
    the xenon) and path lengths along the axis from the conversion point (..., n_dep) cm.
    """
    a, t_max = shower_shape(energy)
    u = (np.arange(n_dep) + rng.random((*energy.shape, n_dep))) / n_dep  # stratified
    t = special.gammaincinv(a[..., None], u) / SHOWER_B  # (..., n_dep) in X0
    sigma = LATERAL_FRAC * MOLIERE_RADIUS * np.minimum(t / t_max[..., None], 2.0)
    g1, g2 = rng.standard_normal((2, *t.shape)) * sigma
    e1, e2 = perpendicular_basis(dirs)
    along = t * X0
    pos = (
        conv[..., None, :]
        + along[..., None] * dirs[..., None, :]
        + g1[..., None] * e1[..., None, :]
        + g2[..., None] * e2[..., None, :]
    )
    e_dep = np.where(inside_xenon(pos), energy[..., None] / n_dep, 0.0)
    return pos, e_dep, along


def emission_angles(dirs: np.ndarray) -> np.ndarray:
    """(..., 3) unit directions -> (..., 2) (theta, phi) in degrees, MEG convention, phi in
    [0, 360)."""
    theta = np.degrees(np.arccos(np.clip(dirs[..., 2], -1.0, 1.0)))
    phi = np.degrees(np.arctan2(dirs[..., 1], dirs[..., 0])) % 360.0
    return np.stack([theta, phi], -1)
