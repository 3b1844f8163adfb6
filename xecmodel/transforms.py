"""Target transforms owned by the task heads: the network regresses transform(target).

    identity      z = y
    log           z = log(y)                       (y > 0; checked when fitting)
    inverse       z = sign(y) / (|y| + eps)        (signed, 0 -> 0; exact inverse below)
    standardize   z = (y - mean) / std             (mean, std fitted on training targets)
    log+standardize, inverse+standardize           (the base transform, then standardize)

A task may also name one transform per component, comma-separated in component order
(e.g. uvwFI "standardize,standardize,log+standardize": log of the depth w only); a component
without standardization keeps mean 0 and std 1. Losses run in transformed space; `inverse`
brings predictions back to physical units. All fitted numbers are buffers, so checkpoints and
ONNX exports carry them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

BASES = ("identity", "log", "inverse")
TRANSFORMS = (*BASES, "standardize", "log+standardize", "inverse+standardize")
_TINY = 1e-30


def parse_transform(name: str) -> tuple[str, bool]:
    """'log+standardize' -> ('log', True); raises on an unknown name."""
    if name not in TRANSFORMS:
        raise ValueError(f"unknown target transform {name!r}; choose one of {list(TRANSFORMS)}")
    base = name.removesuffix("+standardize")
    return ("identity", True) if base == "standardize" else (base, name.endswith("standardize"))


def parse_transforms(name: str, dim: int) -> list[tuple[str, bool]]:
    """One (base, standardize) per component: a single name for all `dim` components, or a
    comma-separated name per component; raises naming the count or the unknown name."""
    names = [n.strip() for n in name.split(",")]
    if len(names) not in (1, dim):
        raise ValueError(
            f"target transform {name!r} names {len(names)} transforms for {dim} components; "
            f"give one for all, or one per component in order"
        )
    return [parse_transform(n) for n in (names * dim if len(names) == 1 else names)]


class TargetTransform(nn.Module):
    """Physical (..., D) <-> transformed (..., D) for one task."""

    mean: torch.Tensor
    std: torch.Tensor
    fitted: torch.Tensor

    def __init__(
        self,
        name: str,
        dim: int,
        eps: float = 0.0,
        mean: list[float] | None = None,
        std: list[float] | None = None,
    ) -> None:
        super().__init__()
        self.name, self.dim, self.eps = name, dim, float(eps)
        self.parts = parse_transforms(name, dim)
        self.bases = [b for b, _ in self.parts]
        self.uniform = len(set(self.bases)) == 1
        self.base = self.bases[0] if self.uniform else "mixed"
        self.standardize = any(st for _, st in self.parts)
        # components without standardization keep mean 0 / std 1 (fit leaves them alone)
        self._std_mask = np.array([st for _, st in self.parts])
        if self.eps < 0:
            raise ValueError(f"transform eps must be >= 0, got {eps}")
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.register_buffer("fitted", torch.tensor(not self.standardize))
        self.is_fitted = not self.standardize
        if mean is not None or std is not None:
            self.set_stats(np.asarray(mean, np.float64), np.asarray(std, np.float64))

    def set_stats(self, mean: np.ndarray, std: np.ndarray) -> None:
        """Store standardization statistics (shape (D,), std > 0)."""
        if mean.shape != (self.dim,) or std.shape != (self.dim,) or not (std > 0).all():
            raise ValueError(f"standardization needs mean and std of shape ({self.dim},), std > 0")
        self.mean.copy_(torch.from_numpy(mean))
        self.std.copy_(torch.from_numpy(std))
        self.fitted.fill_(True)
        self.is_fitted = True

    def fit(self, y: np.ndarray, where: str = "targets") -> None:
        """Fit mean / std of base(y) over training targets y (N, D); checks the log domain."""
        y = np.asarray(y, np.float64).reshape(len(y), self.dim)
        if not np.isfinite(y).all():
            raise ValueError(f"{where}: non-finite target values; filter them before fitting")
        for c, base in enumerate(self.bases):
            if base == "log" and (y[:, c] <= 0).any():
                part = f" (component {c})" if self.dim > 1 else ""
                raise ValueError(
                    f"{where}{part}: the log transform needs positive targets, found min "
                    f"{y[:, c].min():.4g}; use 'inverse' or 'standardize' for signed quantities"
                )
        if not self.standardize:
            return
        z = self._base_forward(torch.from_numpy(y)).numpy()
        std = np.where(z.std(axis=0) > 0, z.std(axis=0), 1.0)
        mask = self._std_mask
        self.set_stats(np.where(mask, z.mean(axis=0), 0.0), np.where(mask, std, 1.0))

    @property
    def needs_fit(self) -> bool:
        """Fitting checks or learns something: standardization, or a log domain to check."""
        return self.standardize or "log" in self.bases

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args)
        self.is_fitted = bool(self.fitted)

    def require_fitted(self, task: str) -> None:
        """Raise when standardization statistics were never fitted or loaded."""
        if not self.is_fitted:
            raise RuntimeError(
                f"task {task}: transform {self.name!r} has no statistics; call "
                "model.fit_transforms(training targets) or load a checkpoint that has them"
            )

    def _base_forward(self, y: torch.Tensor) -> torch.Tensor:
        if self.uniform:
            return self._forward_one(self.base, y)
        parts = [self._forward_one(b, y[..., c]) for c, b in enumerate(self.bases)]
        return torch.stack(parts, dim=-1)  # (..., D), each component its own base

    def _base_inverse(self, z: torch.Tensor) -> torch.Tensor:
        if self.uniform:
            return self._inverse_one(self.base, z)
        parts = [self._inverse_one(b, z[..., c]) for c, b in enumerate(self.bases)]
        return torch.stack(parts, dim=-1)

    def _forward_one(self, base: str, y: torch.Tensor) -> torch.Tensor:
        if base == "log":
            return torch.log(y)
        if base == "inverse":
            z = torch.sign(y) / (y.abs() + self.eps).clamp_min(_TINY)
            return torch.where(y == 0, torch.zeros_like(z), z)
        return y

    def _inverse_one(self, base: str, z: torch.Tensor) -> torch.Tensor:
        if base == "log":
            return torch.exp(z)
        if base == "inverse":
            return torch.sign(z) * (1.0 / z.abs().clamp_min(_TINY) - self.eps)
        return z

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """Physical -> transformed."""
        z = self._base_forward(y)
        return (z - self.mean) / self.std if self.standardize else z

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """Transformed -> physical."""
        if self.standardize:
            z = z * self.std + self.mean
        return self._base_inverse(z)

    def extra_repr(self) -> str:
        return f"{self.name}, dim={self.dim}, eps={self.eps}"
