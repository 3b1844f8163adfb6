"""The training loop end to end on in-memory loaders: exact resume, accumulation, skipped
non-finite steps, artifacts and MLflow metrics, MAE -> inpainter encoder transfer."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import uproot
from mlflow.tracking import MlflowClient

from tests.test_earlier_names import missing_documented
from tests.trainhelpers import ListLoader, tiny_config, toy_events, toy_loaders
from xectrain.artifacts import read_metadata, read_predictions_csv
from xectrain.artifacts.csvio import task_arrays
from xectrain.checkpoint import encoder_state, load_checkpoint
from xectrain.evaluation.metrics import angle_metrics, task_metrics
from xectrain.run.data import Loaders
from xectrain.run.fit import RunResult, train


def _weights(run_dir: Path, name: str = "checkpoint_last.pth") -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / name)["model"]


class KilledLoader(ListLoader):
    """Training is killed when epoch `kill_at` begins (after the previous checkpoint)."""

    kill_at = 1

    def set_epoch(self, epoch: int) -> None:
        if epoch == self.kill_at:
            raise KeyboardInterrupt("killed")
        super().set_epoch(epoch)


def test_resume_continues_exactly(tmp_path: Path) -> None:
    opts = ("tracking.enabled=false", "training.epochs=2")
    full = train(tiny_config("regressor", tmp_path, *opts, "tracking.run_name=full"),
                 toy_loaders(16, 8))  # fmt: skip
    cut = tiny_config("regressor", tmp_path, *opts, "tracking.run_name=cut")
    killed = toy_loaders(16, 8)
    killed.train = KilledLoader(toy_events(16), 8, shuffle=True)
    with pytest.raises(KeyboardInterrupt):
        train(cut, killed)
    last = tmp_path / "artifacts" / "cut" / "checkpoint_last.pth"
    first = load_checkpoint(last)
    assert first["epoch"] == 1
    resumed = train(
        tiny_config("regressor", tmp_path, *opts, "tracking.run_name=cut",
                    f"checkpoint.resume_from={last}"),
        toy_loaders(16, 8),
    )  # fmt: skip
    assert full.history[:2] != full.history[2:]
    assert resumed.history == full.history[2:]  # bitwise: the same loss curve
    a, b = _weights(full.run_dir), _weights(resumed.run_dir)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.metrics["val/total_loss"] == full.metrics["val/total_loss"]


class PoisonedLoader(ListLoader):
    """Yields NaN sensors in the first batch of epoch 0."""

    def __iter__(self):  # type: ignore[no-untyped-def]
        for j, batch in enumerate(super().__iter__()):
            if self.epoch == 0 and j == 0:
                batch.sensors[:] = float("nan")
            yield batch


def test_non_finite_step_is_skipped_and_counted(tmp_path: Path) -> None:
    events = toy_events(16)
    loaders = toy_loaders(16, 8)
    loaders.train = PoisonedLoader(events, 8, shuffle=True)
    res = train(tiny_config("regressor", tmp_path, "tracking.enabled=false",
                            "training.epochs=1"), loaders)  # fmt: skip
    assert res.metrics["train/skipped_steps"] == 1.0
    ckpt = load_checkpoint(res.run_dir / "checkpoint_last.pth")
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())
    assert ckpt["step"] == 2 and ckpt["optimizer"]["state"][0]["step"] == 1  # one real update


def test_gradient_accumulation_equals_the_big_batch(tmp_path: Path) -> None:
    common = ("tracking.enabled=false", "training.epochs=1", "training.ema_decay=null",
              "training.warmup_epochs=0", "training.scheduler=constant")  # fmt: skip
    events, val = toy_events(8), toy_events(8, 1)

    def run(name: str, batch: int, accum: int) -> dict[str, torch.Tensor]:
        loaders = Loaders(ListLoader(events, batch, shuffle=True),
                          ListLoader(val, 8, shuffle=False), 8 // batch, 1)  # fmt: skip
        cfg = tiny_config("regressor", tmp_path, *common, f"tracking.run_name={name}",
                          f"data.batch_size={batch}", f"training.grad_accum_steps={accum}",
                          "training.transform_fit_batches=8")  # fmt: skip
        return _weights(train(cfg, loaders).run_dir)

    big, small = run("big", 8, 1), run("small", 4, 2)
    for key in big:
        assert torch.allclose(big[key].float(), small[key].float(), atol=1e-6), key


def test_regressor_artifacts_and_mlflow_metrics(tmp_path: Path) -> None:
    cfg = tiny_config(
        "regressor", tmp_path, "training.epochs=1", "checkpoint.save_artifacts=true",
        "checkpoint.worst_events=1", "tasks.energy.enabled=true", "tasks.uvwFI.enabled=true",
    )  # fmt: skip
    res = train(cfg, toy_loaders(16, 16))
    names = {p.name for p in res.run_dir.iterdir()}
    for expected in ("predictions_angle_t.csv", "predictions_energy_t.csv",
                     "resolution_angle_t.pdf", "resolution_energy_t.pdf",
                     "resolution_uvwFI_t.pdf", "saliency_profile_t.pdf", "face_weights_t.pdf",
                     "config.yaml", "checkpoint_best.pth", "checkpoint_last.pth"):  # fmt: skip
        assert expected in names
    assert (res.run_dir / "worst_events" / "worst_01_t.pdf").is_file()
    client = MlflowClient(tracking_uri=cfg.tracking.uri)
    run = client.get_run(res.mlflow_run_id)
    _, cols = read_predictions_csv(res.run_dir / "predictions_angle_t.csv")
    assert sorted(cols["event_index"]) == list(range(10_000, 10_016))
    truth = toy_events(16, 100)["emiAng"][cols["event_index"].astype(int) - 10_000]
    assert np.allclose(task_arrays(cols, "angle")[0], truth)  # rows are the events they name
    expected = angle_metrics(*task_arrays(cols, "angle")[::-1])
    assert run.data.metrics["val/angle_resolution_68pct"] == pytest.approx(
        expected["angle_resolution_68pct"], rel=1e-6
    )
    _, cols = read_predictions_csv(res.run_dir / "predictions_energy_t.csv")
    expected = task_metrics("energy", *task_arrays(cols, "energy")[::-1])
    assert run.data.metrics["val/energy_res_68pct"] == pytest.approx(
        expected["energy_res_68pct"], rel=1e-5
    )
    assert run.data.params["training.lr"] == "0.0003"
    m = run.data.metrics
    assert m["system/compute_efficiency"] == pytest.approx(1 - m["system/data_wait_fraction"])
    assert 0 <= m["system/avg_data_load_sec"] <= m["system/epoch_duration_sec"]
    artifacts = {a.path for a in client.list_artifacts(res.mlflow_run_id)}
    assert {"predictions_angle_t.csv", "config.yaml", "saliency_profile_t.pdf"} <= artifacts
    # the earlier tool's documented names: metric keys, and links to the same files
    assert missing_documented(m, ("regressor", "all")) == []
    assert m["val_resolution_deg"] == m["val/angle_resolution_68pct"] == m["angle_resolution_68pct"]
    assert m["val_cos"] == m["val/cos_loss"] and "val/val_cos" not in m
    d = res.run_dir
    assert (d / "resolution_profile_t.pdf").resolve() == (d / "resolution_angle_t.pdf").resolve()
    assert (d / "worst_event_01_t.pdf").resolve() == (d / "worst_events/worst_01_t.pdf").resolve()


def test_mae_then_inpainter_with_the_mae_encoder(tmp_path: Path) -> None:
    mae = train(
        tiny_config("mae", tmp_path, "tracking.enabled=false", "training.epochs=1",
                    "tracking.run_name=mae", "checkpoint.save_artifacts=true"),
        toy_loaders(16, 8),
    )  # fmt: skip
    for key in ("val/total_loss", "val/loss_inner_npho", "val/mae_npho", "val/rmse_time",
                "val/mae_inner_npho", "val/actual_mask_ratio"):  # fmt: skip
        assert np.isfinite(mae.metrics[key]), key
    assert 0.5 < mae.metrics["val/actual_mask_ratio"] <= 0.6
    root = mae.run_dir / "mae_predictions_epoch_001.root"
    with uproot.open(root) as f:
        assert f["predictions"].num_entries == 8
    assert read_metadata(root)["scheme_id"] == "new@1"
    source = mae.run_dir / "checkpoint_best.pth"
    per_epoch = load_checkpoint(mae.run_dir / "mae_encoder_epoch_001.pth")  # the last epoch
    assert per_epoch["kind"] == "encoder" and per_epoch["source_kind"] == "mae"
    assert all(torch.equal(v, per_epoch["encoder"][k]) for k, v in encoder_state(
        load_checkpoint(mae.run_dir / "checkpoint_last.pth")).items())  # fmt: skip
    inp = train(
        tiny_config("inpainter", tmp_path, "tracking.enabled=false", "training.epochs=1",
                    "tracking.run_name=inp", f"checkpoint.resume_from={source}",
                    "model.freeze_encoder=true", "checkpoint.save_artifacts=true"),
        toy_loaders(16, 8),
    )  # fmt: skip
    mae_ema = load_checkpoint(source)["ema"]["model"]
    weights = _weights(inp.run_dir)
    enc = [k for k in weights if k.startswith("encoder.")]
    assert enc and all(torch.equal(weights[k], mae_ema[k]) for k in enc)  # transferred, frozen
    assert load_checkpoint(inp.run_dir / "checkpoint_last.pth")["kind"] == "inpainter"
    with uproot.open(inp.run_dir / "inpainter_predictions_epoch_001.root") as f:
        sensor_ids = f["predictions"]["sensor_id"].array(library="np")
    assert len(sensor_ids) > 0 and sensor_ids.max() < 4760


def test_resume_options_refresh_lr_reset_epoch_new_mlflow_run(tmp_path: Path) -> None:
    first = train(tiny_config("regressor", tmp_path, "training.epochs=1"), toy_loaders(8, 8))
    last = tmp_path / "epoch1.pth"  # a copy: the resumed runs overwrite checkpoint_last
    shutil.copy(first.run_dir / "checkpoint_last.pth", last)
    resume = (f"checkpoint.resume_from={last}", "training.epochs=3")
    again = train(tiny_config("regressor", tmp_path, *resume), toy_loaders(8, 8))
    assert again.mlflow_run_id == first.mlflow_run_id  # resuming continues the MLflow run
    refreshed = train(
        tiny_config("regressor", tmp_path, *resume, "training.lr=1e-4", "tracking.run_name=r",
                    "checkpoint.refresh_lr=true", "checkpoint.new_mlflow_run=true"),
        toy_loaders(8, 8),
    )  # fmt: skip
    ck = load_checkpoint(refreshed.run_dir / "checkpoint_last.pth")
    sched = ck["scheduler"]
    assert (sched["start_step"], sched["total_steps"], sched["warmup_steps"]) == (1, 2, 0)
    assert sched["base_lr"] == 1e-4 and (ck["epoch"], ck["step"]) == (3, 3)
    assert refreshed.mlflow_run_id not in (None, first.mlflow_run_id)
    reset = train(
        tiny_config("regressor", tmp_path, f"checkpoint.resume_from={last}", "training.epochs=1",
                    "checkpoint.reset_epoch=true", "tracking.run_name=z"),
        toy_loaders(8, 8),
    )  # fmt: skip
    ck = load_checkpoint(reset.run_dir / "checkpoint_last.pth")
    assert (ck["epoch"], ck["step"]) == (1, 1)  # epoch 1 again, fresh optimizer
    assert ck["optimizer"]["state"][0]["step"] == 1


def test_loader_options_follow_the_config(tmp_path: Path) -> None:
    from xectrain.run.data import loader_options

    cfg = tiny_config(
        "regressor", tmp_path, "tasks.uvwFI.enabled=true", "reweighting.angle.enabled=true",
        "reweighting.uvwFI.enabled=true", "training.augment.channel_dropout=0.02",
        "training.augment.time_jitter_ps=30",
    )  # fmt: skip
    augment, reweight = loader_options(cfg)
    assert (augment.channel_dropout, augment.time_jitter_ps) == (0.02, 30.0)
    assert reweight.task_bins() == {"angle": (20, 20), "uvw": (10, 10, 10)}
    assert reweight.eps == 1e-6
    assert loader_options(tiny_config("regressor", tmp_path))[1] is None


def test_system_metrics_can_be_switched_off(tmp_path: Path) -> None:
    cfg = tiny_config("regressor", tmp_path, "training.epochs=1", "tracking.system_metrics=false")
    res = train(cfg, toy_loaders(8, 8))
    logged = MlflowClient(tracking_uri=cfg.tracking.uri).get_run(res.mlflow_run_id).data.metrics
    assert "val/total_loss" in logged and not any(k.startswith("system/") for k in logged)


def test_deterministic_training_repeats_bit_for_bit(tmp_path: Path) -> None:
    from xectrain.engine.distributed import set_deterministic

    def run(i: int) -> RunResult:
        over = ("training.epochs=1", "tracking.enabled=false", "training.deterministic=true")
        return train(tiny_config("regressor", tmp_path, *over, f"tracking.run_name=d{i}"),
                     toy_loaders(8, 8))  # fmt: skip

    try:
        runs = [run(0), run(1)]
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        set_deterministic(False)
    a, b = (_weights(r.run_dir) for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert runs[0].metrics["val/total_loss"] == runs[1].metrics["val/total_loss"]


def test_mae_encoder_files_every_n_epochs_and_a_failed_export_keeps_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import xectrain.run.outputs as outputs

    over = ("tracking.enabled=false", "training.epochs=3", "checkpoint.encoder_every=2")
    mae = train(tiny_config("mae", tmp_path, *over, "tracking.run_name=m"), toy_loaders(8, 8))
    names = sorted(p.name for p in mae.run_dir.glob("mae_encoder_epoch_*.pth"))
    assert names == ["mae_encoder_epoch_002.pth", "mae_encoder_epoch_003.pth"]

    def boom(*args: object) -> Path:
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(outputs, "export_best_onnx", boom)
    over = ("tracking.enabled=false", "training.epochs=1", "checkpoint.export_onnx=true")
    with pytest.warns(UserWarning, match=r"export_onnx failed \(RuntimeError: exporter exploded"):
        res = train(tiny_config("regressor", tmp_path, *over, "tracking.run_name=x"),
                    toy_loaders(8, 8))  # fmt: skip
    assert (res.run_dir / "checkpoint_best.pth").is_file() and (
        res.run_dir / "config.yaml"
    ).is_file()


def test_wait_clock_counts_the_time_spent_getting_batches() -> None:
    import time

    from xectrain.run.loop import WaitClock

    def slow() -> Iterator[int]:
        for i in range(4):
            time.sleep(0.02)  # the loader is late
            yield i

    clock = WaitClock(torch.device("cpu"))
    got = []
    t0 = time.perf_counter()
    for b in clock.timed(slow()):
        got.append(b)
        time.sleep(0.05)  # the step's own work is not waiting
    total = time.perf_counter() - t0
    assert got == [0, 1, 2, 3] and not clock.cuda
    # at least the loader's sleeps; none of the steps' 4 x 0.05 s (holds on a busy machine)
    assert 0.08 <= clock.seconds() <= total - 0.2


def test_per_component_transform_trains_and_predicts_in_physical_units(tmp_path: Path) -> None:
    over = ("training.epochs=1", "tracking.enabled=false", "tasks.uvwFI.enabled=true",
            "tasks.uvwFI.transform=standardize,standardize,log+standardize")  # fmt: skip
    res = train(tiny_config("regressor", tmp_path, *over), toy_loaders(8, 8))
    spec = load_checkpoint(res.run_dir / "checkpoint_last.pth")["model_config"]["tasks"]
    uvw = next(t for t in spec if t["name"] == "uvwFI")
    assert uvw["transform"] == "standardize,standardize,log+standardize"
    w = toy_events(64, 0)["uvwTruth"][:, 2]  # what the loaders' training events look like
    assert abs(uvw["mean"][2] - np.log(w).mean()) < 0.5  # fitted on log(w), not on w
    assert np.isfinite(res.metrics["val/uvw_dist_68pct"])
