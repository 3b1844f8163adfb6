"""Scintillation light from shower deposits to the sensors: expected photoelectrons and the
arrival time of the first light, vectorized over events x deposits x sensors.

Parameters and their sources:
- ``LIGHT_YIELD`` = 40,000 photons/MeV: LXe emits ~40-50k photons/MeV (W_ph ~ 20 eV,
  DESIGN.md "Physics facts"); the lower end is taken as the effective yield of electromagnetic
  showers (recombination and quenching losses). Emission is isotropic from each deposit.
- Detection efficiency (photon -> photoelectron): ``EFFICIENCY_MPPC`` = 0.12 (VUV SiPMs of the
  inner face) and ``EFFICIENCY_PMT`` = 0.16 (DESIGN.md).
- Expected photoelectrons of sensor s: sum over deposits d of
  photons_d * Omega_ds / (4 pi) * efficiency_s, with Omega_ds the solid angle of the sensitive
  area (``xecdata.sim.solid_angle``), times exp(-r_ds / L) with the ``rayleigh`` effect
  (Rayleigh length L; the scattered light and the reflections are secondary sources, see
  ``xecdata.sim.scattering``). No absorption (longer than 100 cm in the MEG prototype,
  ``xecdata.sim.effects``) and no shadowing.
- Solid angle in three regimes by sensor-deposit distance r: the point-source value
  A h / r^3 beyond ``FAR_MPPC`` = 8 cm / ``FAR_PMT`` = 25 cm (error < 1 %); the second-order
  multipole expansion A h / r^3 (1 + s2 (4.5 r^2 - 7.5 h^2) / r^4) (s2 = the sensitive area's
  second moment per in-plane axis) between ``EXACT_MPPC`` = 3 cm / ``EXACT_PMT`` = 8 cm and the
  far radius (error < 1 %); the exact formulas closer in. All three are tested against
  brute-force numerical integration.
- First light: the earliest deposit time plus the optical path r * n / c (n = ``N_LXE`` =
  1.61, c = ``C_LIGHT`` = 29.979 cm/ns, DESIGN.md) over the deposits the sensor faces.

The dense part is two small matrix products per block of deposits (squared distance and
height above each sensor plane in float32, positions taken relative to ``REF_POINT`` to limit
cancellation), followed by a handful of elementwise passes; the few sensor-deposit pairs
closer than the far radius are recomputed in float64 and corrected afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from threadpoolctl import ThreadpoolController

from xecdata.geometry import MPPC_CHIP, MPPC_GAP, N_SENSORS, PMT_RADIUS, sensor_table
from xecdata.sim.solid_angle import exact_solid_angle

LIGHT_YIELD = 40_000.0  # photons / MeV
EFFICIENCY_MPPC = 0.12
EFFICIENCY_PMT = 0.16
N_LXE = 1.61
C_LIGHT = 29.979  # cm / ns
FAR_MPPC, FAR_PMT = 8.0, 25.0  # cm: point approximation beyond
EXACT_MPPC, EXACT_PMT = 3.0, 8.0  # cm: exact formulas below, multipole in between
REF_POINT = np.array([-80.0, 0.0, 0.0])  # cm, near the middle of the xenon
_CHUNK_ROWS = 64  # deposits per dense pass: (64, 4760) float32 = 1.2 MB, stays in cache
_BEHIND = np.float32(1e9)  # ns per cm behind a sensor plane: removes the deposit from the min
NO_LIGHT_NS = 1e3  # first light later than 1 us (it arrives within ~10 ns): no direct light

# second moment <x^2> of the sensitive area along one in-plane axis (cm^2)
_S2_MPPC = ((MPPC_GAP / 2 + MPPC_CHIP) ** 3 - (MPPC_GAP / 2) ** 3) / (3 * MPPC_CHIP)
_S2_PMT = PMT_RADIUS**2 / 4


@cache
def _blas() -> ThreadpoolController:
    """Controller of the BLAS thread pools. The products here are small (64 x 5 x 4760): a
    multi-threaded BLAS spends more on waking threads than on the work (measured 10x slower on
    2 busy cores), so the kernel runs them single-threaded; parallelism belongs to processes."""
    return ThreadpoolController()


@dataclass(frozen=True)
class SensorOptics:
    """Per-sensor constants of the light kernel (S = 4760)."""

    pos: np.ndarray  # (S, 3) float64, relative to REF_POINT
    normal: np.ndarray  # (S, 3) float64
    mat_r2: np.ndarray  # (5, S) float32: [x, y, z, 1, |p|^2] @ mat_r2 = squared distance
    mat_h: np.ndarray  # (4, S) float32: [x, y, z, 1] @ mat_h = height above the sensor plane
    far2: np.ndarray  # (S,) float32 squared far radius
    exact: np.ndarray  # (S,) float64 exact-formula radius
    s2: np.ndarray  # (S,) float64 second moment per axis
    efficiency: np.ndarray  # (S,) float32
    scale: np.ndarray  # (S,) float32 = efficiency * area / (4 pi)


@cache
def sensor_optics() -> SensorOptics:
    """Build (once) the per-sensor constants from the geometry."""
    t = sensor_table()
    pos = t.pos - REF_POINT
    mat_r2 = np.concatenate([-2.0 * pos.T, (pos**2).sum(1)[None], np.ones((1, N_SENSORS))])
    mat_h = np.concatenate([t.normal.T, -(pos * t.normal).sum(1)[None]])
    eff = np.where(t.is_pmt, EFFICIENCY_PMT, EFFICIENCY_MPPC)
    return SensorOptics(
        pos=pos,
        normal=np.array(t.normal),
        mat_r2=mat_r2.astype(np.float32),
        mat_h=mat_h.astype(np.float32),
        far2=np.where(t.is_pmt, FAR_PMT**2, FAR_MPPC**2).astype(np.float32),
        exact=np.where(t.is_pmt, EXACT_PMT, EXACT_MPPC),
        s2=np.where(t.is_pmt, _S2_PMT, _S2_MPPC),
        efficiency=eff.astype(np.float32),
        scale=(eff * t.area / (4 * np.pi)).astype(np.float32),
    )


def near_geometric_factor(points: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Omega / A (cm^-2) and squared distance for pairs closer than the far radius.

    points (N, 3) cm in the MEG frame, ids (N,) sensor ids. Multipole expansion beyond the
    exact radius, exact formulas within; 0 behind the sensor plane.
    """
    opt = sensor_optics()
    d = points - REF_POINT - opt.pos[ids]
    r2 = np.einsum("nk,nk->n", d, d)
    h = np.einsum("nk,nk->n", d, opt.normal[ids])
    s2 = opt.s2[ids]
    g = np.maximum(h, 0.0) / (r2 * np.sqrt(r2)) * (1.0 + s2 * (4.5 * r2 - 7.5 * h * h) / r2**2)
    close = r2 < opt.exact[ids] ** 2
    if close.any():
        area = sensor_table().area[ids[close]]
        g[close] = exact_solid_angle(points[close], ids[close]) / area
    return g, r2


