"""MLflow tracking: params once per run, metrics per epoch, system metrics, artifacts; rank 0 only.
With tracking.tensorboard set, the metrics also go to TensorBoard event files (even with MLflow
off), for users who follow loss curves there.

Where runs go follows MLflow's precedence (tracking_target.py): the run configuration, then
MLFLOW_TRACKING_URI / MLFLOW_EXPERIMENT_NAME / MLFLOW_EXPERIMENT_ID, then the embedded SQLite
file `sqlite:///mlruns.db` with artifacts in ./mlartifacts, so nothing needs a server. The
client API is used directly (no global mlflow state), and on every rank but 0 the tracker does
nothing. View runs with: mlflow ui --backend-store-uri sqlite:///mlruns.db
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xecdata.errors import XecError
from xectrain.config import TrackingConfig
from xectrain.run.earlier_names import with_earlier_names
from xectrain.run.tracking_target import resolve_tracking

PARAM_LIMIT = 6000  # MLflow's maximum length of a parameter value


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """{'training': {'lr': 1e-4}} -> {'training.lr': '0.0001'} (lists and dicts as text)."""
    out: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out |= flatten(value, f"{name}.")
        else:
            out[name] = str(value)[:PARAM_LIMIT]
    return out


class TrackingError(XecError, ValueError):
    """The tracking store cannot take the run as configured; the message says how to fix it."""


class Tracker:
    """One MLflow run of a `kind` model. Inactive (every call a no-op) when disabled or not on
    rank 0."""

    def __init__(self, cfg: TrackingConfig, rank: int = 0, kind: str = "regressor") -> None:
        self.cfg = cfg
        self.target = resolve_tracking(cfg, kind)
        self.active = cfg.enabled and rank == 0
        self.run_id: str | None = None
        self._client: Any = None
        self._tb: Any = None  # TensorBoard SummaryWriter (rank 0, tracking.tensorboard set)
        self._rank = rank

    def _open_tensorboard(self, run_name: str) -> None:
        if not self.cfg.tensorboard or self._rank != 0:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise RuntimeError(
                "tracking.tensorboard is set but the tensorboard package is missing: "
                "pip install tensorboard (or xec[tensorboard]), or unset tracking.tensorboard"
            ) from None
        self._tb = SummaryWriter(log_dir=str(Path(self.cfg.tensorboard) / run_name))

    @property
    def client(self) -> Any:
        """The MlflowClient (imported lazily: mlflow is slow to import)."""
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self.target.uri)
        return self._client

    def _experiment_id(self) -> str:
        """The experiment's id; a named experiment is created when missing (its artifacts go
        to target.artifact_location, None: where the tracking server puts them)."""
        t = self.target
        if t.experiment is None:  # MLFLOW_EXPERIMENT_ID: it must exist
            if self.client.get_experiment(t.experiment_id) is None:
                raise TrackingError(f"MLFLOW_EXPERIMENT_ID={t.experiment_id}: no such experiment "
                                    f"in {t.uri}")  # fmt: skip
            return str(t.experiment_id)
        exp = self.client.get_experiment_by_name(t.experiment)
        if exp is not None:
            return str(exp.experiment_id)
        return str(self.client.create_experiment(t.experiment, t.artifact_location))

    def start(
        self,
        run_name: str,
        params: Mapping[str, Any] | None = None,
        resume_run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str | None:
        """Open a new run (logging `params` once, flattened) or reopen `resume_run_id`."""
        self._open_tensorboard(run_name)
        if not self.active:
            return None
        if resume_run_id is not None:
            self._check_run(resume_run_id)
            self.client.update_run(resume_run_id, status="RUNNING")
            self.run_id = resume_run_id
            return self.run_id
        run = self.client.create_run(
            self._experiment_id(), run_name=run_name, tags=dict(tags or {})
        )
        self.run_id = str(run.info.run_id)
        if params:
            from mlflow.entities import Param

            items = [Param(k, v) for k, v in flatten(params).items()]
            for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
                self.client.log_batch(self.run_id, params=items[i : i + 100])
        return self.run_id

    def _check_run(self, run_id: str) -> None:
        """A resumed run must be in this tracking store (the URI may come from elsewhere now)."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_run(run_id)
        except MlflowException:
            raise TrackingError(
                f"the checkpoint's MLflow run {run_id} is not in {self.target.describe()}; "
                "track to the store it was logged to (tracking.uri or MLFLOW_TRACKING_URI) or "
                "start a new MLflow run (--new-mlflow-run)"
            ) from None

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Log finite metrics at `step` (the epoch) in one batch (with the earlier tool's
        documented keys too, tracking.earlier_names)."""
        if self.cfg.earlier_names:
            metrics = with_earlier_names(metrics)
        finite = {
            _key(k): float(v)
            for k, v in metrics.items()
            if v is not None and float(v) == float(v) and abs(float(v)) != float("inf")
        }
        if self._tb is not None:
            for k, v in finite.items():
                self._tb.add_scalar(k, v, step)
            self._tb.flush()
        if not self.active or self.run_id is None or not finite:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, v, now, step) for k, v in finite.items()]
        for i in range(0, len(items), 1000):
            self.client.log_batch(self.run_id, metrics=items[i : i + 1000])

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Upload a file or a whole folder."""
        if not self.active or self.run_id is None:
            return
        path = Path(path)
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), artifact_path)
        elif path.is_file():
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    def end(self, status: str = "FINISHED") -> None:
        """Close the run (FINISHED, FAILED or KILLED)."""
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self.active and self.run_id is not None:
            self.client.set_terminated(self.run_id, status=status)


def _key(name: str) -> str:
    """MLflow metric keys allow letters, digits, _ - . space / only."""
    return "".join(c if c.isalnum() or c in "_-. /" else "_" for c in name)


def host_ram_gb() -> float:
    """Resident memory of this process in GB (Linux /proc, else the peak from getrusage)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def system_metrics(
    events: int, seconds: float, wait_seconds: float, device: Any = None, batches: int = 0
) -> dict[str, float]:
    """Throughput, data wait (share of the epoch, seconds per batch), compute efficiency (the
    share not spent waiting) and memory of one epoch; GPU memory on CUDA, with the peak of this
    epoch (the peak counter restarts after each call)."""
    wait = wait_seconds / seconds if seconds > 0 else 0.0
    out = {
        "system/throughput_events_per_sec": events / seconds if seconds > 0 else 0.0,
        "system/data_wait_fraction": wait,
        "system/avg_data_load_sec": wait_seconds / batches if batches else 0.0,
        "system/compute_efficiency": 1.0 - wait,
        "system/epoch_duration_sec": seconds,
        "system/ram_used_gb": host_ram_gb(),
    }
    if device is not None and getattr(device, "type", None) == "cuda":
        import torch

        gb = 1024**3
        allocated = torch.cuda.memory_allocated(device)
        reserved = torch.cuda.memory_reserved(device)
        total = torch.cuda.get_device_properties(device).total_memory
        out |= {
            "system/memory_allocated_GB": allocated / gb,
            "system/memory_reserved_GB": reserved / gb,
            "system/memory_peak_GB": torch.cuda.max_memory_allocated(device) / gb,
            "system/gpu_memory_used_pct": 100.0 * reserved / total,
            # the share of the card held by live tensors (a documented metric name)
            "system/gpu_utilization_pct": 100.0 * allocated / total,
            "system/memory_fragmentation": 1.0 - allocated / reserved if reserved else 0.0,
        }
        torch.cuda.reset_peak_memory_stats(device)  # the next call reports its own epoch
    return out
