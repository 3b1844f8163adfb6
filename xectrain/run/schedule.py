"""Learning-rate schedules as pure functions of the optimizer step (stepped after every
optimizer step, never per epoch), with linear warmup: cosine, one-cycle, cosine with warm
restarts (SGDR) and constant. The schedule's few numbers go into the checkpoint, so a resumed
run continues on exactly the same curve; `--refresh-lr` builds a new one over the remaining
steps instead."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

from xectrain.config import TrainingConfig

ONECYCLE_DIV = 25.0  # one-cycle starts at lr / 25, as in the usual one-cycle recipe


@dataclass
class LRSchedule:
    """lr(step) for optimizer steps counted from the start of training."""

    kind: str
    base_lr: float
    min_lr: float
    total_steps: int
    warmup_steps: int = 0
    start_step: int = 0
    restart_steps: int = 1
    restart_mult: float = 1.0
    pct_start: float = 0.3

    def lr(self, step: int) -> float:
        """Learning rate for the optimizer step that follows `step` completed steps."""
        s = max(step - self.start_step, 0)
        if self.kind == "onecycle":
            return self._onecycle(s)
        if s < self.warmup_steps:
            return self.base_lr * (s + 1) / (self.warmup_steps + 1)
        t = s - self.warmup_steps
        if self.kind == "constant":
            return self.base_lr
        if self.kind == "cosine":
            return self._cosine(t / max(self.total_steps - self.warmup_steps, 1))
        if self.kind == "cosine_restarts":
            return self._cosine(self._cycle_position(t))
        raise ValueError(f"unknown schedule {self.kind!r}")

    def _cosine(self, progress: float) -> float:
        progress = min(max(progress, 0.0), 1.0)
        return self.min_lr + 0.5 * (self.base_lr - self.min_lr) * (1 + math.cos(math.pi * progress))

    def _cycle_position(self, t: int) -> float:
        """Fraction of the current SGDR cycle done after t post-warmup steps."""
        length = float(max(self.restart_steps, 1))
        while t >= length:
            t -= int(length)
            length = max(round(length * self.restart_mult), 1)
        return t / length

    def _onecycle(self, s: int) -> float:
        up = max(int(self.pct_start * self.total_steps), 1)
        start = self.base_lr / ONECYCLE_DIV
        if s < up:
            return start + (self.base_lr - start) * 0.5 * (1 - math.cos(math.pi * s / up))
        return self._cosine((s - up) / max(self.total_steps - up, 1))

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> LRSchedule:
        return cls(**state)


def build_schedule(
    cfg: TrainingConfig, steps_per_epoch: int, start_step: int = 0, epochs: float | None = None
) -> LRSchedule:
    """The schedule of `cfg` for `epochs` (default cfg.epochs) epochs of `steps_per_epoch`
    optimizer steps, beginning at optimizer step `start_step`."""
    epochs = cfg.epochs if epochs is None else epochs
    total = max(round(epochs * steps_per_epoch), 1)
    warmup = 0 if start_step else round(cfg.warmup_epochs * steps_per_epoch)
    return LRSchedule(
        kind=cfg.scheduler,
        base_lr=cfg.lr,
        min_lr=cfg.min_lr,
        total_steps=total,
        warmup_steps=min(warmup, total - 1),
        start_step=start_step,
        restart_steps=max(round(cfg.restart_epochs * steps_per_epoch), 1),
        restart_mult=cfg.restart_mult,
        pct_start=cfg.onecycle_pct_start,
    )


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group (a plain float: no tensor, no sync)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
