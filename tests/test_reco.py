"""Conventional reconstruction (`xecdata.reco`, `xec reco`): physics against simulation truth,
the calibration as versioned data, and every way an event or an input can be bad."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import uproot
from click.testing import CliRunner

from tests.rootfiles import write_uproot
from xec_cli.main import main
from xecdata.geometry import N_SENSORS, sensor_table, uvw_to_xyz
from xecdata.reco.calibrate import build_calibration
from xecdata.reco.calibration import (
    PACKAGE_DIR,
    Calibration,
    CalibrationError,
    default_calibration,
    load_calibration,
)
from xecdata.reco.fitkernel import fractions
from xecdata.reco.lightmodel import inner_face, light_fraction
from xecdata.reco.position import ATTENUATION_LENGTH, fit_positions
from xecdata.reco.reconstruct import BRANCHES, reconstruct
from xecdata.reco.resolution import resolution_table
from xecdata.robust import half_width_68
from xecdata.sim import SimConfig, simulate, simulate_events
from xecdata.sim.effects import RAYLEIGH_LENGTH
from xecdata.sim.optics import near_geometric_factor

# Tolerances on the current simulator (photon statistics, no electronics noise), w > 2 cm,
# fiducial: about twice the measured sigma68 (dE/E 1.8 %, u 4.8 mm, v 4.0 mm, w 7.7 mm,
# t 33 ps, theta / phi 6 mrad on 4096 events), and biases well inside one sigma.
TOLERANCE = {  # quantity: (max |bias|, max sigma68)
    "dE/E": (0.6, 3.5), "u": (1.5, 9.0), "v": (1.5, 8.0), "w": (4.0, 15.0),
    "t": (20.0, 70.0), "theta": (2.0, 12.0), "phi": (2.0, 12.0),
}  # fmt: skip


IDEAL = SimConfig(effects=())  # noiseless: the reconstruction must recover truth here


@pytest.fixture(scope="module")
def calib_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1400-event 52.8 MeV simulation to calibrate from."""
    path = tmp_path_factory.mktemp("cal") / "calib.root"
    simulate(1400, path, seed=301)
    return path


@pytest.fixture(scope="module")
def cal(calib_file: Path) -> Calibration:
    return build_calibration([calib_file], "test", 3)


@pytest.fixture(scope="module")
def events() -> dict[str, np.ndarray]:
    return simulate_events(600, seed=302)


def _run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args))


def test_light_model_is_the_simulators() -> None:
    face, t, rng = inner_face(), sensor_table(), np.random.default_rng(0)
    ids = rng.integers(0, len(face.uv), 3000)
    shifts = np.stack([rng.normal(0, 2, 3000), rng.normal(0, 2, 3000)], 1)
    uvw = np.concatenate([face.uv[ids] + shifts, rng.uniform(0.05, 12, (3000, 1))], 1)
    pts = uvw_to_xyz(uvw)
    g, _ = near_geometric_factor(pts, ids)  # the simulator's Omega / A
    pairs = list(zip(pts, ids, strict=True))
    ours = np.array([light_fraction(*p, s, face.frame, face.consts) for p, s in pairs])
    np.testing.assert_allclose(ours[:, 0], g * t.area[ids] / (4 * np.pi), rtol=1e-9, atol=0)
    for (p, s), row in list(zip(pairs, ours, strict=True))[:300]:  # gradient = finite diff.
        fd = [(light_fraction(*(p + e), s, face.frame, face.consts)[0]
               - light_fraction(*(p - e), s, face.frame, face.consts)[0]) / 2e-6
              for e in np.eye(3) * 1e-6]  # fmt: skip
        np.testing.assert_allclose(row[1:], fd, rtol=1e-4, atol=1e-9 * np.abs(row[1:]).max())


def _fractions(p: np.ndarray, inv_len: float) -> tuple[np.ndarray, np.ndarray]:
    face = inner_face()
    ids = np.arange(len(face.uv))
    f, grad = np.empty(len(ids)), np.empty((len(ids), 3))
    fractions(p, ids, len(ids), face.frame, face.consts, f, grad, inv_len)
    return f, grad


