"""Face images and graphs over the 4760-sensor vector: the index maps every model and plot uses.

Rectangular faces are (rows, cols) arrays of sensor ids:
- inner (93, 44): rows follow phi' (id = 44 i + j), columns follow z;
- US / DS (24, 6): rows follow phi', columns the radial index;
- outer coarse (9, 24): rows z (j), columns phi' (k); id = 4092 + 9 k + j, i.e.
  ``arange(4092, 4308).reshape(24, 9).T`` (a plain (9, 24) reshape scrambles it);
- outer centre patch (5, 6): rows z (n), columns phi' (m);
- outer fine grid (45, 72): the coarse grid split 5 (z) x 3 (phi') and the centre patch split
  3 (z) x 2 (phi'), overlaid at rows 15:30, columns 30:42. A cell carries a known fraction of
  its sensor's photons (OUTER_FINE_AREA), so counts are split and merged in physical units.
Hexagonal faces (top, bottom) are node lists of 73 PMTs with edges derived from positions.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from xecdata.geometry import (
    CENTER_EXTRA_BASE,
    CENTER_J_TO_N,
    CENTER_K_TO_M,
    CENTER_NPHI,
    CENTER_NZ,
    ENDCAP_BASE,
    ENDCAP_SHAPE,
    HEX_BASE,
    HEX_DD,
    HEX_PITCH,
    HEX_ROW_LENGTHS,
    INNER_SHAPE,
    N_SENSORS,
    OUTER_BASE,
    OUTER_NPHI,
    OUTER_NZ,
    hex_plane_coords,
    outer_cell,
)

INNER_MAP = np.arange(INNER_SHAPE[0] * INNER_SHAPE[1]).reshape(INNER_SHAPE)
US_MAP = ENDCAP_BASE["us"] + np.arange(144).reshape(ENDCAP_SHAPE)
DS_MAP = ENDCAP_BASE["ds"] + np.arange(144).reshape(ENDCAP_SHAPE)
OUTER_COARSE_MAP = (
    np.arange(OUTER_BASE, OUTER_BASE + OUTER_NPHI * OUTER_NZ).reshape(OUTER_NPHI, OUTER_NZ).T
)  # (9 z, 24 phi)

FINE_SPLIT_COARSE = (5, 3)  # (z, phi) fine cells per coarse sensor
FINE_SPLIT_CENTER = (3, 2)  # (z, phi) fine cells per centre sensor
FINE_SHAPE = (OUTER_NZ * FINE_SPLIT_COARSE[0], OUTER_NPHI * FINE_SPLIT_COARSE[1])  # (45, 72)
FINE_CENTER_ORIGIN = (
    min(CENTER_J_TO_N) * FINE_SPLIT_COARSE[0],
    min(CENTER_K_TO_M) * FINE_SPLIT_COARSE[1],
)  # (15, 30)


def _center_map() -> np.ndarray:
    """(5 z, 6 phi) ids of the outer centre patch."""
    out = np.full((CENTER_NZ, CENTER_NPHI), -1, dtype=np.int64)
    for sid in [*OUTER_COARSE_MAP.ravel(), *range(CENTER_EXTRA_BASE, N_SENSORS)]:
        kind, m, n = outer_cell(int(sid))
        if kind == "center":
            out[n, m] = sid
    return out


OUTER_CENTER_MAP = _center_map()


def _fine_maps() -> tuple[np.ndarray, np.ndarray]:
    """(45, 72) sensor id per fine cell and the fraction of that sensor's counts in it."""
    cz, cp = FINE_SPLIT_COARSE
    ids = np.repeat(np.repeat(OUTER_COARSE_MAP, cz, axis=0), cp, axis=1)
    frac = np.full(FINE_SHAPE, 1.0 / (cz * cp))
    nz, npp = FINE_SPLIT_CENTER
    r0, c0 = FINE_CENTER_ORIGIN
    h, w = CENTER_NZ * nz, CENTER_NPHI * npp
    ids[r0 : r0 + h, c0 : c0 + w] = np.repeat(np.repeat(OUTER_CENTER_MAP, nz, 0), npp, 1)
    frac[r0 : r0 + h, c0 : c0 + w] = 1.0 / (nz * npp)
    return ids, frac


OUTER_FINE_MAP, OUTER_FINE_AREA = _fine_maps()

TOP_IDS = HEX_BASE["top"] + np.arange(sum(HEX_ROW_LENGTHS))
BOTTOM_IDS = HEX_BASE["bottom"] + np.arange(sum(HEX_ROW_LENGTHS))
HEX_ROWS: tuple[np.ndarray, ...] = tuple(
    np.arange(sum(HEX_ROW_LENGTHS[:r]), sum(HEX_ROW_LENGTHS[: r + 1]))
    for r in range(len(HEX_ROW_LENGTHS))
)  # local node indices of each row

