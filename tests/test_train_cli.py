"""The training verbs end to end on a simulated store: train, validate, export, infer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest
import uproot
import yaml
from click.testing import CliRunner, Result
from onnx import TensorProto, helper

from xec_cli.main import main


def _run(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """600 simulated events in two ROOT files, ingested into a store."""
    root = tmp_path_factory.mktemp("demo")
    out = _run("simulate", "-n", "600", "-o", str(root / "sim"), "--events-per-file", "300",
               "--energy", "flat", "--seed", "3")  # fmt: skip
    assert out.exit_code == 0, out.output
    out = _run("ingest", str(root / "sim"), "-o", str(root / "store.xec.zarr"), "--workers", "1",
               "--quiet", "--val-fraction", "0.3", "--chunk-events", "64")  # fmt: skip
    assert out.exit_code == 0, out.output
    return root


def _train_args(demo: Path, *extra: str) -> list[str]:
    return [
        "train", "regressor", "-c", str(Path(__file__).parents[1] / "configs" / "regressor.yaml"),
        "--store", str(demo / "store.xec.zarr"), "--epochs", "1", "--batch-size", "16",
        "--set", f"checkpoint.dir={demo / 'artifacts'}", "--set", "training.device=cpu",
        "--set", "data.max_train_batches=3", "--set", "data.max_val_batches=2",
        "--set", f"tracking.uri=sqlite:///{demo / 'mlruns.db'}",
        "--set", f"tracking.artifact_location={demo / 'mlartifacts'}",
        "--set", "checkpoint.worst_events=1", "--set", "training.transform_fit_batches=3",
        *extra,
    ]  # fmt: skip


@pytest.fixture
def probe_task() -> Iterator[str]:
    """A task added by one register_task call for one test (a scalar on the store's timeTruth,
    with its own reweighting key and the generic resolution plot), then removed."""
    from xecdata.tasks import TASKS, Display, Reweight, Task, register_task

    task = register_task(Task("t_probe", "regression", "timeTruth", 1, "ns", ("t_probe",),
                              ("t_probe",), Display("tp", "ps", 1000.0, 0), "l1", "scalar",
                              reweight=Reweight("tp", (8,)), plot="scalar"))  # fmt: skip
    yield task.name
    TASKS.pop(task.name)


def test_train_validate_export_infer_analyze(demo: Path, probe_task: str) -> None:
    """The training verbs in a row on two catalogue tasks and one registered by the test
    (trained with reweighting): nothing else is needed for a new task to go through."""
    tasks = f"energy,uvwFI,{probe_task}"
    out = _run(*_train_args(demo, "--tasks", tasks, "--run-name", "cli",
                            "--set", f"reweighting.{probe_task}.enabled=true",
                            "--set", "checkpoint.save_artifacts=false"))  # fmt: skip
    assert out.exit_code == 0, out.output
    run_dir = demo / "artifacts" / "cli"
    assert "mlflow ui --backend-store-uri sqlite:///" in out.output
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["tasks"]["energy"]["enabled"] and not saved["tasks"]["angle"]["enabled"]
    assert saved["tasks"][probe_task]["enabled"] and saved["reweighting"][probe_task]["enabled"]
    ckpt = str(run_dir / "checkpoint_best.pth")

    out = _run("validate", ckpt, "--store", str(demo / "store.xec.zarr"), "--max-batches", "1",
               "--batch-size", "16", "-o", str(demo / "val"))  # fmt: skip
    assert out.exit_code == 0, out.output
    metrics = json.loads((demo / "val" / "metrics.json").read_text())
    assert np.isfinite(metrics["val/energy_res_68pct"]) and "val/uvw_dist_68pct" in metrics
    assert np.isfinite(metrics[f"val/{probe_task}_res_68pct"])
    for task in ("energy", probe_task):
        assert (demo / "val" / f"resolution_{task}_cli_val.pdf").is_file()

    model = demo / "cli.onnx"
    out = _run("export", "onnx", ckpt, "-o", str(model), "--exporter", "torchscript")
    assert out.exit_code == 0, out.output
    files = sorted((demo / "sim").glob("*.root"))
    out = _run("infer", str(model), str(files[0]), str(demo / "store.xec.zarr"),
               "-o", str(demo / "pred.root"), "--batch-size", "128")  # fmt: skip
    assert out.exit_code == 0, out.output
    with uproot.open(demo / "pred.root") as f:
        pred = f["predictions"].arrays(library="np")
        meta = f["metadata"].arrays(library="np")
    assert len(pred["entry"]) == 300 + 600
    assert str(meta["tasks"][0]) == tasks and str(meta["scheme_id"][0]) == "new@1"
    from_root, from_store = pred["pred_energy"][:300], pred["pred_energy"][300:600]
    assert np.allclose(from_root, from_store, rtol=1e-3)  # same events, file vs store
    assert np.array_equal(pred["event"][:300], pred["event"][300:600])

    out = _run("analyze", str(demo / "pred.root"), "-o", str(demo / "an"), "--json")
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)["tasks"][probe_task]
    assert report["reference"] == "truth (timeTruth)" and report["events"] == 900
    res = pred[f"pred_{probe_task}"][:, 0].astype(np.float64) - pred["timeTruth"]
    assert report["metrics"][f"{probe_task}_bias"] == pytest.approx(res.mean(), rel=1e-4)
    assert (demo / "an" / f"analysis_{probe_task}.pdf").is_file()


def test_train_flags_and_errors(demo: Path) -> None:
    out = _run(*_train_args(demo, "--dry-run", "--tasks", "angle,timing", "--lr", "2e-4"))
    assert out.exit_code == 0, out.output
    cfg = yaml.safe_load(out.output)
    assert cfg["training"]["lr"] == 2e-4 and cfg["tasks"]["timing"]["enabled"]
    assert not cfg["tasks"]["energy"]["enabled"]
    out = CliRunner().invoke(main, _train_args(demo, "--tasks", "angel"))
    assert out.exit_code != 0 and "unknown task(s) ['angel']" in out.output
    out = CliRunner().invoke(main, _train_args(demo, "--set", "training.shceduler=cosine"))
    assert out.exit_code != 0 and "did you mean 'scheduler'?" in out.output
    out = _run("train", "inpainter", "--options")
    assert "model.mask_ratio (float; default 0.05)" in out.output


def test_infer_refuses_what_it_cannot_serve(demo: Path, tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )  # fmt: skip
    foreign = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph), str(foreign))
    store = str(demo / "store.xec.zarr")
    out = CliRunner().invoke(main, ["infer", str(foreign), store, "-o", str(tmp_path / "o.root")])
    assert out.exit_code != 0 and "not an xec model" in out.output
    assert not (tmp_path / "o.root").exists()


def test_mae_on_the_store_and_validate(demo: Path) -> None:
    from xectrain.config import load_config
    from xectrain.run.fit import train

    cfg = load_config("mae", overrides=[
        f"data.store={demo / 'store.xec.zarr'}", f"checkpoint.dir={demo / 'artifacts'}",
        "tracking.enabled=false", "tracking.run_name=mae", "training.device=cpu",
        "training.epochs=1", "data.batch_size=16", "data.max_train_batches=2",
        "data.max_val_batches=1", "checkpoint.save_artifacts=false",
    ])  # fmt: skip
    res = train(cfg)
    assert 0.5 < res.metrics["val/actual_mask_ratio"] <= 0.6
    out = _run("validate", str(res.run_dir / "checkpoint_best.pth"), "--store",
               str(demo / "store.xec.zarr"), "--max-batches", "1", "--batch-size", "16",
               "-o", str(demo / "mae_val"))  # fmt: skip
    assert out.exit_code == 0, out.output
    with uproot.open(demo / "mae_val" / "mae_predictions_mae_val.root") as f:
        assert f["predictions"].num_entries == 16
        assert f["predictions"]["truth_npho"].array(library="np").shape == (16, 4760)


def test_train_on_a_user_scheme_known_only_to_the_store(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store ingested with a scheme file trains by its id alone: the definition comes from
    the store's metadata, not from a registration in this process."""
    from xecdata.schemes import get_scheme
    from xecdata.schemes import registry as schemes
    from xectrain.checkpoint import load_checkpoint

    builtins = dict(schemes._REGISTRY)
    definition = get_scheme("new@1").to_dict() | {"name": "mine", "version": 2, "npho_scale": 900.0}
    definition = {k: v for k, v in definition.items() if k not in ("id", "hash")}
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(definition))
    store = tmp_path / "mine.xec.zarr"
    out = _run("ingest", str(demo / "sim"), "-o", str(store), "--workers", "1", "--quiet",
               "--val-fraction", "0.3", "--chunk-events", "64",
               "--scheme", str(tmp_path / "mine.yaml"))  # fmt: skip
    assert out.exit_code == 0, out.output
    stored_hash = schemes._REGISTRY["mine@2"].hash
    monkeypatch.setattr(schemes, "_REGISTRY", dict(builtins))  # a fresh process: not registered

    args = _train_args(demo, "--store", str(store), "--set", "data.scheme=mine",
                       "--run-name", "mine")  # fmt: skip
    out = _run(*args, "--set", "checkpoint.save_artifacts=false")
    assert out.exit_code == 0, out.output
    ckpt = load_checkpoint(demo / "artifacts" / "mine" / "checkpoint_best.pth")
    assert ckpt["scheme"] == {"id": "mine@2", "hash": stored_hash}

    monkeypatch.setattr(schemes, "_REGISTRY", dict(builtins))
    out = CliRunner().invoke(main, _train_args(demo, "--store", str(store), "--set",
                                               "data.scheme=mine@1"))  # fmt: skip
    assert out.exit_code != 0 and "holds mine@2" in out.output