def test_fit_model_attenuates_the_light_like_the_simulator() -> None:
    assert ATTENUATION_LENGTH == RAYLEIGH_LENGTH == 45.0  # imported, one fact
    assert default_calibration().attenuation_length is None  # measured worse: the docs
    p = np.array([3.0, -10.0, 4.0, 1.0])  # u, v, w (cm)
    bare, _ = _fractions(p, 0.0)
    att, grad = _fractions(p, 1.0 / ATTENUATION_LENGTH)
    face = inner_face()
    r = np.linalg.norm(uvw_to_xyz(p[None, :3])[0] - face.frame[:, :3], axis=1)
    np.testing.assert_allclose(att, bare * np.exp(-r / ATTENUATION_LENGTH), rtol=1e-12)
    assert (bare > 0).sum() > 1000
    for k, e in enumerate(np.eye(4)[:3] * 1e-5):  # gradient in (u, v, w) = finite differences
        fd = (_fractions(p + e, 1 / ATTENUATION_LENGTH)[0]
              - _fractions(p - e, 1 / ATTENUATION_LENGTH)[0]) / 2e-5  # fmt: skip
        np.testing.assert_allclose(grad[:, k], fd, rtol=1e-4, atol=1e-6 * np.abs(fd).max())
    # a noiseless attenuated point source: the attenuated model finds it, the bare one does not
    npho = np.zeros((1, N_SENSORS))
    npho[0, : len(att)] = 2e6 * att
    found = fit_positions(npho, attenuation_length=ATTENUATION_LENGTH).params[0]
    np.testing.assert_allclose(found[:3], p[:3], atol=2e-3)
    assert found[3] == pytest.approx(2e6, rel=1e-4)
    assert abs(fit_positions(npho).params[0, 2] - p[2]) > 0.05
    with pytest.raises(ValueError, match="attenuation length"):
        fit_positions(npho, attenuation_length=-1.0)


def test_recovers_truth_within_tolerances(cal: Calibration, events: dict) -> None:
    rec = reconstruct(events["npho"], events["relative_time"], events["xyzVTX"], cal)
    assert (rec.position == 0).all() and not rec.no_time.any() and not rec.no_vertex.any()
    table = resolution_table(rec.branches, events)["w>2"]
    assert table["events"] > 200
    for name, (bias, width) in TOLERANCE.items():
        got = table[name]
        assert abs(got["bias"]) < bias and got["sigma68"] < width, (name, got)


def test_position_bias_correction_removes_the_pull_towards_the_centre(
    cal: Calibration, events: dict
) -> None:
    # the point-source fit pulls u towards the face centre (about -1.6 % of u on the default
    # detector); the calibration's bias polynomials, fitted on other events, take it out
    assert cal.position is not None
    args = (events["npho"], events["relative_time"], events["xyzVTX"])
    true = np.asarray(events["uvwTruth"], np.float64)
    sel = (np.abs(true[:, 0]) < 23.9) & (np.abs(true[:, 1]) < 67.9) & (true[:, 2] > 0)
    got = {}
    for name, c in (("raw", replace(cal, position=None)), ("corrected", cal)):
        du = 10 * (reconstruct(*args, c).branches["uvwRecoFI"][sel, 0] - true[sel, 0])  # mm
        got[name] = (np.polyfit(true[sel, 0], du, 1)[0], half_width_68(du))  # mm/cm, mm
    assert got["raw"][0] < -0.08, got  # the pull: u_reco - u_true falls with u
    assert abs(got["corrected"][0]) < 0.4 * abs(got["raw"][0]), got
    assert got["corrected"][1] < 0.9 * got["raw"][1], got
    old = load_calibration(PACKAGE_DIR / "default@3.json")  # older files keep their hash
    assert old.position is None and "position_bias" not in old.parameters()


