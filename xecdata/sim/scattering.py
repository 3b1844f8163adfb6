"""Secondary light sources of the toy simulator: Rayleigh-scattered light and the reflection on
the inner face (the ``rayleigh`` and ``reflection`` detector effects, ``xecdata.sim.effects``).

Both act on an event's light as a whole, through the photon-weighted light centroid of its
deposits (cm), its total photons and its mean emission time (ns): the secondary light reaches
the sensors tens of cm away, where the shape of the shower no longer matters.

- Rayleigh scattering (length L): the direct light of every deposit is attenuated by
  exp(-r / L) on its way to each sensor (``light_and_first_time(attenuation_length=L)``). The
  light taken out, the fraction 1 - sum(attenuated mu) / sum(unattenuated mu) of the event
  (measured on the sensors: the same average over directions as over the 4 pi, the sensors
  covering the walls), is re-emitted isotropically from ``N_SCATTER`` = 4 secondary points
  that share it equally: the vertices of a regular tetrahedron around the centroid (fixed in
  its local r, phi, z frame) at the mean distance of the first scattering,
  s0 = E[s | s < D] for s ~ Exp(L) and D = ``HALF_DEPTH`` (half the xenon depth, 20.6 cm):
  9.5 cm at L = 45 cm; a vertex closer than ``MARGIN`` = 3 cm to a wall is pulled back to
  s0 / 2, s0 / 4, ... (light scattered right in front of a sensor comes from a volume, not a
  point: a point source there would put a large part of it into that one sensor).
  The light is emitted at the centroid's time plus s n / c. The points are not random: some
  10^5 scattered photons leave from everywhere around the source, so the diffuse light they
  make carries no event-to-event fluctuation of its own. Single scattering: the re-emitted
  light is not attenuated again (second order in r / L; photons are conserved to first
  order; there is no absorption).
- Reflection on the inner face (reflectivity R): an image source, the centroid mirrored through
  the inner-face cylinder (r -> 2 R_INNER - r at the same phi and z, the face taken as locally
  flat), emitting R times the event's photons. The sensors of the inner face are behind the
  image's mirror plane and do not see it; every other sensor sees the reflected light with the
  right path length and delay.
"""

from __future__ import annotations

import numpy as np

from xecdata.geometry import R_INNER, R_OUTER
from xecdata.sim.kinematics import inside_xenon
from xecdata.sim.optics import C_LIGHT, N_LXE

N_SCATTER = 4
HALF_DEPTH = (R_OUTER - R_INNER) / 2  # cm
_HALVINGS = 8
MARGIN = 3.0  # cm from every wall: a point source on a sensor would light it alone


def light_centroid(
    pos: np.ndarray, photons: np.ndarray, t_emit: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Photon-weighted centroid (E, 3), total photons (E,) and mean emission time (E,) of
    deposits pos (E, D, 3), photons (E, D), t_emit (E, D) (inf where photons == 0)."""
    total = photons.sum(1)
    safe = np.where(total > 0, total, 1.0)
    centroid = (photons[..., None] * pos).sum(1) / safe[:, None]
    t_mean = (photons * np.where(photons > 0, t_emit, 0.0)).sum(1) / safe
    return centroid, total, t_mean


# regular tetrahedron, in the local (r, phi, z) frame of the centroid
_TETRAHEDRON = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3.0)


def scatter_distance(length: float) -> float:
    """Mean distance (cm) of the first scattering point of the photons that scatter before
    reaching a wall HALF_DEPTH away: E[s | s < D] for s ~ Exp(length)."""
    x = np.exp(-HALF_DEPTH / length)
    return float(length - HALF_DEPTH * x / (1.0 - x))


def rayleigh_sources(centroid: np.ndarray, length: float) -> tuple[np.ndarray, np.ndarray]:
    """Secondary emission points (E, N_SCATTER, 3) cm and their distances from the centroid
    (E, N_SCATTER) cm: the tetrahedron at ``scatter_distance`` around it, each point pulled
    halfway back (up to 8 times) until it lies MARGIN inside the xenon (else the centroid)."""
    phi = np.arctan2(centroid[:, 1], centroid[:, 0])
    e_r = np.stack([np.cos(phi), np.sin(phi), np.zeros_like(phi)], -1)
    e_phi = np.stack([-np.sin(phi), np.cos(phi), np.zeros_like(phi)], -1)
    e_z = np.broadcast_to([0.0, 0.0, 1.0], e_r.shape)
    d = np.einsum("kj,ejx->ekx", _TETRAHEDRON, np.stack([e_r, e_phi, e_z], 1))  # (E, 4, 3)
    s = np.full(d.shape[:2], scatter_distance(length))
    for _ in range(_HALVINGS):
        outside = ~_inside_with_margin(centroid[:, None] + s[..., None] * d)
        if not outside.any():
            break
        s = np.where(outside, 0.5 * s, s)
    s = np.where(_inside_with_margin(centroid[:, None] + s[..., None] * d), s, 0.0)
    return centroid[:, None] + s[..., None] * d, s


def _inside_with_margin(xyz: np.ndarray) -> np.ndarray:
    """(..., 3) points -> (...,) bool: MARGIN cm inside the xenon along every axis."""
    ok = inside_xenon(xyz)
    for step in np.eye(3) * MARGIN:
        ok &= inside_xenon(xyz + step) & inside_xenon(xyz - step)
    return ok


def scattered_light(
    centroid: np.ndarray, t_mean: np.ndarray, scattered: np.ndarray, length: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rayleigh secondary deposits: positions (E, N_SCATTER, 3), photons (E, N_SCATTER) that
    share the scattered photons (E,) equally, emission times (E, N_SCATTER) ns."""
    pos, s = rayleigh_sources(centroid, length)
    photons = np.repeat(scattered[:, None] / N_SCATTER, N_SCATTER, 1)
    t = t_mean[:, None] + s * (N_LXE / C_LIGHT)
    return pos, photons, np.where(photons > 0, t, np.inf)


def mirror_inner_face(xyz: np.ndarray) -> np.ndarray:
    """(..., 3) points (cm) mirrored through the inner-face cylinder r = R_INNER."""
    r = np.hypot(xyz[..., 0], xyz[..., 1])
    k = (2.0 * R_INNER - r) / np.maximum(r, 1e-9)
    return np.stack([xyz[..., 0] * k, xyz[..., 1] * k, xyz[..., 2]], -1)


def reflected_light(
    centroid: np.ndarray, total: np.ndarray, t_mean: np.ndarray, reflectivity: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The image deposit of the inner-face reflection: position (E, 1, 3), photons (E, 1),
    emission time (E, 1) ns."""
    photons = (reflectivity * total)[:, None]
    t = np.where(photons > 0, t_mean[:, None], np.inf)
    return mirror_inner_face(centroid)[:, None], photons, t
