"""Task heads: an MLP per enabled task that owns its target transform and its loss.

`forward` gives the raw outputs in transformed space, `predict` the physical quantity:
regression values through the inverse transform, unit vectors for directions, class
probabilities for n_gamma. `loss` compares in the loss's space: the raw output with the
transformed target, the physical prediction with the raw target (relative losses), or unit
vectors (direction losses; the angle task's (theta, phi) through `polar_to_unit`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xecmodel.losses import CLASSIFICATION, DIRECTION, PHYSICAL, VECTORS, get_loss, polar_to_unit
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
        info = get_loss(spec.loss or "", spec.loss_kwargs, where=f"task {spec.name}")
        self.loss_fn, self.loss_space = info.fn, info.space

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
        """Per-sample loss (B,) in the loss's space (see the module docstring)."""
        target, raw = self.target(y), raw.float()  # target() also checks the columns
        if self.loss_space == PHYSICAL or (self.loss_space == VECTORS and self.info.polar):
            pred, target = self.predict(raw), y.reshape(target.shape).float()
            if self.info.polar:
                pred, target = polar_to_unit(pred), polar_to_unit(target)
            return self.loss_fn(pred, target, **self.spec.loss_kwargs)
        return self.loss_fn(raw, target, **self.spec.loss_kwargs)
