"""Task heads: an MLP per enabled task that owns its target transform and its loss.

`forward` gives the raw outputs in transformed space (what the loss sees), `predict` the
physical quantity: regression values through the inverse transform, unit vectors for
directions, class probabilities for n_gamma.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xecmodel.losses import CLASSIFICATION, DIRECTION, get_loss
from xecmodel.tasks import TaskSpec
from xecmodel.transforms import TargetTransform


class TaskHead(nn.Module):
    """features (B, F) -> raw outputs (B, n_outputs): Linear -> LN -> GELU -> Dropout -> Linear."""

    def __init__(self, spec: TaskSpec, in_dim: int, hidden: int, dropout: float = 0.2) -> None:
        super().__init__()
        self.spec, self.info = spec, spec.info
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, hidden),
            nn.LayerNorm(hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, spec.n_outputs),
        )
        self.transform = TargetTransform(
            spec.transform, self.info.dim, spec.transform_eps, spec.mean, spec.std
        )
        self.loss_fn = get_loss(spec.loss or "", spec.loss_kwargs, where=f"task {spec.name}").fn

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.mlp(features)  # (B, n_outputs), transformed space

    def mean(self, raw: torch.Tensor) -> torch.Tensor:
        """The point estimate in transformed space (drops a log-variance half)."""
        return raw[:, : self.info.dim]

    def predict(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw outputs -> physical (B, dim)."""
        if self.info.kind == CLASSIFICATION:
            return raw.softmax(dim=-1)
        if self.info.kind == DIRECTION:
            return F.normalize(raw, dim=-1)
        self.transform.require_fitted(self.spec.name)
        return self.transform.inverse(self.mean(raw))

    def target(self, y: torch.Tensor) -> torch.Tensor:
        """Physical target (B,) or (B, D) -> what the loss compares with."""
        y = y.reshape(y.shape[0], -1)
        if y.shape[1] != self.info.target_dim:
            raise ValueError(
                f"task {self.spec.name}: target has {y.shape[1]} columns, expected "
                f"{self.info.target_dim} (branch {self.info.branch})"
            )
        if self.info.kind == CLASSIFICATION:
            return y
        self.transform.require_fitted(self.spec.name)
        return self.transform(y.to(torch.float32))

    def loss(self, raw: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-sample loss (B,) in transformed space."""
        return self.loss_fn(raw.float(), self.target(y), **self.spec.loss_kwargs)
