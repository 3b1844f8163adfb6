"""MEG II LXe detector geometry: the one source of truth for the 4760 sensors.

Everything is generated from a handful of parameters (pitches, radii, angles) rather than read
from a table, so the geometry id below is a property of the code. Frame: MEG, cm, target at
the origin, LXe at x < 0, phi' = atan2(y, -x); u = z, v = phi' * R_INNER, w = R - R_INNER.

Face codes: 0 inner (MPPC), 1 outer, 2 US, 3 DS, 4 top, 5 bottom (PMTs).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

import numpy as np

N_SENSORS = 4760
FACE_NAMES: tuple[str, ...] = ("inner", "outer", "us", "ds", "top", "bottom")
FACE_CODE: dict[str, int] = {name: code for code, name in enumerate(FACE_NAMES)}
SENSOR_TYPES: tuple[str, ...] = ("MPPC", "PMT")

# ---- parameters (cm, degrees) -----------------------------------------------------------------
R_INNER = 64.97
R_OUTER = 106.27
INNER_SHAPE = (93, 44)  # (phi rows i, z columns j); id = 44 i + j
INNER_PHI0, INNER_DPHI = 62.08516, -1.349677
INNER_Z0, INNER_DZ = -32.4601, 1.5097727
MPPC_CHIP, MPPC_GAP = 0.59, 0.05  # 2 x 2 chips of 5.9 mm with a 0.5 mm gap

OUTER_BASE, OUTER_NPHI, OUTER_NZ = 4092, 24, 9  # coarse id = 4092 + 9 k + j
OUTER_PHI0, OUTER_DPHI = 60.145, -5.23
OUTER_Z0, OUTER_DZ = -41.424, 10.356
CENTER_NPHI, CENTER_NZ = 6, 5  # centre patch: m (phi) 0..5, n (z) 0..4
CENTER_PHI0, CENTER_DPHI = 8.717, -3.487
CENTER_Z0, CENTER_DZ = -12.4, 6.2
CENTER_K_TO_M = {10: 0, 11: 2, 12: 3, 13: 5}
CENTER_J_TO_N = {3: 0, 4: 2, 5: 4}
CENTER_EXTRA_BASE = 4742  # ids 4742-4759 fill the remaining 18 centre cells

ENDCAP_BASE = {"us": 4308, "ds": 4452}  # id = base + 6 k + j
ENDCAP_SHAPE = (24, 6)
ENDCAP_R0, ENDCAP_DR = 69.53, 6.684
ENDCAP_Z0, ENDCAP_DZ = 35.155, 2.3368
ENDCAP_NORMAL_Z, ENDCAP_NORMAL_R = 0.944, 0.330

HEX_BASE = {"top": 4596, "bottom": 4669}
HEX_ROW_LENGTHS = (11, 12, 11, 12, 13, 14)
HEX_WALL_PHI = 62.76  # top at +phi', bottom at -phi'
HEX_D0, HEX_DD = 68.27, 6.91  # in-plane distance of row r from the axis
HEX_PITCH = 6.12  # z pitch within a row
PMT_RADIUS = 2.25  # photocathode disc radius

FIDUCIAL_U, FIDUCIAL_V, FIDUCIAL_W = 23.9, 67.9, 42.0


@dataclass(frozen=True)
class SensorTable:
    """All sensors, indexed by sensor id (0..4759).

    pos, normal, axis_a, axis_b: (4760, 3) float64; normal points into the xenon, axis_a and
    axis_b span the sensitive plane (axis_a along z for inner/outer, along r for US/DS).
    face: (4760,) face code; is_pmt: (4760,) bool; half_a, half_b: half extents (cm) of the
    sensitive rectangle for MPPCs; radius: disc radius for PMTs (0 for MPPCs); area (cm2).
    """

    pos: np.ndarray
    normal: np.ndarray
    axis_a: np.ndarray
    axis_b: np.ndarray
    face: np.ndarray
    is_pmt: np.ndarray
    half_a: np.ndarray
    half_b: np.ndarray
    radius: np.ndarray
    area: np.ndarray

    @property
    def sensor_type(self) -> np.ndarray:
        """(4760,) array of 'MPPC' / 'PMT'."""
        return np.where(self.is_pmt, SENSOR_TYPES[1], SENSOR_TYPES[0])


def _cyl(r: np.ndarray | float, phi_deg: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Points on a cylinder at radius r, angle phi' (deg) and height z -> (N, 3)."""
    phi = np.deg2rad(phi_deg)
    r = np.broadcast_to(r, phi.shape)
    return np.stack([-r * np.cos(phi), r * np.sin(phi), np.broadcast_to(z, phi.shape)], -1)


def _radial(phi_deg: np.ndarray) -> np.ndarray:
    """Unit vectors of increasing radius at angle phi' -> (N, 3)."""
    phi = np.deg2rad(phi_deg)
    return np.stack([-np.cos(phi), np.sin(phi), np.zeros_like(phi)], -1)


