"""Every model kind through the CLI: checkpoint -> `xec export onnx` -> `xec infer` on a ROOT
file -> `xec analyze`, the columns checked against the outputs the kind declares."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import uproot
from click.testing import CliRunner, Result

from tests.rootfiles import write_uproot
from xec_cli.main import main
from xecdata.schemes import get_scheme
from xecmodel import TaskSpec, create_model, read_onnx_metadata
from xecmodel.registry import KINDS
from xectrain.checkpoint import make_checkpoint, save_checkpoint

N_EVENTS = 12
TASKS = [TaskSpec("angle", transform="identity"), TaskSpec("energy", transform="identity")]


def _run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("events") / "a.root"
    write_uproot(path, N_EVENTS, seed=1)
    return path


def _export(ckpt: Path, out: Path) -> Path:
    res = _run("export", "onnx", ckpt, "-o", out, "--exporter", "torchscript")
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module", params=sorted(KINDS))
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model of each kind, saved as a checkpoint and exported by the CLI."""
    kind = request.param
    tmp = tmp_path_factory.mktemp(kind)
    tasks = TASKS if kind == "regressor" else None
    model = create_model(kind, "tiny", scheme=get_scheme("new@1"), tasks=tasks)
    ckpt = make_checkpoint(kind, model.state_dict(), model_config=model.model_config, epoch=1)
    return _export(save_checkpoint(tmp / "checkpoint_best.pth", ckpt), tmp / "m.onnx")


def _read(path: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    with uproot.open(path) as f:
        return f["predictions"].arrays(library="np"), f["metadata"].arrays(library="np")


def test_infer_writes_every_declared_output(exported: Path, events: Path, tmp_path: Path) -> None:
    meta = read_onnx_metadata(exported)
    kind = KINDS[meta["model_kind"]]
    declared = kind.outputs(meta["model_config"])
    assert meta["outputs"] == [o.name for o in declared]
    assert meta["output_units"] == {o.name: o.units for o in declared}
    res = _run("infer", exported, events, "-o", tmp_path / "p.root")
    assert res.exit_code == 0, res.output
    cols, info = _read(tmp_path / "p.root")
    assert json.loads(str(info["output_specs"][0])) == [o.to_dict() for o in declared]
    for o in declared:
        if o.column is None:
            assert o.name not in cols
            continue
        assert cols[o.column].shape == (N_EVENTS, *o.shape), o.name
    with uproot.open(events) as f:
        raw = f["tree"].arrays(["npho"], library="np")["npho"]  # photons, 1e10 = dead
    if kind.takes_mask:
        dead = raw >= 1e9
        assert dead.any() and np.array_equal(cols["inpainted"], dead)
        # untouched up to the float32 round trip through the scheme
        assert np.allclose(cols["npho"][~dead], raw[~dead], rtol=1e-3, atol=1e-3)
        assert np.isfinite(cols["npho"][dead]).all()  # filled
    else:
        assert np.isfinite(cols["pred_angle"]).all() and "inpainted" not in cols


def test_analyze_every_kind(exported: Path, events: Path, tmp_path: Path) -> None:
    meta = read_onnx_metadata(exported)
    takes_mask = "mask" in meta["inputs"]
    pred = tmp_path / "p.root"
    extra = ["--mask-fraction", "0.1", "--seed", "4"] if takes_mask else []
    res = _run("infer", exported, events, "-o", pred, *extra)
    assert res.exit_code == 0, res.output
    res = _run("analyze", pred, "--json", "-o", tmp_path / "a")
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    if not takes_mask:
        assert sorted(report["tasks"]) == ["angle", "energy"] and report["events"] == N_EVENTS
        assert report["tasks"]["energy"]["reference"] == "truth (energyTruth)"
        assert np.isfinite(report["tasks"]["energy"]["metrics"]["energy_res_68pct"])
        return
    cols, _ = _read(pred)
    scored = cols["inpainted"] & np.isfinite(cols["measured_time"]) & np.isfinite(cols["time"])
    assert 0.05 < scored.sum() / np.isfinite(cols["measured_time"]).sum() < 0.15
    assert report["kind"] == meta["model_kind"] and report["channels"] == ["npho", "time"]
    assert sum(f["time"]["n"] for f in report["faces"].values()) == scored.sum()
    assert (tmp_path / "a" / "recon_analysis.pdf").read_bytes().startswith(b"%PDF")


def test_refusals_name_the_fix(exported: Path, events: Path, tmp_path: Path) -> None:
    meta = read_onnx_metadata(exported)
    pred = tmp_path / "p.root"
    if "mask" not in meta["inputs"]:
        res = _run("infer", exported, events, "-o", pred, "--mask-fraction", "0.1")
        assert res.exit_code != 0 and "--mask-fraction applies to models that fill" in res.output
        assert not pred.exists()
        return
    assert _run("infer", exported, events, "-o", pred).exit_code == 0  # dead sensors only
    res = _run("analyze", pred)
    assert res.exit_code != 0 and "run `xec infer` with --mask-fraction" in res.output
    assert res.output.startswith("Error:")


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_trained_model_of_every_kind_serves(kind: str, events: Path, tmp_path: Path) -> None:
    """As a new user would: train a tiny model, export it, infer on a ROOT file, analyze."""
    from tests.trainhelpers import tiny_config, toy_loaders
    from xectrain.run.fit import train

    result = train(tiny_config(kind, tmp_path, "tracking.enabled=false", "training.epochs=1"),
                   toy_loaders(16, 8))  # fmt: skip
    model = _export(result.run_dir / "checkpoint_best.pth", tmp_path / "m.onnx")
    extra = [] if kind == "regressor" else ["--mask-fraction", "0.2"]
    res = _run("infer", model, events, "-o", tmp_path / "p.root", *extra)
    assert res.exit_code == 0, res.output
    res = _run("analyze", tmp_path / "p.root", "--json", "-o", tmp_path / "a")
    assert res.exit_code == 0, res.output
