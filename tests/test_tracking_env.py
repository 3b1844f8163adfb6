"""MLflow's precedence for where runs go: explicit config > MLFLOW_TRACKING_URI /
MLFLOW_EXPERIMENT_NAME / MLFLOW_EXPERIMENT_ID > xec's embedded default (sqlite:///mlruns.db);
checked on SQLite files and on a local `mlflow server` process started here."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.trainhelpers import toy_loaders
from xectrain.config import TrackingConfig, load_config
from xectrain.run.fit import train
from xectrain.run.tracking import Tracker, TrackingError
from xectrain.run.tracking_target import resolve_tracking

SERVER_START_S = 180  # mlflow imports slowly on a busy 2-core machine


def test_precedence_config_over_environment_over_default(tmp_path: Path) -> None:
    env = {"MLFLOW_TRACKING_URI": "sqlite:///team.db", "MLFLOW_EXPERIMENT_NAME": "team"}
    t = resolve_tracking(TrackingConfig(), "mae", env)
    assert (t.uri, t.experiment, t.sources["uri"]) == ("sqlite:///team.db", "team",
                                                      "MLFLOW_TRACKING_URI")  # fmt: skip
    assert t.artifact_location == Path("mlartifacts").resolve().as_uri()  # a local store
    t = resolve_tracking(TrackingConfig(uri="sqlite:///mine.db", experiment="e"), "mae", env)
    assert (t.uri, t.experiment, t.sources["experiment"]) == ("sqlite:///mine.db", "e",
                                                             "tracking.experiment")  # fmt: skip
    t = resolve_tracking(TrackingConfig(), "inpainter", {})
    assert (t.uri, t.experiment) == ("sqlite:///mlruns.db", "xec-inpainter")
    assert t.sources == {"uri": "default", "experiment": "default", "artifact_location": "default"}
    t = resolve_tracking(TrackingConfig(), "mae", {"MLFLOW_TRACKING_URI": "http://h:5000",
                                                   "MLFLOW_EXPERIMENT_ID": "7"})  # fmt: skip
    assert (t.experiment, t.experiment_id, t.artifact_location) == (None, "7", None)  # server's
    assert t.browse_hint() == "open http://h:5000"
    t = resolve_tracking(TrackingConfig(artifact_location=str(tmp_path)), "mae",
                         {"MLFLOW_TRACKING_URI": "https://h"})  # fmt: skip
    assert t.artifact_location == tmp_path.as_uri()  # explicit beats the server's root


def _config(tmp: Path, *extra: str):  # type: ignore[no-untyped-def]
    """A tiny regressor run with no tracking settings: the environment decides."""
    return load_config("regressor", overrides=[
        f"checkpoint.dir={tmp / 'artifacts'}", "training.device=cpu", "training.epochs=1",
        "training.warmup_epochs=0", "training.transform_fit_batches=1", "model.outer_mode=split",
        "checkpoint.save_artifacts=false", "tracking.run_name=env", *extra])  # fmt: skip


def test_environment_routes_a_run_to_another_sqlite_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'team.db'}")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "team-exp")
    res = train(_config(tmp_path), toy_loaders(4, 4, batch_size=4))
    assert not (tmp_path / "mlruns.db").exists()  # the embedded default was not used
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'team.db'}")
    run = client.get_run(res.mlflow_run_id)
    assert client.get_experiment(run.info.experiment_id).name == "team-exp"
    assert "val/total_loss" in run.data.metrics
    assert (tmp_path / "mlartifacts").is_dir()  # artifacts of a local store: ./mlartifacts
    # an explicit URI in the config wins over the environment
    tracker = Tracker(TrackingConfig(uri=f"sqlite:///{tmp_path / 'mine.db'}"))
    run_id = tracker.start("explicit")
    tracker.end()
    assert MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mine.db'}").get_run(str(run_id))
    # resuming a run that the (now different) store does not hold is refused with the fix
    with pytest.raises(TrackingError, match=r"not in sqlite:///.*mine\.db .*--new-mlflow-run"):
        Tracker(TrackingConfig(uri=f"sqlite:///{tmp_path / 'mine.db'}")).start(
            "x", resume_run_id=res.mlflow_run_id
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`mlflow server` on a free port (SQLite backend, proxied artifacts in a temp folder),
    in its own process group, terminated at the end."""
    root = tmp_path_factory.mktemp("server")
    port, log = _free_port(), root / "server.log"
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
           "--backend-store-uri", f"sqlite:///{root / 'server.db'}", "--workers", "1",
           "--artifacts-destination", str(root / "served")]  # fmt: skip
    env = os.environ | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, cwd=root)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while not _healthy(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text()[-600:]
                pytest.skip(f"mlflow server did not start (exit {proc.poll()}): {tail}")
            time.sleep(0.5)
        yield url, root / "served"
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    """SIGTERM the server's process group, SIGKILL what is left after 30 s."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def test_environment_routes_a_run_to_a_tracking_server(
    mlflow_server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, served = mlflow_server
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "team-server")
    res = train(_config(tmp_path), toy_loaders(4, 4, batch_size=4))
    assert not (tmp_path / "mlruns.db").exists() and not (tmp_path / "mlartifacts").exists()
    client = MlflowClient(tracking_uri=url)
    run = client.get_run(res.mlflow_run_id)
    exp = client.get_experiment(run.info.experiment_id)
    assert exp.name == "team-server" and exp.artifact_location.startswith("mlflow-artifacts:")
    assert run.data.metrics["val/total_loss"] == res.metrics["val/total_loss"]
    assert "config.yaml" in {a.path for a in client.list_artifacts(run.info.run_id)}
    assert list(served.rglob("config.yaml"))  # stored by the server, where it keeps artifacts
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", exp.experiment_id)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME")
    tracker = Tracker(TrackingConfig(), kind="mae")
    run_id = tracker.start("by-id")
    tracker.end()
    assert client.get_run(str(run_id)).info.experiment_id == exp.experiment_id