RECT_MAPS: dict[str, np.ndarray] = {
    "inner": INNER_MAP,
    "us": US_MAP,
    "ds": DS_MAP,
    "outer_coarse": OUTER_COARSE_MAP,
    "outer_center": OUTER_CENTER_MAP,
    "outer_fine": OUTER_FINE_MAP,
}
HEX_IDS: dict[str, np.ndarray] = {"top": TOP_IDS, "bottom": BOTTOM_IDS}

# Hex edge types: 0 self, then one per physical direction in the wall plane, as (d, z) where d
# is the distance from the detector axis (rows) and z runs along a row.
HEX_EDGE_DIRECTIONS: tuple[tuple[float, float], ...] = (
    (0.0, 0.0),
    (0.0, 1.0),  # 1: +z, same row
    (0.0, -1.0),  # 2: -z, same row
    (1.0, 0.5),  # 3: next row outward, +z
    (1.0, -0.5),  # 4: next row outward, -z
    (-1.0, 0.5),  # 5: previous row inward, +z
    (-1.0, -0.5),  # 6: previous row inward, -z
)
HEX_NEIGHBOR_CUT = 0.5 * (np.hypot(HEX_DD, HEX_PITCH / 2) + 2 * HEX_PITCH)  # between 1st/2nd


@cache
def hex_edges() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges of a hexagonal face from PMT positions: (src, dst, edge_type), int64 each.

    Neighbours are the PMTs closer than HEX_NEIGHBOR_CUT; an edge's type is the nearest of
    HEX_EDGE_DIRECTIONS to its direction (in units of row step and in-row pitch), so each type
    means one physical direction on both faces. Self edges (type 0) come first.
    """
    d, z = hex_plane_coords()
    n = len(d)
    dd, dz = d[None, :] - d[:, None], z[None, :] - z[:, None]  # (src, dst)
    near = (np.hypot(dd, dz) < HEX_NEIGHBOR_CUT) & ~np.eye(n, dtype=bool)
    src, dst = np.nonzero(near)
    step = np.stack([dd[src, dst] / HEX_DD, dz[src, dst] / HEX_PITCH], -1)  # (E, 2)
    ref = np.asarray(HEX_EDGE_DIRECTIONS[1:])  # (6, 2)
    etype = 1 + np.argmin(((step[:, None, :] - ref[None]) ** 2).sum(-1), axis=1)
    self_idx = np.arange(n)
    return (
        np.concatenate([self_idx, src]).astype(np.int64),
        np.concatenate([self_idx, dst]).astype(np.int64),
        np.concatenate([np.zeros(n, np.int64), etype]).astype(np.int64),
    )


@cache
def hex_neighbor_table() -> np.ndarray:
    """(73, 7) local index of the neighbour of each node per edge type, -1 where none."""
    src, dst, etype = hex_edges()
    table = np.full((sum(HEX_ROW_LENGTHS), len(HEX_EDGE_DIRECTIONS)), -1, dtype=np.int64)
    table[src, etype] = dst
    return table


def outer_fine_counts(npho: np.ndarray, pool: tuple[int, int] = (1, 1)) -> np.ndarray:
    """Photon counts of the outer fine grid, (..., 4760) -> (..., 45 / p0, 72 / p1).

    Counts are split by area fraction and sum-pooled, so the total over the grid equals the
    total over the 234 outer sensors. Input must be physical counts, not normalized values.
    """
    p0, p1 = pool
    if FINE_SHAPE[0] % p0 or FINE_SHAPE[1] % p1:
        raise ValueError(f"pool {pool} must divide the fine grid shape {FINE_SHAPE}")
    fine = np.asarray(npho)[..., OUTER_FINE_MAP] * OUTER_FINE_AREA  # (..., 45, 72)
    lead = fine.shape[:-2]
    h, w = FINE_SHAPE[0] // p0, FINE_SHAPE[1] // p1
    return fine.reshape(*lead, h, p0, w, p1).sum(axis=(-3, -1))


def face_sensor_ids() -> dict[str, np.ndarray]:
    """Sorted sensor ids of each physical face (inner, outer, us, ds, top, bottom)."""
    return {
        "inner": INNER_MAP.ravel(),
        "outer": np.unique(OUTER_FINE_MAP),
        "us": US_MAP.ravel(),
        "ds": DS_MAP.ravel(),
        "top": TOP_IDS,
        "bottom": BOTTOM_IDS,
    }
