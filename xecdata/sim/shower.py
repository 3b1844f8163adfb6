"""Fluctuating electromagnetic showers (the ``shower`` detector effect): GFlash spots merged
into the simulator's light deposits.

Parameters and their sources (G. Grindhammer and S. Peters, "The parameterized simulation of
electromagnetic showers in homogeneous and sampling calorimeters", hep-ex/0001020; the same
numbers are the homogeneous-medium tuning of Geant4's GFlash):

- Number of spots of a shower: N = ``SPOT_N1`` ln(Z) (E / GeV)^``SPOT_N2`` with SPOT_N1 = 93,
  SPOT_N2 = 0.876, Z = 54: 28 spots at 52.8 MeV, 9 at 15 MeV, times ``spot_scale`` (the
  simulator's default is 4, tuned: ``xecdata.sim.effects``). Each spot carries E / N; the
  sampling of the spots is what makes one shower differ from the next (depth of the light
  centroid, lateral shape, leakage).
- Depth of each spot: drawn independently from the longitudinal profile the toy shower uses
  (``xecdata.sim.kinematics.shower_shape``: gamma profile of the PDG review).
- Radius: f(r) = p 2 r Rc^2 / (r^2 + Rc^2)^2 + (1 - p) 2 r Rt^2 / (r^2 + Rt^2)^2 in Moliere
  radii, tau = t / t_max, with Rc = z1 + z2 tau, z1 = 0.0251 + 0.00319 ln(E/GeV),
  z2 = 0.1162 - 0.000381 Z; Rt = k1 (exp(k3 (tau - k2)) + exp(k4 (tau - k2))), k1 = 0.659 -
  0.00309 Z, k2 = 0.645, k3 = -2.59, k4 = 0.3585 + 0.0412 ln(E/GeV); p = p1 exp((p2 - tau) /
  p3 - exp((p2 - tau) / p3)), p1 = 2.632 - 0.00094 Z, p2 = 0.401 + 0.00187 Z,
  p3 = 1.313 - 0.0686 ln(E/GeV) (clipped to [0, 1]). About 90 % of the energy lies within one
  Moliere radius and 99 % within 3.5, as the PDG review states. The radius is drawn by
  inverting the cumulative distribution, r = R sqrt(u / (1 - u)), u capped at 0.9999.
- Leakage: spots outside the xenon (``inside_xenon``) are lost, spot by spot.
- The N spots, sorted by depth, are merged into ``n_deposits`` consecutive groups, each one
  light deposit at the group's energy-weighted centroid; the light kernel's cost stays that of
  ``n_deposits`` deposits while the energy flow keeps the spot fluctuations.
GFlash's fluctuations of the longitudinal parameters themselves are not used: their fit
diverges below E / E_c ~ 3 (52.8 MeV is E / E_c = 4.8).
"""

from __future__ import annotations

import numpy as np

from xecdata.sim.kinematics import (
    MOLIERE_RADIUS,
    SHOWER_B,
    X0,
    inside_xenon,
    perpendicular_basis,
    shower_shape,
)

Z_XE = 54
SPOT_N1, SPOT_N2 = 93.0, 0.876
_U_MAX = 0.9999  # radius quantile cap: r <= 100 R