def _azimuthal(phi_deg: np.ndarray) -> np.ndarray:
    """Unit vectors of increasing phi' -> (N, 3)."""
    phi = np.deg2rad(phi_deg)
    return np.stack([np.sin(phi), np.cos(phi), np.zeros_like(phi)], -1)


def outer_cell(sensor_id: int) -> tuple[str, int, int]:
    """Where an outer sensor sits: ('coarse', k, j) or ('center', m, n)."""
    if CENTER_EXTRA_BASE <= sensor_id < N_SENSORS:
        return ("center", *_center_extra_cells()[sensor_id - CENTER_EXTRA_BASE])
    k, j = divmod(sensor_id - OUTER_BASE, OUTER_NZ)
    if not (0 <= k < OUTER_NPHI):
        raise ValueError(f"sensor {sensor_id} is not on the outer face")
    if k in CENTER_K_TO_M and j in CENTER_J_TO_N:
        return ("center", CENTER_K_TO_M[k], CENTER_J_TO_N[j])
    return ("coarse", k, j)


@cache
def _center_extra_cells() -> tuple[tuple[int, int], ...]:
    """(m, n) cells of ids 4742.. in row-major order (m outer, n inner)."""
    taken = {(m, n) for m in CENTER_K_TO_M.values() for n in CENTER_J_TO_N.values()}
    cells = [(m, n) for m in range(CENTER_NPHI) for n in range(CENTER_NZ) if (m, n) not in taken]
    return tuple(cells)


def _fill_inner(t: dict[str, np.ndarray]) -> None:
    i, j = np.divmod(np.arange(4092), INNER_SHAPE[1])
    phi = INNER_PHI0 + INNER_DPHI * i
    ids = np.arange(4092)
    t["pos"][ids] = _cyl(R_INNER, phi, INNER_Z0 + INNER_DZ * j)
    t["normal"][ids] = _radial(phi)
    t["axis_a"][ids] = (0.0, 0.0, 1.0)
    t["axis_b"][ids] = _azimuthal(phi)
    t["face"][ids] = FACE_CODE["inner"]


def _fill_outer(t: dict[str, np.ndarray]) -> None:
    n_coarse = OUTER_NPHI * OUTER_NZ
    ids = np.concatenate(
        [np.arange(OUTER_BASE, OUTER_BASE + n_coarse), np.arange(CENTER_EXTRA_BASE, N_SENSORS)]
    )
    phi, z = np.empty(len(ids)), np.empty(len(ids))
    for n_, sid in enumerate(ids):
        kind, a, b = outer_cell(int(sid))
        if kind == "coarse":
            phi[n_], z[n_] = OUTER_PHI0 + OUTER_DPHI * a, OUTER_Z0 + OUTER_DZ * b
        else:
            phi[n_], z[n_] = CENTER_PHI0 + CENTER_DPHI * a, CENTER_Z0 + CENTER_DZ * b
    t["pos"][ids] = _cyl(R_OUTER, phi, z)
    t["normal"][ids] = -_radial(phi)
    t["axis_a"][ids] = (0.0, 0.0, 1.0)
    t["axis_b"][ids] = _azimuthal(phi)
    t["face"][ids] = FACE_CODE["outer"]


def _fill_endcaps(t: dict[str, np.ndarray]) -> None:
    k, j = np.divmod(np.arange(144), ENDCAP_SHAPE[1])
    phi = OUTER_PHI0 + OUTER_DPHI * k
    for name, sign in (("us", -1.0), ("ds", 1.0)):
        ids = ENDCAP_BASE[name] + np.arange(144)
        z = sign * (ENDCAP_Z0 + ENDCAP_DZ * j)
        t["pos"][ids] = _cyl(ENDCAP_R0 + ENDCAP_DR * j, phi, z)
        nz = -sign * ENDCAP_NORMAL_Z
        t["normal"][ids] = _radial(phi) * ENDCAP_NORMAL_R + np.array([0.0, 0.0, nz])
        t["normal"][ids] /= np.linalg.norm(t["normal"][ids], axis=1, keepdims=True)
        t["axis_a"][ids] = np.cross(_azimuthal(phi), t["normal"][ids])
        t["axis_b"][ids] = _azimuthal(phi)
        t["face"][ids] = FACE_CODE[name]


def hex_row_col() -> tuple[np.ndarray, np.ndarray]:
    """Row r and column c of the 73 PMTs of one hexagonal face, in id order."""
    rows = np.concatenate([np.full(n, r) for r, n in enumerate(HEX_ROW_LENGTHS)])
    cols = np.concatenate([np.arange(n) for n in HEX_ROW_LENGTHS])
    return rows, cols


