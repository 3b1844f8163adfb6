"""`xec validate CKPT --root FILE_OR_DIR...`: the same events through a store and straight from
the ROOT files give the same batches, metrics, CSVs and validation ROOT file."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import uproot
from click.testing import CliRunner, Result

from tests.rootfiles import write_uproot
from xec_cli.main import main
from xecdata.loaders import open_loader
from xecdata.loaders.rootfiles import RootFilesLoader, RootInputs
from xecdata.schemes import get_scheme
from xecdata.store import open_store
from xecmodel import TASKS
from xectrain.checkpoint import load_checkpoint, make_checkpoint, save_checkpoint
from xectrain.config import config_from_dict, load_config, to_dict
from xectrain.engine.steps import StepOps, build_model
from xectrain.evaluation.passes import validate_regressor
from xectrain.serving.checkpoints import model_from_checkpoint, validate_checkpoint

CONFIG = Path(__file__).parents[1] / "configs" / "regressor.yaml"


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two ROOT files (20 fixed-size + 13 jagged events, several baskets) ingested into a store
    whose train split holds every event, and an (untrained) regressor checkpoint `r/ckpt.pth`:
    equality of the two paths needs no training."""
    root = tmp_path_factory.mktemp("vroot")
    (root / "in").mkdir()
    write_uproot(root / "in" / "a.root", 20, seed=1, baskets=3)
    write_uproot(root / "in" / "b.root", 13, seed=2, jagged=True, baskets=2)
    out = _run("ingest", str(root / "in"), "-o", str(root / "s.xec.zarr"), "--workers", "1",
               "--quiet", "--val-fraction", "0", "--chunk-events", "8")  # fmt: skip
    assert out.exit_code == 0, out.output
    off = ["tasks.angle.enabled=false", "tasks.timing.enabled=false"]
    cfg = load_config("regressor", CONFIG, overrides=[*off, "checkpoint.worst_events=1"])
    scheme = get_scheme(cfg.data.scheme)
    torch.manual_seed(0)
    model = build_model(cfg, scheme)
    st = open_store(root / "s.xec.zarr")
    model.fit_transforms({task: st.read_array(TASKS[task].branch, 0, 33).reshape(33, -1)
                          for task in ("energy", "uvwFI")})  # fmt: skip
    ids = {"id": scheme.id, "hash": scheme.hash}
    ckpt = make_checkpoint("regressor", model.state_dict(), model_config=model.model_config,
                           config=to_dict(cfg), epoch=1, scheme=ids,
                           transforms=model.model_config.get("tasks"))  # fmt: skip
    (root / "r").mkdir()
    save_checkpoint(root / "r" / "ckpt.pth", ckpt)
    return root


def test_root_batches_equal_the_store_loader(data: Path) -> None:
    """Bit-identical sensors, equal targets and the same event indices, batch by batch,
    across file boundaries (batches of 8 over files of 20 and 13 events)."""
    scheme = get_scheme("new@1")
    targets = ["energyTruth", "uvwTruth", "run", "event"]
    files = RootInputs((str(data / "in"),)).check()
    assert [Path(f.path).name for f in files] == ["a.root", "b.root"]
    roots = RootFilesLoader(files, scheme, 8, targets=targets, read_events=6)
    store = open_loader(data / "s.xec.zarr", scheme="new@1", split="train", batch_size=8,
                        backend="cpu", shuffle=False, drop_last=False, targets=targets)  # fmt: skip
    assert len(roots) == len(store) == 5
    n = 0
    for got, want in zip(roots, store, strict=True):
        assert torch.equal(got.sensors, want.sensors)
        assert torch.equal(got.index, want.index)
        for name in targets:
            assert got.targets[name].dtype == want.targets[name].dtype, name
            assert torch.equal(got.targets[name], want.targets[name]), name
        n += len(got)
    assert n == 33 and roots.info.store.read_rows("event", np.array([19, 20])).tolist() == [19, 0]