def spot_count(energy: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """GFlash number of spots (int, >= 1) of showers of these energies (MeV), times scale."""
    n = scale * SPOT_N1 * np.log(Z_XE) * (np.asarray(energy) * 1e-3) ** SPOT_N2
    return np.maximum(np.rint(n), 1).astype(np.int64)


def radial_parameters(energy: np.ndarray, tau: np.ndarray) -> tuple[np.ndarray, ...]:
    """GFlash core radius, tail radius (Moliere radii) and core weight at depth tau = t/t_max;
    energy (MeV) broadcasts against tau."""
    ln_e = np.log(np.asarray(energy) * 1e-3)
    r_core = (0.0251 + 0.00319 * ln_e) + (0.1162 - 0.000381 * Z_XE) * tau
    k4 = 0.3585 + 0.0412 * ln_e
    r_tail = (0.659 - 0.00309 * Z_XE) * (np.exp(-2.59 * (tau - 0.645)) + np.exp(k4 * (tau - 0.645)))
    x = (0.401 + 0.00187 * Z_XE - tau) / (1.313 - 0.0686 * ln_e)
    p_core = np.clip((2.632 - 0.00094 * Z_XE) * np.exp(x - np.exp(x)), 0.0, 1.0)
    return r_core, r_tail, p_core


def _spots(
    rng: np.random.Generator, energy: np.ndarray, n_max: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Depth t (X0), radius (cm) and azimuth of n_max spot slots per shower (..., n_max)."""
    a, t_max = shower_shape(energy)
    shape = (*energy.shape, n_max)
    t = rng.gamma(np.broadcast_to(a[..., None], shape), 1.0 / SHOWER_B)
    r_core, r_tail, p_core = radial_parameters(energy[..., None], t / t_max[..., None])
    u = np.minimum(rng.random(shape), _U_MAX)
    scale = np.where(rng.random(shape) < p_core, r_core, r_tail) * MOLIERE_RADIUS
    radius = scale * np.sqrt(u / (1.0 - u))
    return t, radius, rng.uniform(0.0, 2 * np.pi, shape)


def gflash_deposits(
    rng: np.random.Generator,
    conv: np.ndarray,
    dirs: np.ndarray,
    energy: np.ndarray,
    n_dep: int,
    spot_scale: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fluctuating showers from conv (..., 3) along dirs (..., 3) with energies (...,) MeV,
    made of spot_scale times GFlash's number of spots.

    Returns deposit positions (..., n_dep, 3) cm, energies (..., n_dep) MeV (leaked spots
    removed) and path lengths along the axis (..., n_dep) cm, like ``shower_deposits``.
    """
    n_spot = spot_count(energy, spot_scale)  # (...,)
    n_max = int(n_spot.max(initial=1))
    t, radius, phi = _spots(rng, energy, n_max)
    slot = np.arange(n_max)
    used = slot < n_spot[..., None]
    t = np.where(used, t, np.inf)  # unused slots sort last
    order = np.argsort(t, axis=-1)
    t, radius, phi = (np.take_along_axis(x, order, -1) for x in (t, radius, phi))
    e1, e2 = perpendicular_basis(dirs)
    along = np.where(used, t, 0.0) * X0
    lateral = radius * np.cos(phi), radius * np.sin(phi)
    pos = (
        conv[..., None, :]
        + along[..., None] * dirs[..., None, :]
        + lateral[0][..., None] * e1[..., None, :]
        + lateral[1][..., None] * e2[..., None, :]
    )
    e_spot = np.where(used & inside_xenon(pos), (energy / n_spot)[..., None], 0.0)
    group = np.minimum(slot * n_dep // np.maximum(n_spot[..., None], 1), n_dep - 1)
    return _merge(pos, e_spot, along, group, n_dep)


def _merge(
    pos: np.ndarray, e_spot: np.ndarray, along: np.ndarray, group: np.ndarray, n_dep: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Energy-weighted centroids of the spot groups (..., n_spot) -> (..., n_dep)."""
    lead = e_spot.shape[:-1]
    n_showers = int(np.prod(lead))
    flat = (np.arange(n_showers)[:, None] * n_dep + group.reshape(n_showers, -1)).ravel()
    w = e_spot.reshape(-1)
    size = n_showers * n_dep
    e_dep = np.bincount(flat, w, size)
    safe = np.where(e_dep > 0, e_dep, 1.0)
    coords = (*np.moveaxis(pos, -1, 0), along)
    mean = [np.bincount(flat, w * x.reshape(-1), size) / safe for x in coords]
    out_pos = np.stack(mean[:3], -1).reshape(*lead, n_dep, 3)
    return out_pos, e_dep.reshape(*lead, n_dep), mean[3].reshape(*lead, n_dep)