def hex_plane_coords() -> tuple[np.ndarray, np.ndarray]:
    """In-plane (distance from the axis d, z) of the 73 PMTs of one hexagonal face (cm)."""
    rows, cols = hex_row_col()
    lengths = np.asarray(HEX_ROW_LENGTHS)[rows]
    return HEX_D0 + HEX_DD * rows, (cols - (lengths - 1) / 2) * HEX_PITCH


def _fill_hex(t: dict[str, np.ndarray]) -> None:
    d, z = hex_plane_coords()
    for name, sign in (("top", 1.0), ("bottom", -1.0)):
        ids = HEX_BASE[name] + np.arange(len(d))
        phi = np.full(len(d), sign * HEX_WALL_PHI)
        t["pos"][ids] = _cyl(d, phi, z)
        t["normal"][ids] = -sign * _azimuthal(phi)  # towards the xenon (smaller |phi'|)
        t["axis_a"][ids] = (0.0, 0.0, 1.0)
        t["axis_b"][ids] = _radial(phi)
        t["face"][ids] = FACE_CODE[name]


@cache
def sensor_table() -> SensorTable:
    """Build the sensor table from the parameters above (cached, read-only arrays)."""
    t: dict[str, np.ndarray] = {
        k: np.zeros((N_SENSORS, 3)) for k in ("pos", "normal", "axis_a", "axis_b")
    }
    t["face"] = np.full(N_SENSORS, -1, dtype=np.int8)
    _fill_inner(t)
    _fill_outer(t)
    _fill_endcaps(t)
    _fill_hex(t)
    if (t["face"] < 0).any():
        raise AssertionError("geometry parameters leave sensors unassigned")
    is_pmt = t["face"] != FACE_CODE["inner"]
    half = np.where(is_pmt, 0.0, MPPC_CHIP + MPPC_GAP / 2)
    radius = np.where(is_pmt, PMT_RADIUS, 0.0)
    area = np.where(is_pmt, np.pi * PMT_RADIUS**2, 4 * MPPC_CHIP**2)
    arrays = dict(t, is_pmt=is_pmt, half_a=half, half_b=half.copy(), radius=radius, area=area)
    for a in arrays.values():
        a.setflags(write=False)
    return SensorTable(**arrays)


@cache
def geometry_id() -> str:
    """Content hash of the sensor table (positions and normals to 1 um, faces, types)."""
    t = sensor_table()
    h = hashlib.sha256()
    for arr in (np.round(t.pos * 1e4).astype(np.int64), np.round(t.normal * 1e6).astype(np.int64)):
        h.update(arr.tobytes())
    h.update(t.face.astype(np.int8).tobytes())
    h.update(t.is_pmt.astype(np.int8).tobytes())
    return "xecgeo-" + h.hexdigest()[:16]


# ---- coordinates ----------------------------------------------------------------------------
def xyz_to_uvw(xyz: np.ndarray) -> np.ndarray:
    """(..., 3) MEG x, y, z (cm) -> (..., 3) u, v, w (cm)."""
    xyz = np.asarray(xyz, dtype=np.float64)
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    phi = np.arctan2(y, -x)
    return np.stack([z, phi * R_INNER, np.hypot(x, y) - R_INNER], -1)


def uvw_to_xyz(uvw: np.ndarray) -> np.ndarray:
    """(..., 3) u, v, w (cm) -> (..., 3) MEG x, y, z (cm)."""
    uvw = np.asarray(uvw, dtype=np.float64)
    u, v, w = uvw[..., 0], uvw[..., 1], uvw[..., 2]
    phi, r = v / R_INNER, w + R_INNER
    return np.stack([-r * np.cos(phi), r * np.sin(phi), u], -1)


def in_fiducial(uvw: np.ndarray) -> np.ndarray:
    """(..., 3) u, v, w -> (...,) bool: inside |u| < 23.9, |v| < 67.9, 0 < w < 42 cm."""
    uvw = np.asarray(uvw)
    u, v, w = uvw[..., 0], uvw[..., 1], uvw[..., 2]
    return (np.abs(u) < FIDUCIAL_U) & (np.abs(v) < FIDUCIAL_V) & (w > 0) & (w < FIDUCIAL_W)


def sensor_table_rows() -> list[dict[str, object]]:
    """The sensor table as records: id, face, type, x, y, z, nx, ny, nz (for CSV/JSON)."""
    t = sensor_table()
    rows = []
    for i in range(N_SENSORS):
        p, n = t.pos[i], t.normal[i]
        rows.append(
            {
                "id": i,
                "face": FACE_NAMES[t.face[i]],
                "type": "PMT" if t.is_pmt[i] else "MPPC",
                "x": round(float(p[0]), 5),
                "y": round(float(p[1]), 5),
                "z": round(float(p[2]), 5),
                "nx": round(float(n[0]), 6),
                "ny": round(float(n[1]), 6),
                "nz": round(float(n[2]), 6),
            }
        )
    return rows
