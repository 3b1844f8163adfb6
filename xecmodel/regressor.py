"""The multi-task regressor: encoder -> features -> one head per enabled task.

forward(x)          {task: raw outputs (B, n_out)} in transformed space (the loss's space)
predict(x)          {task: (B, dim)} physical units (deg, GeV, ns, cm, unit vector, probs)
loss(outputs, targets, weights)    (total, {task: loss}); targets physical, weights (B,)
fit_transforms(targets)            fit standardization statistics from training targets
forward_features(x) (B, F) head input: flattened fused tokens [+ weighted-pooling readout]
forward_head(f)     {task: raw outputs}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, cast

import numpy as np
import torch
from torch import nn

from xecdata.tasks import CLASSIFICATION
from xecmodel.encoder import XECEncoder
from xecmodel.heads import TaskHead
from xecmodel.kind import ModelKind, OutputSpec
from xecmodel.pooling import WeightedPoolingReadout
from xecmodel.tasks import TASKS, TaskSpec, as_specs


class XECRegressor(ModelKind):
    """Encoder + task heads (+ optional weighted-pooling readout)."""

    kind: ClassVar[str] = "regressor"
    takes_mask: ClassVar[bool] = False

    def __init__(
        self,
        encoder: XECEncoder,
        tasks: list[TaskSpec],
        head_hidden: int = 256,
        head_dropout: float = 0.2,
        readout_dim: int | None = None,
        readout_threshold: float = 0.1,
        freeze_encoder: bool = False,
    ) -> None:
        super().__init__(encoder)
        if not tasks:
            raise ValueError("a regressor needs at least one task")
        self.readout = None
        feat_dim = encoder.n_tokens * encoder.config.token_dim
        if readout_dim:
            c = encoder.config
            self.readout = WeightedPoolingReadout(
                encoder.layout,
                encoder.scheme,
                c.rect_dims[-1],
                c.hex_dim,
                encoder.reduction,
                readout_dim,
                readout_threshold,
            )
            feat_dim += self.readout.out_dim
        self.feature_dim = feat_dim
        self.heads = nn.ModuleDict(
            {t.name: TaskHead(t, feat_dim, head_hidden, head_dropout) for t in tasks}
        )
        self.freeze_encoder = freeze_encoder
        self.encoder.requires_grad_(not freeze_encoder)

    @classmethod
    def build(
        cls, encoder: XECEncoder, tasks: Sequence[Any] | None, **options: Any
    ) -> XECRegressor:
        return cls(encoder, as_specs(list(tasks) if tasks is not None else None), **options)

    @classmethod
    def outputs(cls, config: Mapping[str, Any]) -> tuple[OutputSpec, ...]:
        """One output per task, named after it, in the task's units (probabilities for a
        classification task), written by `xec infer` as pred_<task>."""
        specs = []
        for task in as_specs(config.get("tasks")):
            info = task.info
            units = "probability" if info.kind == CLASSIFICATION else info.units
            specs.append(OutputSpec(info.name, units, "event", (info.dim,), info.labels,
                                    f"pred_{info.name}"))  # fmt: skip
        return tuple(specs)

    def train(self, mode: bool = True) -> XECRegressor:
        """A frozen encoder stays in eval mode while the heads (and readout) train."""
        super().train(mode)
        if self.freeze_encoder:
            self.encoder.eval()
        return self

    @property
    def model_config(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this model (with fitted statistics) via create_model."""
        return self._config | {"tasks": [t.to_dict() for t in self.tasks]}

    @property
    def task_names(self) -> list[str]:
        return list(self.heads)

    def task_heads(self) -> dict[str, TaskHead]:
        """The heads by task name, typed."""
        return {name: cast(TaskHead, head) for name, head in self.heads.items()}

    @property
    def tasks(self) -> list[TaskSpec]:
        """Current task specs, with fitted statistics read back from the buffers."""
        specs = []
        for head in self.task_heads().values():
            d = head.spec.to_dict()
            if head.transform.standardize and head.transform.is_fitted:
                d["mean"] = head.transform.mean.tolist()
                d["std"] = head.transform.std.tolist()
            specs.append(TaskSpec(**d))
        return specs

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 4760, 2) -> (B, feature_dim)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_encoder):
            maps = self.encoder.forward_maps(x)
            feats = self.encoder.tokens_from_maps(maps).flatten(1)  # (B, T * D)
        if self.readout is not None:
            feats = torch.cat([feats, self.readout(x, maps)], dim=1)
        return feats

    def forward_head(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: head(features) for name, head in self.task_heads().items()}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.forward_head(self.forward_features(x))

    def outputs_to_physical(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Raw outputs -> physical predictions (see TaskHead.predict)."""
        heads = self.task_heads()
        return {name: heads[name].predict(raw) for name, raw in outputs.items()}

    def predict(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if mask is not None:
            raise ValueError("regressor: predict takes no mask (takes_mask is False)")
        return self.outputs_to_physical(self.forward(x))

    def loss(
        self,
        outputs: dict[str, torch.Tensor],
        targets: dict[str, torch.Tensor],
        weights: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Weighted sum of task losses; each is sum_b w_b l_b / sum_b w_b over the batch."""
        missing = [n for n in self.heads if n not in targets]
        if missing:
            branches = {n: TASKS[n].branch for n in missing}
            raise KeyError(f"targets lack tasks {missing} (branches {branches})")
        parts: dict[str, torch.Tensor] = {}
        total = outputs[self.task_names[0]].new_zeros((), dtype=torch.float32)
        for name, head in self.task_heads().items():
            per = head.loss(outputs[name], targets[name])  # (B,)
            if weights is None:
                parts[name] = per.mean()
            else:
                w = weights.to(per.dtype).reshape(-1)
                parts[name] = (per * w).sum() / w.sum().clamp_min(1e-12)
            total = total + head.spec.weight * parts[name]
        return total, parts

    def fit_transforms(self, targets: dict[str, np.ndarray]) -> None:
        """Fit every head's transform statistics from training targets {task: (N, D)}."""
        for name, head in self.task_heads().items():
            if head.transform.needs_fit:
                if name not in targets:
                    raise KeyError(f"fit_transforms: no targets for task {name}")
                head.transform.fit(targets[name], where=f"task {name} ({head.info.branch})")