def test_shipped_default_calibration_works_here() -> None:
    # the shipped calibration (default@5) belongs to the default (realistic) detector
    events = simulate_events(200, seed=302)
    cal = default_calibration()
    cal.check_usable("test")
    assert cal.id.startswith("default@") and cal.hash.startswith("sha256:")
    rec = reconstruct(events["npho"][:200], events["relative_time"][:200],
                      events["xyzVTX"][:200], cal)  # fmt: skip
    ratio = rec.branches["energyReco"] / events["energyTruth"][:200]
    assert abs(np.median(ratio) - 1) < 0.01


def test_calibration_is_deterministic_and_hashed(cal: Calibration, calib_file: Path,
                                                 tmp_path: Path) -> None:  # fmt: skip
    again = build_calibration([calib_file], "test", 3)
    assert again.to_json() == cal.to_json() and again.hash == cal.hash
    path = tmp_path / "c.json"
    path.write_text(cal.to_json())
    assert load_calibration(path).hash == cal.hash
    data = json.loads(path.read_text())
    assert data["source"]["files"][0]["simulation"]["seed"] == 301
    data["energy"]["weights"][0] *= 1.01  # edited after it was made
    path.write_text(json.dumps(data))
    with pytest.raises(CalibrationError, match="does not match its hash"):
        load_calibration(path)


def test_calibrate_records_the_fits_attenuation_length(
    cal: Calibration, calib_file: Path, events: dict, tmp_path: Path
) -> None:
    path = tmp_path / "att.json"
    out = _run("reco", "calibrate", str(calib_file), "-o", str(path), "--name", "att",
               "--attenuation-length", "45", "-q")  # fmt: skip
    assert out.exit_code == 0, out.output
    att = load_calibration(path)
    assert cal.attenuation_length is None and "attenuation_length_cm" not in cal.settings
    assert att.attenuation_length == 45.0 and att.hash != cal.hash  # hashed: it moves fits
    args = (events["npho"][:50], events["relative_time"][:50], events["xyzVTX"][:50])
    rec, bare = reconstruct(*args, att), reconstruct(*args, cal)
    assert (rec.position == 0).all()
    moved = np.abs(rec.branches["uvwRecoFI"] - bare.branches["uvwRecoFI"]).max(axis=0)
    assert np.all(moved > 0.01) and np.all(moved < 5.0)  # cm: another model, the same events
    bad = _run("reco", "calibrate", str(calib_file), "-o", str(path), "--attenuation-length", "0")
    assert bad.exit_code != 0 and "--attenuation-length" in bad.output


def test_cli_writes_branches_and_records_the_calibration(cal: Calibration, events: dict,
                                                         tmp_path: Path) -> None:  # fmt: skip
    write_uproot(tmp_path / "in.root", 0, events={k: v[:100] for k, v in events.items()})
    (tmp_path / "c.json").write_text(cal.to_json())
    out = _run("reco", str(tmp_path / "in.root"), "-o", str(tmp_path / "out.root"),
               "--calibration", str(tmp_path / "c.json"), "--json")  # fmt: skip
    assert out.exit_code == 0, out.output
    summary = json.loads(out.stdout)  # pure JSON on stdout
    assert summary["events"] == summary["reconstructed"] == 100
    assert summary["calibration"] == "test@3" and summary["calibration_hash"] == cal.hash
    with uproot.open(tmp_path / "out.root") as f:
        meta = {k: v[0] for k, v in f["metadata"].arrays(library="np").items()}
        cols = f["reco"].arrays(library="np")
    assert meta["calibration"] == "test@3" and meta["calibration_hash"] == cal.hash
    assert set(cols) == {"run", "event", "statusReco", *BRANCHES}
    np.testing.assert_array_equal(cols["event"], events["event"][:100])
    direct = reconstruct(events["npho"][:100], events["relative_time"][:100],
                         events["xyzVTX"][:100], cal)  # fmt: skip
    for b in BRANCHES:  # other batches: numpy's SIMD and scalar paths may differ in an ulp
        np.testing.assert_allclose(cols[b], direct.branches[b], rtol=1e-6, atol=1e-6)