def _dense_chunk(
    rows: np.ndarray,
    photons: np.ndarray,
    t_emit: np.ndarray,
    work: np.ndarray,
    out: tuple[np.ndarray, ...],
    att_ref: tuple[np.ndarray, np.ndarray, float] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One slice of E events with D deposits each, written into out = (light,),
    (light, t_first) or (light, t_first, light_unattenuated).

    rows (E*D, 5) float32 [x, y, z, 1, |p|^2] relative to REF_POINT, photons (E, D),
    t_emit (E, D) ns, work (4, >= E*D, S) float32 scratch. Writes light (E, S) = sum of
    photons * Omega / A in the point approximation (attenuated when att_ref, the centroid
    terms of ``_attenuate``, is given) and t_first (E, S) ns; returns the pairs closer than
    the far radius (row, sensor, point-approximation Omega / A) for correction.
    """
    opt = sensor_optics()
    n_ev, n_dep = photons.shape
    r2, h, r, w = (buf[: len(rows)] for buf in work)  # each (E*D, S)
    np.matmul(rows, opt.mat_r2, out=r2)
    np.matmul(rows[:, :4], opt.mat_h, out=h)
    near = np.flatnonzero(r2 < opt.far2)
    row_i, sens = np.divmod(near, N_SENSORS)
    keep = photons.reshape(-1)[row_i] > 0
    near, row_i, sens = near[keep], row_i[keep], sens[keep]
    flat_r2 = r2.reshape(-1)
    flat_r2[near] = np.maximum(flat_r2[near], 1e-6)  # float32 cancellation near a sensor
    np.sqrt(r2, out=r)
    np.multiply(r2, r, out=r2)  # r^3
    np.maximum(h, np.float32(0.0), out=w)
    np.divide(w, r2, out=w)  # Omega / A in the point approximation
    if att_ref is None:
        _photon_sum(photons, w, out[0])
    else:
        _attenuate(photons, w, r, r2, att_ref, out[0], out[2])
    if len(out) > 1:
        np.multiply(r, np.float32(N_LXE / C_LIGHT), out=r)
        np.add(r, t_emit.reshape(-1, 1), out=r)  # arrival time of each deposit's light
        np.multiply(h, -_BEHIND, out=r2)
        np.maximum(r, r2, out=r)  # deposits behind the sensor plane do not count
        np.min(r.reshape(n_ev, n_dep, N_SENSORS), axis=1, out=out[1])
    return row_i, sens, w.reshape(-1)[near]


def _photon_sum(photons: np.ndarray, w: np.ndarray, out: np.ndarray) -> None:
    """out (E, S) <- sum over deposits of photons (E, D) * w (E*D, S)."""
    n_ev, n_dep = photons.shape
    np.matmul(photons[:, None, :], w.reshape(n_ev, n_dep, N_SENSORS), out=out[:, None, :])


def _attenuate(
    photons: np.ndarray,
    w: np.ndarray,
    r: np.ndarray,
    tmp: np.ndarray,
    att_ref: tuple[np.ndarray, np.ndarray, float],
    light: np.ndarray,
    raw: np.ndarray,
) -> None:
    """light <- sum_d photons w exp(-r / L), raw <- sum_d photons w, both (E, S).

    With r_c the distance of the event's light centroid to the sensor and d = (r - r_c) / L
    (a few cm over L), exp(-r / L) = exp(-r_c / L) exp(-d) ~ exp(-r_c / L) (1 - d + d^2 / 2):
    relative error d^3 / 6 < 0.3 % within 10 cm of the centroid at L = 45 cm. The sum then
    needs only the moments M_k = sum_d photons w r^k, k = 0, 1, 2: two products per pair
    instead of an exponential (which numpy evaluates element by element here, ~15x dearer).
    att_ref = (exp(-r_c / L), r_c, L) with (E, S) arrays.
    """
    a_c, r_c, length = att_ref
    m = [raw, np.empty_like(raw), np.empty_like(raw)]
    _photon_sum(photons, w, m[0])
    np.multiply(w, r, out=tmp)
    _photon_sum(photons, tmp, m[1])
    np.multiply(tmp, r, out=tmp)
    _photon_sum(photons, tmp, m[2])
    inv = np.float32(1.0 / length)
    x = r_c * inv
    c0 = 1.0 + x * (1.0 + 0.5 * x)
    c1 = inv * (1.0 + x)
    np.multiply(a_c, m[0] * c0 - m[1] * c1 + m[2] * (0.5 * inv * inv), out=light)


def _centroid_attenuation(
    pos: np.ndarray, photons: np.ndarray, length: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """(exp(-r_c / L), r_c, L), (E, S) float32 arrays, for the distance r_c of each sensor to
    the photon-weighted centroid of the event's deposits pos (E, D, 3), photons (E, D)."""
    total = np.maximum(photons.sum(1), 1e-30)
    rel = (photons[..., None] * pos).sum(1) / total[:, None] - REF_POINT  # (E, 3)
    rows = np.concatenate([rel, np.ones((len(rel), 1)), (rel**2).sum(1, keepdims=True)], 1)
    r_c = np.sqrt(np.maximum(rows.astype(np.float32) @ sensor_optics().mat_r2, 0.0))
    return np.exp(-r_c * np.float32(1.0 / length)), r_c, length


def light_and_first_time(
    pos: np.ndarray,
    photons: np.ndarray,
    t_emit: np.ndarray,
    attenuation_length: float | None = None,
    with_time: bool = True,
) -> tuple[np.ndarray, ...]:
    """Expected photoelectrons and first-light time per sensor.

    pos (E, D, 3) deposit positions (cm), photons (E, D) emitted photons (0 for absent or
    dropped deposits), t_emit (E, D) emission times (ns; +inf where photons == 0).
    Returns mu (E, S) float32 photoelectrons and t_first (E, S) float32 ns (+inf where the
    sensor faces away from every deposit: such sensors get no direct light, hence no time,
    even when scattered or reflected light reaches them).
    With an attenuation_length (cm), mu is attenuated by exp(-r / length) along each path and
    a third array, the unattenuated mu (E, S), is returned as well. Without with_time, only
    mu is computed and returned (a 1-tuple): the cheaper kernel of diffuse secondary light.
    """
    n_ev, n_dep = photons.shape
    # deposits without light (absent, outside the xenon) sit at REF_POINT, > 14 cm from every
    # sensor, so that no 0 * NaN from a deposit on top of a sensor reaches the sums
    pos = np.where(photons[..., None] > 0, pos, REF_POINT)
    inv = 1.0 / attenuation_length if attenuation_length else 0.0
    n_out = 3 if inv else 2 if with_time else 1
    outs = tuple(np.empty((n_ev, N_SENSORS), np.float32) for _ in range(n_out))
    with _blas().limit(limits=1, user_api="blas"):
        ref = _centroid_attenuation(pos, photons, 1.0 / inv) if inv else None
        row_i, sens, g_point = _all_chunks(pos, photons, t_emit, outs, ref)
    g_true, r2 = near_geometric_factor(pos.reshape(-1, 3)[row_i], sens)
    delta = photons.reshape(-1)[row_i] * (g_true - g_point)
    idx = (row_i // n_dep, sens)
    if inv:
        np.add.at(outs[2], idx, delta.astype(np.float32))
        delta = delta * np.exp(-np.sqrt(r2) * inv)
    np.add.at(outs[0], idx, delta.astype(np.float32))
    for o in outs[::2]:
        o *= sensor_optics().scale
    if with_time:  # a sensor behind every deposit's plane: no direct light, no first time
        np.copyto(outs[1], np.float32(np.inf), where=outs[1] > NO_LIGHT_NS)
    return outs


def _all_chunks(
    pos: np.ndarray,
    photons: np.ndarray,
    t_emit: np.ndarray,
    outs: tuple[np.ndarray, ...],
    ref: tuple[np.ndarray, np.ndarray, float] | None,
) -> tuple[np.ndarray, ...]:
    """Run the dense kernel over slices of events; returns the close pairs (row, sensor,
    point-approximation Omega / A) of all slices."""
    n_ev, n_dep = photons.shape
    rel = (pos - REF_POINT).reshape(-1, 3)
    rows = np.concatenate([rel, np.ones((len(rel), 1)), (rel**2).sum(1, keepdims=True)], 1)
    rows = rows.astype(np.float32)
    photons32, t32 = photons.astype(np.float32), t_emit.astype(np.float32)
    step = max(1, _CHUNK_ROWS // n_dep)
    work = np.empty((4, step * n_dep, N_SENSORS), np.float32)  # reused: no allocation per slice
    near_parts = []
    for e0 in range(0, n_ev, step):
        sl = slice(e0, min(e0 + step, n_ev))
        att = None if ref is None else (ref[0][sl], ref[1][sl], ref[2])
        row_i, sens, g = _dense_chunk(
            rows[sl.start * n_dep : sl.stop * n_dep], photons32[sl], t32[sl], work,
            tuple(o[sl] for o in outs), att,
        )  # fmt: skip
        near_parts.append((row_i + e0 * n_dep, sens, g))
    return tuple(np.concatenate(p) for p in zip(*near_parts, strict=True))
