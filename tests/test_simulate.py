"""Toy simulator: solid angles against numerical integration, photoelectron statistics, and the
physics every task relies on (energy linearity, position, timing, dead channels, pile-up),
reproducibility, and the ROOT layout. The detector effects have their own tests
(test_sim_effects.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import uproot
from click.testing import CliRunner
from scipy import integrate, stats

from xec_cli.main import main
from xecdata.facemaps import INNER_MAP
from xecdata.geometry import FACE_CODE, N_SENSORS, sensor_table, xyz_to_uvw
from xecdata.sim import SimConfig, parse_energy, simulate, simulate_events
from xecdata.sim.kinematics import inside_xenon
from xecdata.sim.optics import C_LIGHT, N_LXE, light_and_first_time, sensor_optics
from xecdata.sim.response import REF_MIN_NPHE, dead_channels, poisson_counts
from xecdata.sim.solid_angle import disc_solid_angle, local_coords, mppc_solid_angle

SENSOR_BRANCHES = ("npho", "nphe", "time", "relative_time", "relative_npho")
TRUTH_SHAPES = {"emiAng": (2,), "energyTruth": (), "timeTruth": (), "uvwTruth": (3,),
                "xyzTruth": (3,), "emiVec": (3,), "xyzVTX": (3,)}  # fmt: skip


@pytest.fixture(scope="module")
def events() -> dict[str, np.ndarray]:
    """The ideal detector (no detector effects): what truth-recovery tests check."""
    return simulate_events(256, seed=7, config=SimConfig(effects=()))


# ---- solid angles ------------------------------------------------------------------------------
def _brute_rect(x1, x2, y1, y2, a, b, h):
    f = lambda y, x: h / ((x - a) ** 2 + (y - b) ** 2 + h * h) ** 1.5  # noqa: E731
    return integrate.dblquad(f, x1, x2, y1, y2, epsabs=1e-13, epsrel=1e-9)[0]


def _brute_mppc(a, b, h):
    edges = ((-0.615, -0.025), (0.025, 0.615))  # 2 x 2 chips of 0.59 cm, 0.05 cm gap
    return sum(_brute_rect(*ex, *ey, a, b, h) for ex in edges for ey in edges)


def _brute_disc(r0, h, radius=2.25):
    f = lambda r, p: h * r / ((r * np.cos(p) - r0) ** 2 + (r * np.sin(p)) ** 2 + h * h) ** 1.5  # noqa: E731
    return integrate.dblquad(f, 0, 2 * np.pi, 0, radius, epsabs=1e-13, epsrel=1e-9)[0]


@pytest.mark.parametrize("a, b, h", [(0, 0, 0.05), (0.3, -0.2, 0.1), (1.0, 2.0, 0.5), (0, 0, 5)])
def test_mppc_exact_formula_matches_integration(a, b, h):
    assert mppc_solid_angle(a, b, h) == pytest.approx(_brute_mppc(a, b, h), rel=1e-7)


@pytest.mark.parametrize(
    "r0, h", [(0, 1), (1, 0.3), (2.2, 0.1), (2.25, 0.5), (3, 0.2), (10, 5), (30, 2)]
)
def test_disc_exact_formula_matches_integration(r0, h):
    assert disc_solid_angle(r0, h) == pytest.approx(_brute_disc(r0, h), rel=1e-7)


def _points_around(sensor: int, distances: list[float]) -> np.ndarray:
    """Points at each distance from a sensor, at 0, 45 and 80 degrees from its normal."""
    t = sensor_table()
    n, ea, eb = t.normal[sensor], t.axis_a[sensor], t.axis_b[sensor]
    pts = []
    for r in distances:
        for th in np.deg2rad([0.0, 45.0, 80.0]):
            lateral = np.cos(0.5) * ea + np.sin(0.5) * eb
            pts.append(t.pos[sensor] + r * (np.cos(th) * n + np.sin(th) * lateral))
    return np.array(pts)


@pytest.mark.parametrize(
    "sensor, distances",
    [
        (int(INNER_MAP[46, 22]), [0.3, 1.0, 2.9, 3.1, 5.0, 7.9, 8.1, 20.0]),  # MPPC
        (int(np.flatnonzero(sensor_table().face == FACE_CODE["outer"])[100]),
         [1.0, 4.0, 7.9, 8.1, 15.0, 24.9, 25.1, 40.0]),  # outer PMT
        (int(np.flatnonzero(sensor_table().face == FACE_CODE["us"])[40]),
         [2.0, 7.9, 8.1, 24.9, 25.1]),  # tilted US PMT
    ],
)  # fmt: skip
def test_simulator_solid_angle_within_2_percent(sensor, distances):
    """The light kernel's solid angle (read back from mu with one photon source) agrees with
    brute-force integration near and far, on both sides of every regime boundary."""
    pts = _points_around(sensor, distances)
    photons = np.full((len(pts), 1), 1e6)
    mu, _ = light_and_first_time(pts[:, None, :], photons, np.zeros((len(pts), 1)))
    opt = sensor_optics()
    omega_sim = mu[:, sensor] * 4 * np.pi / (photons[:, 0] * opt.efficiency[sensor])
    a, b, h = local_coords(pts, np.full(len(pts), sensor))
    if sensor_table().is_pmt[sensor]:
        brute = [_brute_disc(np.hypot(x, y), z) for x, y, z in zip(a, b, h, strict=True)]
    else:
        brute = [_brute_mppc(x, y, z) for x, y, z in zip(a, b, h, strict=True)]
    np.testing.assert_allclose(omega_sim, brute, rtol=0.02)


def test_sensors_facing_away_get_no_light():
    t = sensor_table()
    s = int(INNER_MAP[46, 22])
    behind = t.pos[s] - 2.0 * t.normal[s]
    mu, t_first = light_and_first_time(behind[None, None], np.full((1, 1), 1e6), np.zeros((1, 1)))
    assert mu[0, s] == 0 and np.isinf(t_first[0, s])


# ---- photoelectron statistics ------------------------------------------------------------------
@pytest.mark.parametrize("mu", [0.3, 3.0, 9.9, 10.0, 40.0, 500.0])
def test_photoelectron_counts_follow_poisson(mu):
    x = poisson_counts(np.random.default_rng(1), np.full(200_000, mu, np.float32))
    k = np.arange(int(mu + 8 * np.sqrt(mu) + 10))
    cdf = np.searchsorted(np.sort(x), k, side="right") / len(x)
    assert np.abs(cdf - stats.poisson.cdf(k, mu)).max() < 0.005
    assert x.mean() == pytest.approx(mu, rel=0.01, abs=0.005)
    assert x.var() == pytest.approx(mu, rel=0.02, abs=0.01)


# ---- physics of the events ---------------------------------------------------------------------
def test_summed_npho_is_linear_in_energy():
    energies = np.array([20.0, 30.0, 40.0, 50.0, 60.0])
    sums = [simulate_events(128, seed=3, config=SimConfig(energy=(e, e)))["npho"].sum(1).mean()
            for e in energies]  # fmt: skip
    slope, intercept = np.polyfit(energies, sums, 1)
    residual = (np.asarray(sums) - (slope * energies + intercept)) / np.asarray(sums)
    assert np.abs(residual).max() < 0.02
    assert slope > 0 and abs(intercept) < 0.1 * sums[0]


def test_energies_under_the_cut_never_present():
    ev = simulate_events(128, seed=1, config=SimConfig(energy=(5.0, 20.0), pileup=2))
    assert ev["energyTruth"].min() >= 0.0145 and ev["energyTruth"].max() <= 0.020
    assert parse_energy("40:55") == (40.0, 55.0) and parse_energy("flat") == (15.0, 60.0)
    with pytest.raises(ValueError, match=r"14\.5 MeV"):
        parse_energy("10")


def test_light_centroid_follows_true_uv_for_shallow_events(events):
    """5x5 light-weighted centroid around the brightest MPPC vs the true (u, v), w < 3 cm."""
    uvw_s = xyz_to_uvw(sensor_table().pos)
    su, sv = uvw_s[INNER_MAP, 0], uvw_s[INNER_MAP, 1]
    shallow = np.flatnonzero(events["uvwTruth"][:, 2] < 3.0)
    assert len(shallow) > 100
    du, dv = [], []
    for i in shallow:
        img = events["npho"][i][INNER_MAP]  # (93, 44)
        r, c = np.unravel_index(np.argmax(img), img.shape)
        win = (slice(max(r - 2, 0), r + 3), slice(max(c - 2, 0), c + 3))
        w = img[win]
        du.append((w * su[win]).sum() / w.sum() - events["uvwTruth"][i, 0])
        dv.append((w * sv[win]).sum() / w.sum() - events["uvwTruth"][i, 1])
    du, dv = np.abs(du), np.abs(dv)
    # tolerance: ~half an MPPC pitch (1.5 cm) at the median, one pitch for 90 % of events
    assert np.median(du) < 0.8 and np.median(dv) < 0.6
    assert np.quantile(du, 0.9) < 2.0 and np.quantile(dv, 0.9) < 1.5


def test_earliest_sensors_are_nearest(events):
    pos = sensor_table().pos
    near, lit = [], []
    for i in range(len(events["time"])):
        valid = np.flatnonzero(events["time"][i] < 1e9)
        d = np.linalg.norm(pos - events["xyzTruth"][i], axis=1)
        first5 = valid[np.argsort(events["time"][i, valid])[:5]]
        near.append(np.median(d[first5]))
        lit.append(np.median(d[valid]))
    assert np.median(near) < 0.25 * np.median(lit)


def test_times_relative_reference_and_time_truth(events):
    rt, nphe = events["relative_time"], events["nphe"]
    assert np.array_equal(events["time"] < 1e9, nphe >= 2)  # default time threshold
    ref = np.where((nphe > REF_MIN_NPHE) & (rt < 1e9), rt, np.inf).min(axis=1)
    assert np.all(ref == 0)
    # timeTruth is the emission time on the relative_time clock: bright sensors light up
    # when the gamma's flight plus the optical path from the conversion point say so
    conv, vtx = events["xyzTruth"].astype(float), events["xyzVTX"].astype(float)
    flight = np.linalg.norm(conv - vtx, axis=1) / C_LIGHT
    optical = N_LXE / C_LIGHT * np.linalg.norm(sensor_table().pos[None] - conv[:, None], axis=2)
    pred = events["timeTruth"][:, None] + flight[:, None] + optical  # ns
    bright = nphe > 2000
    res = (rt * 1e9 - pred)[bright]
    assert abs(np.median(res)) < 0.1 and np.quantile(np.abs(res), 0.9) < 0.5


def test_truth_branches_are_consistent(events):
    vec = events["emiVec"].astype(float)
    np.testing.assert_allclose(np.linalg.norm(vec, axis=1), 1.0, atol=1e-6)
    theta = np.degrees(np.arccos(vec[:, 2]))
    phi = np.degrees(np.arctan2(vec[:, 1], vec[:, 0])) % 360
    np.testing.assert_allclose(events["emiAng"], np.stack([theta, phi], 1), atol=1e-3)
    xyz = events["xyzTruth"].astype(float)
    np.testing.assert_allclose(events["uvwTruth"], xyz_to_uvw(xyz), atol=1e-3)
    assert inside_xenon(xyz).all()
    along = xyz - events["xyzVTX"]
    cos = (along * vec).sum(1) / np.linalg.norm(along, axis=1)
    assert np.all(cos > 1 - 1e-6)
    assert np.all(events["energyTruth"] == np.float32(0.0528))
    assert np.array_equal(events["event"], np.arange(256)) and np.all(events["nGamma"] == 1)
    np.testing.assert_array_equal(events["relative_npho"], events["npho"])
    eff = sensor_optics().efficiency
    np.testing.assert_allclose(events["npho"], events["nphe"] / eff, rtol=1e-6)


def test_dead_channels_never_carry_a_value():
    cfg = SimConfig(dead_fraction=0.05, pileup=2)
    ev = simulate_events(160, seed=5, config=cfg)
    dead = dead_channels(5, 0.05)
    assert len(dead) == round(0.05 * N_SENSORS)
    for name in SENSOR_BRANCHES:
        assert np.all(ev[name][:, dead] == np.float32(1e10)), name
    alive = np.setdiff1d(np.arange(N_SENSORS), dead)
    assert np.all(ev["npho"][:, alive] < 1e9)


def test_pileup_adds_gammas_and_light():
    ev = simulate_events(256, seed=2, config=SimConfig(pileup=3))
    assert set(np.unique(ev["nGamma"])) == {1, 2, 3}
    light = ev["npho"].sum(1)
    one, two = light[ev["nGamma"] == 1].mean(), light[ev["nGamma"] == 2].mean()
    assert 1.6 < two / one < 2.4


# ---- reproducibility and files -----------------------------------------------------------------
def _read(paths) -> dict[str, np.ndarray]:
    return uproot.concatenate([f"{p}:tree" for p in paths], library="np")


def test_same_seed_same_arrays_however_split(tmp_path):
    one = simulate(300, tmp_path / "one.root", seed=3)
    split = simulate(300, tmp_path / "split", seed=3, events_per_file=100)
    assert [p.name for p in split] == [f"xecsim_run000000_000{k}.root" for k in range(3)]
    a, b, mem = _read(one), _read(split), simulate_events(300, seed=3)
    prefix = simulate_events(200, seed=3)
    other = simulate_events(10, seed=4)
    for name in mem:
        assert np.array_equal(a[name], mem[name]) and np.array_equal(b[name], mem[name]), name
        assert np.array_equal(prefix[name], mem[name][:200]), name
    assert not np.array_equal(other["npho"], mem["npho"][:10])


@pytest.mark.parametrize("compression", ["zlib", "lzma", "lz4", "zstd"])
def test_root_files_have_the_input_layout(tmp_path, compression):
    cfg = SimConfig(run=12, pileup=2)
    (path,) = simulate(20, tmp_path / "x.root", seed=1, config=cfg, compression=compression)
    f = uproot.open(path)
    tree = f["tree"]
    assert tree.num_entries == 20
    expected = {*SENSOR_BRANCHES, *TRUTH_SHAPES, "run", "event", "nGamma"}
    assert set(tree.keys()) == expected
    arrays = tree.arrays(library="np")
    for name in SENSOR_BRANCHES:
        assert tree[name].typename == "float[4760]"
        assert arrays[name].dtype == np.float32 and arrays[name].shape == (20, N_SENSORS)
    for name, shape in TRUTH_SHAPES.items():
        assert arrays[name].dtype == np.float32 and arrays[name].shape == (20, *shape)
    for name in ("run", "event", "nGamma"):
        assert arrays[name].dtype == np.int32
    assert np.all(arrays["run"] == 12)
    meta = json.loads(str(f["xec_sim"]))
    assert meta["seed"] == 1 and meta["config"]["pileup"] == 2 and meta["events"] == [0, 20]
    assert not list(tmp_path.glob("*.part"))


def test_cli_writes_files_and_reports_bad_options(tmp_path):
    out = tmp_path / "cli"
    res = CliRunner().invoke(main, ["simulate", "-n", "30", "-o", str(out), "--events-per-file",
                                    "16", "--energy", "40:55", "--seed", "9", "-q"])  # fmt: skip
    assert res.exit_code == 0, res.output
    arrays = _read(sorted(out.glob("*.root")))
    assert len(arrays["event"]) == 30
    assert arrays["energyTruth"].min() >= 0.040 and arrays["energyTruth"].max() <= 0.055
    bad = CliRunner().invoke(main, ["simulate", "-n", "5", "-o", str(out), "--energy", "12"])
    assert bad.exit_code == 2 and "14.5 MeV" in bad.output
    bad = CliRunner().invoke(
        main, ["simulate", "-n", "5", "-o", str(tmp_path / "a.root"), "--events-per-file", "2"]
    )
    assert bad.exit_code == 2 and "give a folder" in bad.output


def test_interrupted_run_leaves_only_finished_files(tmp_path, monkeypatch):
    from xecdata.sim import writer

    real_blocks = writer.iter_blocks

    def one_block_then_fail(n, seed, cfg):
        yield next(iter(real_blocks(n, seed, cfg)))
        raise KeyboardInterrupt

    monkeypatch.setattr(writer, "iter_blocks", one_block_then_fail)
    with pytest.raises(KeyboardInterrupt):
        simulate(300, tmp_path / "out", seed=1, events_per_file=100)
    # block 0 (128 events) completes file 0 and starts file 1, which must not survive
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["xecsim_run000000_0000.root"]