def test_unreconstructable_events_are_marked_and_counted(cal: Calibration, events: dict) -> None:
    npho, time = events["npho"][:6].copy(), events["relative_time"][:6].copy()
    npho[0, :4092] = 0.0  # no inner-face signal
    npho[1] = 1e10  # every sensor dead
    time[2] = 1e10  # no sensor time at all
    rec = reconstruct(npho, time, events["xyzVTX"][:6], cal)
    counts = rec.failure_counts()
    assert counts["no_inner_signal"] == 1 and counts["all_sensors_dead"] == 1
    assert counts["no_usable_time"] == 1 and counts["fit_failed"] == 0
    for b in BRANCHES:
        assert np.all(rec.branches[b][:2] == np.float32(1e10)), b
    assert rec.branches["timeReco"][2] == np.float32(1e10)
    assert np.all(rec.branches["energyReco"][2:] < 1.0)
    assert rec.status().tolist()[:3] == [2, 1, 8]


def test_dead_sensors_are_left_out(cal: Calibration, events: dict) -> None:
    npho = events["npho"][:20].copy()
    peak = npho[:, :4092].argmax(1)
    marker, nan = npho.copy(), npho.copy()
    marker[np.arange(20), peak] = 1e10
    nan[np.arange(20), peak] = np.nan
    a = reconstruct(marker, events["relative_time"][:20], events["xyzVTX"][:20], cal)
    b = reconstruct(nan, events["relative_time"][:20], events["xyzVTX"][:20], cal)
    full = reconstruct(npho, events["relative_time"][:20], events["xyzVTX"][:20], cal)
    for k in BRANCHES:  # the marker and NaN mean the same: dead
        np.testing.assert_array_equal(a.branches[k], b.branches[k])
    ratio = a.branches["energyReco"] / full.branches["energyReco"] - 1
    # the peak holds ~0.4 % of the light; the fit restores it (left out: ~ -0.25 % of E)
    assert abs(np.median(ratio)) < 0.001 and np.all(np.abs(ratio) < 0.01)


def test_file_without_vertex_leaves_the_angle_out_said_once(cal: Calibration, events: dict,
                                                            tmp_path: Path) -> None:  # fmt: skip
    part = {k: v[:60] for k, v in events.items()}
    write_uproot(tmp_path / "a.root", 0, events=part, drop=("xyzVTX",))
    write_uproot(tmp_path / "b.root", 0, events=part, drop=("xyzVTX",))
    (tmp_path / "c.json").write_text(cal.to_json())
    inputs = [str(tmp_path / "a.root"), str(tmp_path / "b.root")]
    out = _run("reco", *inputs, "-o", str(tmp_path / "o.root"), "--calibration",
               str(tmp_path / "c.json"), "--json")  # fmt: skip
    assert out.exit_code == 0, out.output
    summary = json.loads(out.stdout)
    assert summary["incomplete"]["no_vertex"] == 120 and summary["reconstructed"] == 120
    assert sum("a.root has no xyzVTX" in n for n in summary["notes"]) == 1
    assert out.stderr.count("no xyzVTX") == 2  # once per file
    with uproot.open(tmp_path / "o.root") as f:
        cols = f["reco"].arrays(["emiAngReco", "energyReco", "timeReco"], library="np")
    assert np.all(cols["emiAngReco"] == np.float32(1e10))
    assert np.all(cols["energyReco"] < 1) and np.all(np.abs(cols["timeReco"]) < 100)


def test_calibration_of_another_geometry_is_refused(cal: Calibration, events: dict,
                                                   tmp_path: Path) -> None:  # fmt: skip
    other = replace(cal, geometry="xecgeo-0123456789abcdef")
    (tmp_path / "other.json").write_text(other.to_json())
    write_uproot(tmp_path / "in.root", 0, events={k: v[:10] for k, v in events.items()})
    out = _run("reco", str(tmp_path / "in.root"), "-o", str(tmp_path / "out.root"),
               "--calibration", str(tmp_path / "other.json"))  # fmt: skip
    assert out.exit_code != 0
    assert "geometry xecgeo-0123456789abcdef" in out.output and "xec reco calibrate" in out.output
    assert out.output.strip().splitlines()[-1].startswith("Error: ")
    assert not list(tmp_path.glob("out.root*"))
    sim = _run("simulate", "-n", "5", "-o", str(tmp_path / "s.root"), "--reco",
               "--calibration", str(tmp_path / "other.json"), "-q")  # fmt: skip
    assert sim.exit_code != 0 and "geometry" in sim.output and not (tmp_path / "s.root").exists()


