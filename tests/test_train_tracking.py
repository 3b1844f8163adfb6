"""MLflow tracking read back through the MLflow client (embedded SQLite in tmp_path)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from xectrain.config import TrackingConfig, default_config, to_dict
from xectrain.run.tracking import Tracker, flatten, system_metrics


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> TrackingConfig:
    root = tmp_path_factory.mktemp("mlflow")
    return TrackingConfig(
        uri=f"sqlite:///{root / 'mlruns.db'}",
        experiment="test",
        artifact_location=str(root / "artifacts"),
    )


def test_run_params_metrics_artifacts_and_resume(tracking: TrackingConfig, tmp_path: Path) -> None:
    cfg = default_config("regressor")
    tracker = Tracker(tracking)
    run_id = tracker.start("run-a", params=to_dict(cfg), tags={"kind": "regressor"})
    assert run_id is not None
    tracker.log_metrics({"val/total_loss": 0.5, "val/angle_resolution_68pct": 3.0}, step=0)
    tracker.log_metrics({"val/total_loss": 0.25, "bad": float("nan")}, step=1)
    (tmp_path / "config.yaml").write_text("a: 1\n")
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "p.pdf").write_bytes(b"%PDF-1.4")
    tracker.log_artifact(tmp_path / "config.yaml")
    tracker.log_artifact(tmp_path / "plots", "plots")
    tracker.end()

    client = MlflowClient(tracking_uri=tracking.uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "run-a"
    assert run.data.params["training.lr"] == "0.0003"
    assert run.data.params["tasks.angle.enabled"] == "True"
    assert run.data.tags["kind"] == "regressor"
    history = client.get_metric_history(run_id, "val/total_loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.5), (1, 0.25)]
    assert "bad" not in run.data.metrics
    names = {a.path for a in client.list_artifacts(run_id)}
    assert names == {"config.yaml", "plots"}
    assert [a.path for a in client.list_artifacts(run_id, "plots")] == ["plots/p.pdf"]
    exp = client.get_experiment_by_name("test")
    assert exp.artifact_location == Path(tracking.artifact_location).resolve().as_uri()

    resumed = Tracker(tracking)
    assert (
        resumed.start("ignored", params={"training": {"lr": 1.0}}, resume_run_id=run_id) == run_id
    )
    resumed.log_metrics({"val/total_loss": 0.125}, step=2)
    resumed.end()
    run = client.get_run(run_id)
    assert len(client.get_metric_history(run_id, "val/total_loss")) == 3
    assert run.data.params["training.lr"] == "0.0003"  # params are logged once per run


def test_other_ranks_and_disabled_tracking_do_nothing(tmp_path: Path) -> None:
    db = tmp_path / "never.db"
    for tracker in (
        Tracker(TrackingConfig(uri=f"sqlite:///{db}"), rank=1),
        Tracker(TrackingConfig(uri=f"sqlite:///{db}", enabled=False)),
    ):
        assert tracker.start("x", params={"a": 1}) is None
        tracker.log_metrics({"a": 1.0}, step=0)
        tracker.log_artifact(tmp_path)
        tracker.end()
    assert not db.exists()


def test_flatten_and_system_metrics() -> None:
    assert flatten({"a": {"b": 1, "c": [1, 2]}, "d": {}}) == {
        "a.b": "1",
        "a.c": "[1, 2]",
        "d": "{}",
    }
    m = system_metrics(events=1000, seconds=2.0, wait_seconds=0.5, batches=10)
    assert m["system/throughput_events_per_sec"] == 500.0
    assert m["system/data_wait_fraction"] == 0.25
    assert m["system/avg_data_load_sec"] == 0.05 and m["system/compute_efficiency"] == 0.75
    assert 0.0 < m["system/ram_used_gb"] < 1024
    assert "system/memory_allocated_GB" not in m  # CPU: no GPU memory metrics


def test_gpu_memory_metrics_from_the_allocator(monkeypatch: pytest.MonkeyPatch) -> None:
    """On CUDA: allocated/reserved/peak in GB, card shares of reserved and allocated memory,
    and fragmentation = the unused share of reserved (allocator figures stubbed: no GPU here)."""
    import torch

    gb = 1024**3
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda d: 3 * gb)
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda d: 4 * gb)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda d: 5 * gb)
    props = type("Props", (), {"total_memory": 80 * gb})()
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d: props)
    resets: list[object] = []
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", resets.append)
    m = system_metrics(events=10, seconds=1.0, wait_seconds=0.0, device=torch.device("cuda", 0))
    assert m["system/memory_allocated_GB"] == 3.0
    assert m["system/memory_reserved_GB"] == 4.0
    assert m["system/memory_peak_GB"] == 5.0
    assert m["system/gpu_memory_used_pct"] == pytest.approx(5.0)
    assert m["system/gpu_utilization_pct"] == pytest.approx(3.75)
    assert m["system/memory_fragmentation"] == pytest.approx(0.25)
    assert resets == [torch.device("cuda", 0)]  # the next epoch's peak starts afresh


def test_tensorboard_scalars_even_without_mlflow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = TrackingConfig(enabled=False, tensorboard=str(tmp_path / "tb"))
    tracker = Tracker(cfg)
    assert tracker.start("run-tb") is None  # no MLflow run
    tracker.log_metrics({"val/total_loss": 0.5, "train/lr": 1e-4}, step=0)
    tracker.log_metrics({"val/total_loss": 0.25, "bad": float("nan")}, step=1)
    tracker.end()
    acc = EventAccumulator(str(tmp_path / "tb" / "run-tb"))
    acc.Reload()
    assert sorted(acc.Tags()["scalars"]) == ["train/lr", "val/total_loss"]
    loss = [(e.step, e.value) for e in acc.Scalars("val/total_loss")]
    assert loss == [(0, 0.5), (1, 0.25)]
    assert Tracker(cfg, rank=1).start("other") is None and not (tmp_path / "tb" / "other").exists()

    monkeypatch.setitem(__import__("sys").modules, "torch.utils.tensorboard", None)
    with pytest.raises(RuntimeError, match=r"pip install tensorboard"):
        Tracker(cfg).start("run-2")
