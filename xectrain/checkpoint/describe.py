"""What a checkpoint holds (`xec inspect CKPT.pth`): kind, epoch, best metric, scheme, tasks,
parameter counts and whether it can resume training, without building the model.

A checkpoint of another geometry is described (with the mismatch stated), not refused: the
point of inspecting is to find out what a file is before using it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from xecdata.geometry import geometry_id
from xectrain.checkpoint import FORMAT, read_checkpoint

# what `resume` needs besides the weights (xectrain.run.resume.restore_trainer)
_RESUME_FIELDS = ("optimizer", "scheduler", "loader", "rng")


def parameter_counts(state: Mapping[str, Any]) -> dict[str, int]:
    """Parameters (and buffers) per top-level module of a state dict, plus 'total'."""
    counts: dict[str, int] = defaultdict(int)
    for key, value in state.items():
        if isinstance(value, torch.Tensor):
            counts[key.split(".", 1)[0]] += value.numel()
            counts["total"] += value.numel()
    return dict(counts)


def describe_checkpoint(path: str | Path) -> dict[str, Any]:
    """A JSON-ready description of the checkpoint or encoder file at `path`."""
    path = Path(path)
    ckpt = read_checkpoint(path)
    weights = ckpt.get("model") if ckpt.get("format") == FORMAT else ckpt.get("encoder")
    config = ckpt.get("config") or {}
    tasks = config.get("tasks") or {}
    here = geometry_id()
    out: dict[str, Any] = {
        "path": str(path),
        "bytes": path.stat().st_size,
        "format": f"{ckpt.get('format')} v{ckpt.get('format_version')}",
        "kind": ckpt.get("kind"),
        "source_kind": ckpt.get("source_kind"),
        "geometry_id": ckpt.get("geometry_id"),
        "geometry_matches": ckpt.get("geometry_id") == here,
        "scheme": ckpt.get("scheme"),
        "torch_version": ckpt.get("torch_version"),
        "epoch": ckpt.get("epoch"),
        "step": ckpt.get("step"),
        "best_metric_name": ckpt.get("best_metric_name"),
        "best_metric": ckpt.get("best_metric"),
        "skipped_steps": ckpt.get("skipped_steps"),
        "mlflow_run_id": ckpt.get("mlflow_run_id"),
        "tasks": sorted(k for k, t in tasks.items() if isinstance(t, dict) and t.get("enabled")),
        "model_config": ckpt.get("model_config"),
        "parameters": parameter_counts(weights or {}),
        "ema": ckpt.get("ema") is not None,
        "resumable": all(ckpt.get(k) is not None for k in _RESUME_FIELDS),
        "loader": ckpt.get("loader"),
    }
    return {k: v for k, v in out.items() if v is not None}


def format_checkpoint(d: Mapping[str, Any]) -> str:
    """The description as text for a terminal."""
    scheme = d.get("scheme") or {}
    geo = "matches this installation" if d["geometry_matches"] else "DIFFERS from this one"
    lines = [
        f"checkpoint {d['path']} ({d['bytes'] / 1e6:.1f} MB, {d['format']})",
        f"  kind        {d.get('kind')}"
        + (f" (encoder of a {d['source_kind']} run)" if d.get("source_kind") else ""),
        f"  geometry    {d.get('geometry_id')} ({geo})",
        f"  scheme      {scheme.get('id')} (hash {scheme.get('hash')})",
    ]
    if "epoch" in d:
        lines.append(f"  epoch       {d['epoch']} (step {d.get('step')})")
    if "best_metric" in d:
        lines.append(f"  best        {d.get('best_metric_name')} = {d['best_metric']:.6g}")
    if d.get("tasks"):
        lines.append(f"  tasks       {', '.join(d['tasks'])}")
    params = d["parameters"]
    parts = ", ".join(f"{k} {v:,}" for k, v in params.items() if k != "total")
    lines.append(f"  parameters  {params.get('total', 0):,} ({parts})")
    lines.append(f"  EMA         {'yes' if d['ema'] else 'no'}")
    lines.append(f"  resumable   {'yes' if d['resumable'] else 'no (weights only)'}")
    if d.get("mlflow_run_id"):
        lines.append(f"  MLflow run  {d['mlflow_run_id']}")
    if d.get("torch_version"):
        lines.append(f"  torch       {d['torch_version']}")
    return "\n".join(lines)