def test_root_metrics_equal_the_store(data: Path) -> None:
    """The validation pass itself: the same metrics and predictions from both sources."""
    ckpt = load_checkpoint(data / "r" / "ckpt.pth")
    cfg = config_from_dict(ckpt["config"])
    model, ops = model_from_checkpoint(ckpt), StepOps(cfg)
    targets = [*ops.targets(), "run", "event"]
    store = open_loader(data / "s.xec.zarr", scheme="new@1", split="train", batch_size=12,
                        backend="cpu", shuffle=False, drop_last=False, targets=targets)  # fmt: skip
    files = RootInputs((str(data / "in" / "*.root"),)).check()
    roots = RootFilesLoader(files, model.scheme, 12, targets=targets)
    a, b = (validate_regressor(model, ops, ld, len(ld), contextlib.nullcontext, model.scheme, 1)
            for ld in (store, roots))  # fmt: skip
    assert a.metrics.keys() == b.metrics.keys() and "val/loss_energy" in a.metrics
    for key, value in a.metrics.items():
        assert b.metrics[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
    for task, (true, pred) in a.results.items():
        np.testing.assert_array_equal(b.results[task][0], true)
        np.testing.assert_allclose(b.results[task][1], pred, rtol=1e-6)
    assert np.array_equal(a.ids["event_index"], b.ids["event_index"])
    assert (
        a.worst[0].index == b.worst[0].index and a.worst[0].truth.keys() == b.worst[0].truth.keys()
    )


@pytest.mark.slow
def test_validate_root_matches_the_store(data: Path) -> None:
    """Metrics, the validation ROOT file (predictions, ids, every truth branch) and the CSV /
    PDF set agree between --store (all events) and --root on the same files."""
    ckpt = str(data / "r" / "ckpt.pth")
    out = _run("validate", ckpt, "--store", str(data / "s.xec.zarr"), "--split", "train",
               "--batch-size", "8", "--device", "cpu", "--tasks", "energy", "-o",
               str(data / "vs"))  # fmt: skip
    assert out.exit_code == 0, out.output
    out = _run("validate", ckpt, "--root", str(data / "in" / "a.root"), "--root",
               str(data / "in" / "b.root"), "--batch-size", "8", "--device", "cpu",
               "--tasks", "energy", "-o", str(data / "vr"))  # fmt: skip
    assert out.exit_code == 0, out.output
    m_store = json.loads((data / "vs" / "metrics.json").read_text())
    m_root = json.loads((data / "vr" / "metrics.json").read_text())
    assert set(m_store) == set(m_root) and any("energy" in k for k in m_root)
    for key, value in m_store.items():
        assert m_root[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key
    with uproot.open(data / "vs" / "validation_results_r_train.root") as f:
        s = f["predictions"].arrays(library="np")
    with uproot.open(data / "vr" / "validation_results_r_root.root") as f:
        r = f["predictions"].arrays(library="np")
    assert set(s) == set(r) and len(r["event_index"]) == 33
    for name in ("event_index", "run", "event", "true_energy", "xyzVTX", "emiAng", "nGamma"):
        np.testing.assert_array_equal(r[name], s[name], err_msg=name)
    np.testing.assert_allclose(r["pred_energy"], s["pred_energy"], rtol=1e-5)

    def made(folder: str, split: str) -> list[str]:
        found = (data / folder).rglob("*")
        return sorted(str(p.relative_to(data / folder)).replace(split, "SPLIT")
                      for p in found if p.suffix in (".csv", ".pdf"))  # fmt: skip

    assert made("vr", "_root") == made("vs", "_train")
    assert {"predictions_energy_rSPLIT.csv", "resolution_energy_rSPLIT.pdf"} <= set(
        made("vr", "_root")
    )


def test_validate_root_refusals(data: Path, tmp_path: Path) -> None:
    ckpt = str(data / "r" / "ckpt.pth")
    out = CliRunner().invoke(main, ["validate", ckpt])
    assert out.exit_code != 0 and "give either --store STORE or --root" in out.output
    write_uproot(tmp_path / "nt.root", 20, seed=3, drop=("energyTruth",))
    out = CliRunner().invoke(main, ["validate", ckpt, "--root", str(tmp_path / "nt.root")])
    assert out.exit_code != 0
    assert "nt.root has no branch 'energyTruth'" in out.output and "--tasks" in out.output
    out = CliRunner().invoke(main, ["validate", ckpt, "--root", str(tmp_path / "none*.root")])
    assert (
        out.exit_code != 0 and "none*.root" in out.output and "matches no ROOT file" in out.output
    )


def _events(path: Path) -> dict[str, np.ndarray]:
    """The per-event tree of a prediction file (the one that is not `metadata`)."""
    with uproot.open(path) as f:
        names = [k for k, c in f.classnames().items() if c == "TTree" and "metadata" not in k]
        return f[names[0]].arrays(library="np")


@pytest.mark.slow  # two MAE passes: ~12 s of CPU
def test_mae_validate_root_matches_the_store(data: Path) -> None:
    """An MAE: the same masked-reconstruction metrics and streamed ROOT predictions (same
    validation masks: the batches are the same) from the store and from the files."""
    cfg = load_config("mae", CONFIG.parent / "mae.yaml")
    scheme = get_scheme(cfg.data.scheme)
    torch.manual_seed(1)
    model = build_model(cfg, scheme)
    ids = {"id": scheme.id, "hash": scheme.hash}
    ckpt = make_checkpoint("mae", model.state_dict(), model_config=model.model_config,
                           config=to_dict(cfg), epoch=1, scheme=ids)  # fmt: skip
    (data / "m").mkdir()
    path = save_checkpoint(data / "m" / "ckpt.pth", ckpt)
    a = validate_checkpoint(path, str(data / "s.xec.zarr"), "train", data / "ms", 16,
                            device="cpu")  # fmt: skip
    b = validate_checkpoint(path, RootInputs((str(data / "in"),)), "root", data / "mr", 16,
                            device="cpu")  # fmt: skip
    assert a.keys() == b.keys() and "val/mae_npho" in a
    for key, value in a.items():
        assert b[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
    s = _events(data / "ms" / "mae_predictions_m_train.root")
    r = _events(data / "mr" / "mae_predictions_m_root.root")
    assert s.keys() == r.keys() and len(r["event_idx"]) == 33 and r["event"][20] == 0
    for name in s:
        np.testing.assert_array_equal(r[name], s[name], err_msg=name)