def test_simulate_reco_writes_the_branches(tmp_path: Path) -> None:
    out = _run("simulate", "-n", "40", "--seed", "5", "-o", str(tmp_path / "s.root"), "--reco",
               "-q")  # fmt: skip
    assert out.exit_code == 0, out.output
    with uproot.open(tmp_path / "s.root") as f:
        meta = json.loads(str(f["xec_sim"]))
        cols = f["tree"].arrays(["energyReco", "energyTruth", "emiAngReco", "statusReco"],
                                library="np")  # fmt: skip
    cal = default_calibration()
    assert meta["reco_calibration"] == f"{cal.id} {cal.hash}"
    assert np.all(cols["statusReco"] == 0)
    assert abs(np.median(cols["energyReco"] / cols["energyTruth"]) - 1) < 0.02


def test_analysis_takes_the_reco_angle_branch(events: dict) -> None:
    from xectrain.analysis.predictions import reference

    cols = {k: events[k][:5] for k in ("xyzVTX", "emiAng")}
    cols["emiAngReco"] = events["emiAng"][:5] + np.float32(0.5)
    ref, what = reference("angle", cols, "reco")
    assert what == "reco (emiAngReco)"
    np.testing.assert_allclose(ref, cols["emiAngReco"])


@pytest.mark.slow
def test_analyze_against_reco_on_simulated_reco(tmp_path: Path) -> None:
    """simulate --reco -> infer -> analyze --against reco: every task finds its reco."""
    from xecdata.schemes import get_scheme
    from xecmodel import TaskSpec, create_model, export_onnx

    tasks = [TaskSpec(t) for t in ("energy", "timing", "uvwFI", "angle")]
    net = create_model("regressor", "tiny", scheme=get_scheme("new@1"), tasks=tasks)
    export_onnx(net.eval(), tmp_path / "m.onnx", exporter="torchscript")
    assert _run("simulate", "-n", "48", "--seed", "8", "-o", str(tmp_path / "s.root"), "--reco",
                "-q").exit_code == 0  # fmt: skip
    inf = _run("infer", str(tmp_path / "m.onnx"), str(tmp_path / "s.root"), "-o",
               str(tmp_path / "p.root"))  # fmt: skip
    assert inf.exit_code == 0, inf.output
    out = _run("analyze", str(tmp_path / "p.root"), "--against", "reco", "--json", "-o",
               str(tmp_path / "a"))  # fmt: skip
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)["tasks"]
    refs = {t: report[t]["reference"] for t in report}
    assert refs == {"energy": "reco (energyReco)", "timing": "reco (timeReco)",
                    "uvwFI": "reco (uvwRecoFI)", "angle": "reco (emiAngReco)"}  # fmt: skip
    assert all(report[t]["events"] == 48 for t in report)


def test_a_store_reconstructs_like_its_root_file(events: dict, tmp_path: Path) -> None:
    write_uproot(tmp_path / "in.root", 0, events={k: v[:64] for k, v in events.items()})
    store = tmp_path / "s.xec.zarr"
    ing = _run("ingest", str(tmp_path / "in.root"), "-o", str(store), "--scheme", "new",
               "--keep-raw")  # fmt: skip
    assert ing.exit_code == 0, ing.output
    for src, out in ((tmp_path / "in.root", "a.root"), (store, "b.root")):
        res = _run("reco", str(src), "-o", str(tmp_path / out), "-q")
        assert res.exit_code == 0, res.output
    with uproot.open(tmp_path / "a.root") as a, uproot.open(tmp_path / "b.root") as b:
        ra, rb = a["reco"].arrays(library="np"), b["reco"].arrays(library="np")
    for name in (*BRANCHES, "run", "event", "statusReco"):  # raw arrays: the same numbers
        np.testing.assert_array_equal(ra[name], rb[name])
