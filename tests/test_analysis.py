"""`xec analyze`: inference outputs against truth or the conventional reconstruction."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import uproot
from click.testing import CliRunner, Result

from xec_cli.main import main
from xecdata.sim.kinematics import emission_angles
from xectrain.evaluation.metrics import task_metrics


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _write(path: Path, n: int = 400, kind: str = "regressor") -> dict[str, np.ndarray]:
    """An `xec infer`-shaped file: predictions with truth and reco branches, and metadata."""
    rng = np.random.default_rng(5)
    vtx = rng.normal(0, 0.5, (n, 3))
    direction = rng.normal(0, 1, (n, 3)) + np.array([-3.0, 0, 0])
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    energy = rng.uniform(0.02, 0.055, n)
    reco = energy * (1 + rng.normal(0, 0.02, n))
    reco[[3, 50, 77]] = 1e10  # reconstruction failed
    fi = vtx + 70 * direction
    fi[[10, 11]] = 1e10  # no first-interaction point: no reco angle either
    uvw = rng.normal(0, 10, (n, 3))
    uvw_reco = uvw + rng.normal(0, 0.5, (n, 3))
    uvw_reco[[5, 6]] = 1e10
    cols = {
        "entry": np.arange(n, dtype=np.int64),
        "energyTruth": energy.astype(np.float32),
        "energyReco": reco.astype(np.float32),
        "xyzVTX": vtx.astype(np.float32),
        "xyzRecoFI": fi.astype(np.float32),
        "uvwTruth": uvw.astype(np.float32),
        "uvwRecoFI": uvw_reco.astype(np.float32),
        "timeReco": np.full(n, 1e10, np.float32),  # never reconstructed
        "pred_timing": rng.normal(0, 1, (n, 1)).astype(np.float32),
        "emiAng": (emission_angles(direction) + np.array([0.2, 0.0])).astype(np.float32),
        "pred_energy": (energy * (1 + rng.normal(0, 0.01, n)))[:, None].astype(np.float32),
        "pred_angle": (emission_angles(direction) + np.array([0.5, -0.25])).astype(np.float32),
        "pred_uvwFI": (uvw + rng.normal(0, 1, (n, 3))).astype(np.float32),
    }
    with uproot.recreate(path) as f:
        f["predictions"] = cols
        f["metadata"] = {
            "model_kind": np.array([kind]),
            "tasks": np.array(["angle,energy,timing,uvwFI"]),
            "n_events": np.array([n]),
        }
    return cols


def test_against_reco_and_truth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from xectrain.artifacts import resolution

    labels: list[str] = []
    real_save = resolution.save

    def save(fig, path):  # records the axis labels of every figure
        labels.extend(a.get_xlabel() for a in fig.axes)
        return real_save(fig, path)

    monkeypatch.setattr(resolution, "save", save)
    cols = _write(tmp_path / "pred.root")
    out = _run("analyze", str(tmp_path / "pred.root"), "--against", "reco", "--json",
               "-o", str(tmp_path / "a"), "--suffix", "_r")  # fmt: skip
    assert out.exit_code == 0, out.output
    rep = json.loads(out.output)
    assert rep["events"] == 400
    e = rep["tasks"]["energy"]
    assert e["reference"] == "reco (energyReco)" and e["events"] == 397 and e["left_out"] == 3
    ok = cols["energyReco"] < 1e9
    want = task_metrics("energy", cols["pred_energy"][ok].astype(np.float64),
                        cols["energyReco"][ok, None].astype(np.float64))  # fmt: skip
    for k, v in want.items():
        assert e["metrics"][k] == pytest.approx(v, rel=1e-9, abs=1e-12), k
    a = rep["tasks"]["angle"]
    assert a["reference"].startswith("reco (direction xyzVTX -> xyzRecoFI)")
    assert a["metrics"]["theta_bias"] == pytest.approx(0.5, abs=1e-3)  # float32 positions
    assert a["metrics"]["phi_bias"] == pytest.approx(-0.25, abs=1e-3)
    assert a["events"] == 398 and a["left_out"] == 2  # the two without a first interaction
    u = rep["tasks"]["uvwFI"]
    assert u["reference"] == "reco (uvwRecoFI)" and u["left_out"] == 2
    assert rep["tasks"]["timing"] == {"skipped": "all 400 reco (timeReco) references are invalid"}
    assert "warning" not in e and "warning" not in a

    assert (tmp_path / "a" / "analysis_energy_r.pdf").read_bytes().startswith(b"%PDF")
    assert (tmp_path / "a" / "analysis_angle_r.pdf").is_file()
    assert json.loads((tmp_path / "a" / "analysis_r.json").read_text()) == rep
    assert "reco θ [deg]" in labels and "θ_pred − θ_reco [deg]" in labels
    assert "E_pred − E_reco [MeV]" in labels and not any("true" in x for x in labels)
    labels.clear()

    out = _run("analyze", str(tmp_path / "pred.root"), "--tasks", "angle", "--json",
               "-o", str(tmp_path / "b"))  # fmt: skip
    rep = json.loads(out.output)
    assert (
        list(rep["tasks"]) == ["angle"] and rep["tasks"]["angle"]["reference"] == "truth (emiAng)"
    )
    assert rep["tasks"]["angle"]["metrics"]["theta_bias"] == pytest.approx(0.3, abs=1e-4)
    assert "true θ [deg]" in labels


def test_refusals(tmp_path: Path) -> None:
    _write(tmp_path / "inp.root", kind="inpainter")
    out = _run("analyze", str(tmp_path / "inp.root"))
    assert out.exit_code != 0 and "holds inpainter outputs" in out.output
    _write(tmp_path / "pred.root")
    out = _run("analyze", str(tmp_path / "pred.root"), "--tasks", "n_gamma")
    assert out.exit_code != 0 and "['n_gamma'] not predicted" in out.output
    (tmp_path / "junk.root").write_bytes(b"junk")
    out = _run("analyze", str(tmp_path / "junk.root"))
    assert out.exit_code != 0 and "not a readable ROOT file" in out.output


def _recon_file(path: Path, layout: str, events: int, seed: int, channels=("npho", "time")):
    """Predictions with known residuals: npho +10 % on the inner face, -5 % elsewhere; time
    +0.5 ns; 30 % of the sensors masked, 2 % of those invalid before masking."""
    from xecdata.geometry import sensor_table
    from xectrain.artifacts.rootio import PredictionRootWriter

    rng = np.random.default_rng(seed)
    inner = sensor_table().face == 0
    truth = np.empty((events, 4760, 2), np.float32)
    truth[..., 0], truth[..., 1] = 100.0, 20.0
    pred = truth.copy()
    pred[..., 0] = np.where(inner, 110.0, 95.0)
    pred[..., 1] += 0.5
    mask = rng.random((events, 4760)) < 0.3
    invalid = mask & (rng.random((events, 4760)) < 0.02)
    meta = {"kind": "mae" if layout == "event" else "inpainter"}
    with PredictionRootWriter(path, layout, channels, meta) as w:
        w.write(truth, pred, mask & ~invalid if layout == "sensor" else mask,
                np.arange(events), invalid=invalid)  # fmt: skip
    return mask & ~invalid, inner


def test_reconstruction_files_per_face_and_channel(tmp_path: Path) -> None:
    m0, inner = _recon_file(tmp_path / "r0.root", "event", 6, seed=0)
    m1, _ = _recon_file(tmp_path / "r1.root", "event", 4, seed=1)
    out = _run("analyze", str(tmp_path / "r0.root"), str(tmp_path / "r1.root"), "--json",
               "-o", str(tmp_path / "a"))  # fmt: skip
    assert out.exit_code == 0, out.output
    rep = json.loads(out.output)
    assert rep["kind"] == "mae" and rep["channels"] == ["npho", "time"]
    n_inner = int(m0[:, inner].sum() + m1[:, inner].sum())
    n_outer = int(m0[:, ~inner].sum() + m1[:, ~inner].sum())
    f = rep["faces"]
    assert f["inner"]["npho"] == pytest.approx({"n": n_inner, "bias": 10, "mae": 10, "rmse": 10})
    assert sum(f[k]["npho"]["n"] for k in f if k != "inner") == n_outer
    assert f["outer"]["npho"]["bias"] == pytest.approx(-5.0)
    assert f["top"]["time"] == pytest.approx(
        {"n": f["top"]["npho"]["n"], "bias": 0.5, "mae": 0.5, "rmse": 0.5}, rel=1e-5
    )
    assert (tmp_path / "a" / "recon_analysis.pdf").read_bytes().startswith(b"%PDF")

    _recon_file(tmp_path / "s.root", "sensor", 5, seed=2, channels=("npho",))
    out = _run("analyze", str(tmp_path / "s.root"), "--json", "-o", str(tmp_path / "b"))
    rep = json.loads(out.output)
    assert rep["kind"] == "inpainter" and rep["channels"] == ["npho"]
    assert rep["faces"]["inner"]["npho"]["bias"] == pytest.approx(10.0)
    out = _run("analyze", str(tmp_path / "r0.root"), str(tmp_path / "s.root"))
    assert out.exit_code != 0 and "differ in kind/layout/channels" in out.output
    out = _run("analyze", str(tmp_path / "r0.root"), "--against", "reco")
    assert out.exit_code != 0 and "--against and --tasks apply to xec infer outputs" in out.output


def test_a_reference_in_other_units_is_flagged(tmp_path: Path) -> None:
    cols = _write(tmp_path / "pred.root")
    with uproot.update(tmp_path / "pred.root") as f:
        del f["predictions"]
        f["predictions"] = cols | {"energyReco": cols["energyReco"] * 1000}  # MeV, not GeV
    out = _run("analyze", str(tmp_path / "pred.root"), "--against", "reco", "--tasks", "energy",
               "-o", str(tmp_path / "a"))  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "WARNING: the reference is ~1e+03 times the predictions: different units?" in out.output
    assert "reco (energyReco) should be in the task's GeV" in out.output
