"""Face gathering: index maps from facemaps, the outer fine grid in physical units, assembly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.model_data import events, raw_events
from xecdata import facemaps
from xecdata.schemes import get_scheme
from xecmodel.faces import FaceGather, OuterFineGrid, SensorAssembler, face_layout

SCHEMES = ["legacy@1", "new@1"]


@pytest.mark.parametrize("mode", ["finegrid", "split"])
def test_layout_reports_every_sensor_once_and_gathers_the_facemaps(mode: str) -> None:
    layout = face_layout(mode)
    assert sorted(layout.sensor_order().tolist()) == list(range(4760))
    scheme = get_scheme("new@1")
    x = events(scheme, 2)
    faces = FaceGather(layout, scheme)(x)
    ids = torch.arange(4760.0).reshape(1, 4760, 1).expand(2, 4760, 2)
    id_faces = FaceGather(layout, scheme)._gather(ids)
    for name, grid in ((g.name, g) for g in layout.rect if g.cell_ids is not None):
        assert faces[name].shape == (2, 2, *grid.shape)
        assert (id_faces[name][0, 0].numpy() == facemaps.RECT_MAPS[name]).all()
    assert (id_faces["top"][0, :, 0].numpy() == facemaps.TOP_IDS).all()
    if mode == "split":  # the coarse map is z x phi with ids running along z
        assert id_faces["outer_coarse"][0, 0, :2, 0].tolist() == [4092, 4093]


@pytest.mark.parametrize("scheme_id", SCHEMES)
@pytest.mark.parametrize("pool", [(1, 1), (3, 3), (5, 3)])
def test_fine_grid_conserves_photon_counts(scheme_id: str, pool: tuple[int, int]) -> None:
    scheme = get_scheme(scheme_id)
    npho, time = raw_events(3, seed=1)
    npho[0, 7] = 0.0  # sensor 7 is inner; keep every outer sensor alive here
    x = torch.from_numpy(scheme.normalize(npho, time))
    grid = OuterFineGrid(scheme, pool)(x)  # (B, 2, H, W)
    assert grid.shape == (3, 2, 45 // pool[0], 72 // pool[1])
    counts, _ = scheme.denormalize(grid.permute(0, 2, 3, 1).numpy())
    outer = np.unique(facemaps.OUTER_FINE_MAP)
    stored, _ = scheme.denormalize(x.numpy())  # counts as the float32 tensor holds them
    np.testing.assert_allclose(counts.sum(axis=(1, 2)), stored[:, outer].sum(1), rtol=2e-5)
    ref = facemaps.outer_fine_counts(stored, pool)
    np.testing.assert_allclose(counts, ref, rtol=2e-4, atol=1e-3)


@pytest.mark.parametrize("scheme_id", SCHEMES)
def test_fine_grid_copies_time_and_keeps_sentinels(scheme_id: str) -> None:
    scheme = get_scheme(scheme_id)
    npho, time = raw_events(2, seed=2)
    sid = int(facemaps.OUTER_COARSE_MAP[0, 0])
    npho[0, sid] = 1e10  # dead coarse sensor: its 15 fine cells are invalid
    npho[1, sid] = 0.0  # dark: count 0, no time
    x = torch.from_numpy(scheme.normalize(npho, time))
    grid = OuterFineGrid(scheme, (1, 1))(x)
    cells = np.equal(facemaps.OUTER_FINE_MAP, sid)
    assert (grid[0, 0][torch.from_numpy(cells)] == scheme.npho_sentinel).all()
    assert (grid[0, 1][torch.from_numpy(cells)] == scheme.time_sentinel).all()
    assert (grid[1, 1][torch.from_numpy(cells)] == scheme.time_sentinel).all()
    assert (grid[1, 0][torch.from_numpy(cells)] != scheme.npho_sentinel).all()
    other = int(facemaps.OUTER_COARSE_MAP[4, 5])
    cell = np.argwhere(np.equal(facemaps.OUTER_FINE_MAP, other))[0]
    torch.testing.assert_close(grid[0, 1, cell[0], cell[1]], x[0, other, 1])  # time copied


def test_pooled_cell_with_a_dead_sensor_is_estimated_from_the_live_ones() -> None:
    scheme = get_scheme("new@1")
    npho = np.full((1, 4760), 300.0)
    time = np.zeros((1, 4760))
    npho[0, int(facemaps.OUTER_COARSE_MAP[0, 0])] = 1e10
    grid = OuterFineGrid(scheme, (5, 3))(torch.from_numpy(scheme.normalize(npho, time)))
    counts, _ = scheme.denormalize(grid.permute(0, 2, 3, 1).numpy())
    assert np.isnan(counts[0, 0, 0])  # the dead sensor's own cell: dead (sentinel)
    np.testing.assert_allclose(counts[0, 1, 0], 300.0, rtol=1e-4)  # the next sensor's cell
    grid = OuterFineGrid(scheme, (3, 3))(torch.from_numpy(scheme.normalize(npho, time)))
    counts, _ = scheme.denormalize(grid.permute(0, 2, 3, 1).numpy())
    assert np.isnan(counts[0, 0, 0])  # all 9 cells belong to the dead sensor
    # rows 3-5: two rows of the dead sensor, one live row of 3 cells x 20 photons, scaled 9 / 3
    np.testing.assert_allclose(counts[0, 1, 0], 9 * 300.0 / 15, rtol=1e-4)


@pytest.mark.parametrize("mode", ["finegrid", "split"])
def test_assembler_maps_plain_grids_back_to_their_sensors(mode: str) -> None:
    layout = face_layout(mode, (1, 1))
    scheme = get_scheme("new@1")
    ids = torch.arange(4760.0).reshape(1, 4760, 1)
    per_grid = FaceGather(layout, scheme)._gather(ids)
    if mode == "finegrid":  # fine cells carry their sensor id: the weighted taps return it
        per_grid["outer"] = torch.from_numpy(facemaps.OUTER_FINE_MAP).float()[None, None]
    out = SensorAssembler(layout)(per_grid)
    torch.testing.assert_close(out[0, :, 0], torch.arange(4760.0))


def test_bad_options_name_the_fix() -> None:
    with pytest.raises(ValueError, match="outer_mode"):
        face_layout("coarse")
    with pytest.raises(ValueError, match="must divide"):
        face_layout("finegrid", (4, 4))
