"""Named per-sample losses. Every loss maps (pred (B, P), target (B, D)) -> (B,).

    smooth_l1(beta=1)           mean_d smooth_l1(p - t; beta)
    huber(delta=1)              mean_d huber(p - t; delta)
    l1                          mean_d |p - t|
    mse, l2                     mean_d (p - t)^2
    relative_l1(eps=1e-6)       mean_d |r|,  r = (p - t) / (|t| + eps)
    relative_smooth_l1(beta=0.01, eps=1e-6)   mean_d smooth_l1(r; beta)  (beta: a relative error)
    relative_mse(eps=1e-6)      mean_d r^2
    gaussian_nll(logvar_min=-15, logvar_max=15)
                                pred = [mu | s] (B, 2D), s = clamp(log sigma^2):
                                mean_d 0.5 (s + (t - mu)^2 exp(-s))
    angular(eps=1e-7)           opening angle (rad) between p and t: atan2(|p x t|, p . t)
    cosine                      1 - p . t / (|p| |t|)
    cross_entropy(label_smoothing=0)   pred = logits (B, C), target = class index (B,) or (B, 1)

Each loss says which task kinds it serves, how many outputs per target dimension it needs and
the space it runs in (`LossInfo.space`): most compare the head's raw output with the
transformed target; the `relative_*` losses compare the prediction and the target in physical
units (the head inverse-transforms its output), so r is the relative error of the physical
quantity whatever the transform; the direction losses compare unit vectors, which the `angle`
task's (theta, phi) in degrees become through `polar_to_unit`.
`get_loss` raises on an unknown name or keyword; nothing falls back to another loss.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from xecdata.tasks import CLASSIFICATION, DIRECTION, REGRESSION


def smooth_l1(p: torch.Tensor, t: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    return F.smooth_l1_loss(p, t, reduction="none", beta=beta).mean(-1)


def huber(p: torch.Tensor, t: torch.Tensor, delta: float = 1.0) -> torch.Tensor:
    return F.huber_loss(p, t, reduction="none", delta=delta).mean(-1)


def l1(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return (p - t).abs().mean(-1)


def mse(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return (p - t).square().mean(-1)


def _relative(p: torch.Tensor, t: torch.Tensor, eps: float) -> torch.Tensor:
    return (p - t) / (t.abs() + eps)  # (B, D) relative error in physical units


def relative_l1(p: torch.Tensor, t: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    return _relative(p, t, eps).abs().mean(-1)


def relative_smooth_l1(
    p: torch.Tensor, t: torch.Tensor, beta: float = 0.01, eps: float = 1e-6
) -> torch.Tensor:
    r = _relative(p, t, eps)
    return F.smooth_l1_loss(r, torch.zeros_like(r), reduction="none", beta=beta).mean(-1)


def relative_mse(p: torch.Tensor, t: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    return _relative(p, t, eps).square().mean(-1)


def gaussian_nll(
    p: torch.Tensor, t: torch.Tensor, logvar_min: float = -15.0, logvar_max: float = 15.0
) -> torch.Tensor:
    mu, s = p.chunk(2, dim=-1)  # (B, D) each
    s = s.clamp(logvar_min, logvar_max)
    return (0.5 * (s + (t - mu).square() * torch.exp(-s))).mean(-1)


def angular(p: torch.Tensor, t: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    cross = torch.linalg.cross(p, t, dim=-1)  # (B, 3)
    sin = (cross.square().sum(-1) + eps * eps).sqrt()  # eps keeps the gradient finite at 0
    return torch.atan2(sin, (p * t).sum(-1))


def cosine(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return 1.0 - F.cosine_similarity(p, t, dim=-1, eps=1e-8)


def polar_to_unit(angles_deg: torch.Tensor) -> torch.Tensor:
    """(B, 2) (theta, phi) in degrees -> (B, 3) unit vectors (sin t cos p, sin t sin p, cos t):
    the inverse of emiAng's convention (theta from +z, phi = atan2(y, x))."""
    t, p = torch.deg2rad(angles_deg).unbind(-1)
    return torch.stack([t.sin() * p.cos(), t.sin() * p.sin(), t.cos()], dim=-1)


def cross_entropy(p: torch.Tensor, t: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    return F.cross_entropy(
        p, t.reshape(-1).long(), reduction="none", label_smoothing=label_smoothing
    )


TRANSFORMED, PHYSICAL, VECTORS = "transformed", "physical", "vectors"


@dataclass(frozen=True)
class LossInfo:
    """A named loss: the function, the task kinds it serves, outputs per target dimension and
    the space it compares in (TRANSFORMED, PHYSICAL units, or unit VECTORS)."""

    fn: Callable[..., torch.Tensor]
    kinds: tuple[str, ...]
    outputs_per_dim: int = 1
    space: str = TRANSFORMED

    @property
    def keywords(self) -> tuple[str, ...]:
        return tuple(inspect.signature(self.fn).parameters)[2:]


_VALUE = (REGRESSION, DIRECTION)
LOSSES: dict[str, LossInfo] = {
    "smooth_l1": LossInfo(smooth_l1, _VALUE),
    "huber": LossInfo(huber, _VALUE),
    "l1": LossInfo(l1, _VALUE),
    "mse": LossInfo(mse, _VALUE),
    "l2": LossInfo(mse, _VALUE),
    "relative_l1": LossInfo(relative_l1, (REGRESSION,), space=PHYSICAL),
    "relative_smooth_l1": LossInfo(relative_smooth_l1, (REGRESSION,), space=PHYSICAL),
    "relative_mse": LossInfo(relative_mse, (REGRESSION,), space=PHYSICAL),
    "gaussian_nll": LossInfo(gaussian_nll, (REGRESSION,), outputs_per_dim=2),
    "angular": LossInfo(angular, (DIRECTION,), space=VECTORS),
    "cosine": LossInfo(cosine, (DIRECTION,), space=VECTORS),
    "cross_entropy": LossInfo(cross_entropy, (CLASSIFICATION,)),
}


def get_loss(name: str, kwargs: dict | None = None, *, where: str = "loss") -> LossInfo:
    """The loss called `name`, with its keyword arguments checked; raises listing valid names."""
    if name not in LOSSES:
        raise ValueError(f"{where}: unknown loss {name!r}; choose one of {sorted(LOSSES)}")
    info = LOSSES[name]
    unknown = sorted(set(kwargs or {}) - set(info.keywords))
    if unknown:
        raise ValueError(
            f"{where}: loss {name!r} takes no option(s) {unknown}; its options are "
            f"{list(info.keywords) or 'none'}"
        )
    return info


def compute_loss(
    name: str, pred: torch.Tensor, target: torch.Tensor, kwargs: dict | None = None
) -> torch.Tensor:
    """Per-sample loss (B,) of the named loss."""
    return get_loss(name, kwargs).fn(pred, target, **(kwargs or {}))