def test_train_artifacts_root_epoch_sets_onnx_and_task_subsets(demo: Path) -> None:
    """A regressor run writes validation_results_<run>.root (the CSV rows), the _ep1 set and
    the ONNX model (checkpoint.onnx_filename; logged to MLflow); `xec validate` writes the ROOT
    file too, and its predictions are what `xec infer` gives with the exported model and with a
    task subset."""
    from mlflow.tracking import MlflowClient

    from xectrain.artifacts import read_metadata, read_predictions_csv
    from xectrain.checkpoint import load_checkpoint

    out = _run(*_train_args(demo, "--tasks", "angle,energy", "--run-name", "art", "--set",
                            "checkpoint.export_onnx=true", "--set",
                            "checkpoint.onnx_exporter=torchscript", "--set",
                            "checkpoint.onnx_filename=model_art.onnx"))  # fmt: skip
    assert out.exit_code == 0, out.output
    run_dir = demo / "artifacts" / "art"
    assert (run_dir / "validation_results_art_ep1.root").is_file()
    with uproot.open(run_dir / "validation_results_art.root") as f:
        rows = f["predictions"].arrays(library="np")
    _, cols = read_predictions_csv(run_dir / "predictions_energy_art.csv")
    assert len(rows["event_index"]) == 2 * 16 and np.array_equal(
        rows["event_index"], cols["event_index"].astype(np.int64)
    )
    for name in ("true_energy", "pred_energy"):
        assert np.array_equal(rows[name], cols[name].astype(np.float32)), name
    assert {"true_theta", "pred_phi", "run", "event"} <= set(rows)
    from xecdata.store import open_store

    st = open_store(demo / "store.xec.zarr")  # every truth branch, also of untrained tasks
    for name in ("uvwTruth", "xyzVTX", "timeTruth"):
        want = st.read_rows(name, rows["event_index"]).astype(np.float32)
        assert np.array_equal(rows[name], want), name
    ckpt = str(run_dir / "checkpoint_best.pth")
    client = MlflowClient(tracking_uri=f"sqlite:///{demo / 'mlruns.db'}")
    logged = {a.path for a in client.list_artifacts(load_checkpoint(ckpt)["mlflow_run_id"])}
    assert {"validation_results_art.root", "model_art.onnx"} <= logged

    store = str(demo / "store.xec.zarr")
    out = _run("validate", ckpt, "--store", store, "--max-batches", "1", "--batch-size", "16",
               "-o", str(demo / "art_val"))  # fmt: skip
    assert out.exit_code == 0, out.output
    val_root = demo / "art_val" / "validation_results_art_val.root"
    with uproot.open(val_root) as f:
        val = f["predictions"].arrays(library="np")
    assert read_metadata(val_root)["tasks"] == "angle,energy" and len(val["event_index"]) == 16

    sub = demo / "art_energy.onnx"
    out = _run("export", "onnx", ckpt, "-o", str(sub), "--tasks", "energy",
               "--exporter", "torchscript")  # fmt: skip
    assert out.exit_code == 0, out.output
    for model, tasks in ((run_dir / "model_art.onnx", "angle,energy"), (sub, "energy")):
        pred = demo / f"{model.stem}.root"
        out = _run("infer", str(model), store, "-o", str(pred), "--batch-size", "128")
        assert out.exit_code == 0, out.output
        with uproot.open(pred) as f:
            got = f["predictions"].arrays(library="np")
            assert str(f["metadata"]["tasks"].array(library="np")[0]) == tasks
        assert ("pred_angle" in got) == (model != sub)
        # the same events in the store: the validated predictions (EMA weights, float32)
        np.testing.assert_allclose(got["pred_energy"][val["event_index"], 0], val["pred_energy"],
                                   rtol=1e-4)  # fmt: skip
    for bad, says in (("timing", "has no task 'timing'; it has angle, energy"),
                      ("angel", "unknown task 'angel'")):  # fmt: skip
        out = CliRunner().invoke(main, ["export", "onnx", ckpt, "-o", str(demo / "x.onnx"),
                                        "--tasks", bad])  # fmt: skip
        assert out.exit_code != 0 and says in out.output and ckpt in out.output
