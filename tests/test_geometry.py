"""Detector geometry: reference tables, face maps, hexagonal graphs, coordinates, CLI."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from click.testing import CliRunner

from xec_cli.main import main
from xecdata import facemaps as fm
from xecdata import geometry as geo


@pytest.mark.requiresdata
def test_positions_and_normals_match_reference_tables(geometry_tables):
    nominal = np.loadtxt(geometry_tables / "sensor_positions.txt")
    built = np.loadtxt(geometry_tables / "sensor_directions.txt")
    t = geo.sensor_table()
    assert np.array_equal(nominal[:, 0], np.arange(geo.N_SENSORS))
    dist = np.linalg.norm(t.pos - nominal[:, 1:4], axis=1)
    assert dist.max() < 0.01  # 0.1 mm
    assert np.array_equal(built[:, 7].astype(int), t.face)
    dn = np.abs(t.normal - built[:, 1:4]).max(axis=1)
    inner = t.face == geo.FACE_CODE["inner"]
    assert dn[~inner].max() < 1e-3
    assert dn[inner].max() < 0.02


def test_sensor_table_basics():
    t = geo.sensor_table()
    assert t.pos.shape == (4760, 3)
    np.testing.assert_allclose(np.linalg.norm(t.normal, axis=1), 1.0, atol=1e-12)
    counts = np.bincount(t.face, minlength=6)
    assert counts.tolist() == [4092, 234, 144, 144, 73, 73]
    assert (t.is_pmt == (t.face != 0)).all()
    assert t.sensor_type[0] == "MPPC" and t.sensor_type[4700] == "PMT"
    # axes span the sensor plane: orthogonal to the normal and to each other
    for a, b in ((t.axis_a, t.normal), (t.axis_b, t.normal), (t.axis_a, t.axis_b)):
        assert np.abs((a * b).sum(1)).max() < 1e-9
    # normals point into the xenon: a step of 3 cm along them stays inside the volume
    q = t.pos + 3.0 * t.normal
    r, phi = np.hypot(q[:, 0], q[:, 1]), np.degrees(np.arctan2(q[:, 1], -q[:, 0]))
    assert ((r > geo.R_INNER) & (r < geo.R_OUTER)).all()
    assert (np.abs(phi) < geo.HEX_WALL_PHI).all()
    endcap = np.isin(t.face, [geo.FACE_CODE["us"], geo.FACE_CODE["ds"]])
    assert (np.abs(q[endcap, 2]) < np.abs(t.pos[endcap, 2])).all()
    np.testing.assert_allclose(t.area[0], 4 * 0.59**2)
    np.testing.assert_allclose(t.area[4700], np.pi * 2.25**2)


def test_geometry_id_is_stable_and_content_based():
    gid = geo.geometry_id()
    assert gid.startswith("xecgeo-") and len(gid) == 23
    assert gid == geo.geometry_id()


def test_every_sensor_in_exactly_one_face_cell():
    ids = np.concatenate(list(fm.face_sensor_ids().values()))
    assert np.array_equal(np.sort(ids), np.arange(geo.N_SENSORS))
    outer = np.concatenate(
        [
            fm.OUTER_COARSE_MAP[~np.isin(fm.OUTER_COARSE_MAP, fm.OUTER_CENTER_MAP)],
            fm.OUTER_CENTER_MAP.ravel(),
        ]
    )
    assert np.array_equal(np.sort(outer), fm.face_sensor_ids()["outer"])
    assert len(outer) == 234


def _zphi(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = geo.sensor_table().pos[ids]
    return p[..., 2], np.degrees(np.arctan2(p[..., 1], -p[..., 0]))


@pytest.mark.parametrize("name", ["inner", "us", "ds", "outer_coarse", "outer_center"])
def test_rect_maps_are_monotone_images(name):
    """Neighbouring pixels are neighbouring sensors: phi' falls along the phi axis."""
    m = fm.RECT_MAPS[name]
    z, phi = _zphi(m)
    if name == "inner":  # rows phi, columns z
        assert (np.diff(phi, axis=0) < 0).all() and (np.diff(z, axis=1) > 0).all()
    elif name in ("us", "ds"):  # rows phi, columns radius
        assert (np.diff(phi, axis=0) < 0).all()
        r = np.hypot(*geo.sensor_table().pos[m][..., :2].transpose(2, 0, 1))
        assert (np.diff(r, axis=1) > 0).all()
    else:  # rows z, columns phi
        assert (np.diff(z, axis=0) > 0).all() and (np.diff(phi, axis=1) < 0).all()


def test_outer_coarse_map_is_not_the_plain_reshape():
    assert fm.OUTER_COARSE_MAP[0, 1] == 4092 + 9  # next phi strip, same z
    assert fm.OUTER_COARSE_MAP[1, 0] == 4093  # next z, same phi strip
    assert not np.array_equal(fm.OUTER_COARSE_MAP, np.arange(4092, 4308).reshape(9, 24))


