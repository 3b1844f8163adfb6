"""Glue between a run configuration and xecmodel: building the model and the per-kind step.

The loop is the same for the three kinds; what differs is here:
- `build_model`: create_model with options mapped from the config sections;
- `StepOps.loss`: one training forward -> (loss, named 0-dim parts, kept on the device);
- `StepOps.targets`: which store arrays the loader must deliver.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import torch
from torch import nn

from xecdata.markers import valid_rows
from xecdata.protocols import BatchSource, BatchView
from xecdata.schemes import Scheme
from xecmodel import TASKS, TaskSpec, create_model
from xecmodel.kind import ModelKind, ReconstructionKind
from xecmodel.regressor import XECRegressor
from xectrain.config import RunConfig


def task_specs(cfg: RunConfig) -> list[TaskSpec]:
    """The enabled regressor tasks as xecmodel TaskSpecs."""
    return [
        TaskSpec(name, t.loss, dict(t.loss_kwargs), t.weight, t.transform)
        for name, t in cfg.tasks.items()
        if t.enabled
    ]


def model_options(cfg: RunConfig) -> dict[str, Any]:
    """create_model keyword options of the configured kind."""
    m, r = cfg.model, cfg.recon
    opts: dict[str, Any] = {
        "outer_mode": m.outer_mode,
        "outer_fine_pool": tuple(m.outer_fine_pool),
        "share_rect_backbone": m.share_rect_backbone,
        "pos_embed": m.pos_embed,
        "drop_path_rate": m.drop_path,
    }
    if m.kind == "regressor":
        readout = {"readout_dim": m.readout_dim, "readout_threshold": m.readout_threshold}
        return opts | (readout if m.readout_dim else {})
    opts |= {
        "mask_ratio": m.mask_ratio,
        "mask_pool": m.mask_pool,
        "loss_fn": r.loss,
        "loss_beta": r.loss_beta,
        "npho_weight": r.npho_weight,
        "time_weight": r.time_weight,
        "npho_threshold": r.npho_threshold,
        "use_npho_time_weight": r.npho_time_weight,
        "learn_channel_logvars": r.learn_channel_logvars,
        "predict_time": r.predict_time,
    }
    opts["time_mask_ratio_scale"] = m.time_mask_ratio_scale
    return opts | ({} if m.kind == "mae" else {"freeze_encoder": m.freeze_encoder})


def build_model(cfg: RunConfig, scheme: Scheme) -> ModelKind:
    """The configured model on the CPU (moved to the device by the caller)."""
    tasks: list[TaskSpec | str | dict] | None = None
    if cfg.model.kind == "regressor":
        tasks = list(task_specs(cfg))
    m = cfg.model
    return create_model(m.kind, m.size, scheme=scheme, tasks=tasks, **model_options(cfg))


class StepOps:
    """What one training / validation forward computes for a model kind."""

    def __init__(self, cfg: RunConfig) -> None:
        self.kind = cfg.model.kind
        regressor = self.kind == "regressor"
        self.branches = {t: TASKS[t].branch for t in cfg.enabled_tasks} if regressor else {}

    def targets(self) -> list[str]:
        """Store arrays the loader must yield with the sensors."""
        return sorted(set(self.branches.values()))

    def task_targets(self, targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """{task: target tensor} from the loader's {branch: tensor}."""
        return {task: targets[branch] for task, branch in self.branches.items()}

    def loss(
        self, model: nn.Module, raw: ModelKind, batch: BatchView
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Forward `model` (maybe DDP / compiled) on a batch -> (loss, detached parts)."""
        if self.kind == "regressor":
            outputs = model(batch.sensors)
            targets = self.task_targets(batch.targets)
            total, parts = cast(XECRegressor, raw).loss(outputs, targets, batch.weights)
            named = {"total_loss": total.detach()}
            return total, named | {f"loss_{k}": v.detach() for k, v in parts.items()}
        loss, _, _ = model(batch.sensors)
        losses = cast(ReconstructionKind, raw).last_losses
        named = {k: v.detach().float() for k, v in losses.items()}
        return loss, named | {"total_loss": loss.detach()}

    def per_event_loss(
        self, raw: XECRegressor, outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """Regressor: (B,) weighted sum of the task losses of each event (to rank worst ones)."""
        total = None
        for name, head in raw.task_heads().items():
            per = head.spec.weight * head.loss(outputs[name], targets[name]).float()
            total = per if total is None else total + per
        assert total is not None
        return total


def collect_targets(loader: BatchSource, ops: StepOps, max_batches: int) -> dict[str, np.ndarray]:
    """{task: (N, D) targets} of the first `max_batches` training batches (transform fits)."""
    got: dict[str, list[np.ndarray]] = {t: [] for t in ops.branches}
    for i, batch in enumerate(loader):
        if i >= max_batches:
            break
        for task, value in ops.task_targets(batch.targets).items():
            host = np.array(value.detach().float().cpu().numpy(), copy=True)  # buffers are reused
            got[task].append(host.reshape(len(value), -1))
    out = {}
    for task, parts in got.items():
        values = np.concatenate(parts) if parts else np.zeros((0, 1))
        out[task] = values[valid_rows(values)]  # real data mark missing truth with 1e10
    return out