def test_fine_grid_cells_lie_on_their_sensor():
    z, phi = _zphi(fm.OUTER_FINE_MAP)
    rows, cols = np.meshgrid(np.arange(45), np.arange(72), indexing="ij")
    cell_z = geo.OUTER_Z0 - geo.OUTER_DZ / 2 + (rows + 0.5) * geo.OUTER_DZ / 5
    cell_phi = geo.OUTER_PHI0 - geo.OUTER_DPHI / 2 + (cols + 0.5) * geo.OUTER_DPHI / 3
    assert np.abs(cell_z - z).max() <= geo.OUTER_DZ / 2 * 0.81
    assert np.abs(cell_phi - phi).max() <= abs(geo.OUTER_DPHI) / 2 * 0.7


@pytest.mark.parametrize("pool", [(1, 1), (3, 3), (5, 3), (15, 24)])
def test_fine_grid_conserves_counts(pool):
    rng = np.random.default_rng(1)
    npho = rng.gamma(2.0, 300.0, size=(3, geo.N_SENSORS))
    fine = fm.outer_fine_counts(npho, pool)
    assert fine.shape == (3, 45 // pool[0], 72 // pool[1])
    outer = fm.face_sensor_ids()["outer"]
    np.testing.assert_allclose(fine.sum(axis=(1, 2)), npho[:, outer].sum(1), rtol=1e-12)
    # area fractions of every sensor add up to one
    total = np.bincount(fm.OUTER_FINE_MAP.ravel(), fm.OUTER_FINE_AREA.ravel(), geo.N_SENSORS)
    np.testing.assert_allclose(total[outer], 1.0)
    with pytest.raises(ValueError, match="must divide"):
        fm.outer_fine_counts(npho, (4, 4))


def test_hex_graph_from_positions():
    src, dst, etype = fm.hex_edges()
    d, z = geo.hex_plane_coords()
    nbr = src != dst
    dist = np.hypot(d[dst] - d[src], z[dst] - z[src])[nbr]
    same_row = etype[nbr] <= 2
    np.testing.assert_allclose(dist[same_row], 6.12, atol=1e-9)
    np.testing.assert_allclose(dist[~same_row], 7.56, atol=0.01)
    # symmetric, and each type is one physical direction (opposite types reverse it)
    pairs = set(zip(src[nbr].tolist(), dst[nbr].tolist(), strict=True))
    assert all((b, a) in pairs for a, b in pairs)
    for t in range(1, 7):
        step = np.stack([d[dst] - d[src], z[dst] - z[src]], -1)[etype == t]
        np.testing.assert_allclose(step, step[:1].repeat(len(step), 0), atol=1e-9)
    # interior PMTs (rows 1-4, not at the row ends) have exactly 6 neighbours
    table = fm.hex_neighbor_table()
    rows = [r for r in fm.HEX_ROWS[1:5]]
    interior = np.concatenate([r[1:-1] for r in rows])
    assert ((table[interior, 1:] >= 0).sum(1) == 6).all()
    assert ((table[:, 1:] >= 0).sum(1) <= 6).all()
    assert (table[:, 0] == np.arange(73)).all()


def test_uvw_xyz_roundtrip_and_fiducial():
    rng = np.random.default_rng(0)
    uvw = np.stack(
        [rng.uniform(-30, 30, 100), rng.uniform(-80, 80, 100), rng.uniform(-5, 45, 100)], -1
    )
    np.testing.assert_allclose(geo.xyz_to_uvw(geo.uvw_to_xyz(uvw)), uvw, atol=1e-9)
    # a point on the inner face at phi' = 0, z = 0 is the origin of u, v, w
    np.testing.assert_allclose(geo.xyz_to_uvw([-geo.R_INNER, 0.0, 0.0]), [0, 0, 0], atol=1e-12)
    inside = geo.in_fiducial(np.array([[0, 0, 1], [23.8, 67.8, 41.9], [24, 0, 1], [0, 0, -0.1]]))
    assert inside.tolist() == [True, True, False, False]


def test_cli_geometry_csv_and_json():
    runner = CliRunner()
    res = runner.invoke(main, ["geometry", "--csv"])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.output)))
    assert len(rows) == 4760
    assert rows[0]["face"] == "inner" and rows[4759]["face"] == "outer"
    assert float(rows[0]["x"]) == pytest.approx(geo.sensor_table().pos[0, 0], abs=1e-4)
    res = runner.invoke(main, ["geometry", "--json"])
    doc = json.loads(res.output)
    assert doc["geometry_id"] == geo.geometry_id() and len(doc["sensors"]) == 4760
    assert doc["sensors"][4596]["face"] == "top"
