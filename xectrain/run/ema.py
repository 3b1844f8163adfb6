"""Exponential moving average of the weights, used for validation and for the served model.

w_ema <- d w_ema + (1 - d) w with a warmup-aware decay d(t) = decay * (1 - exp(-t / warmup)):
early on the average follows the fast-changing weights instead of remembering the random init.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn


class ModelEMA:
    """A frozen copy of a model whose floating-point weights track the live model."""

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup_steps: int = 0) -> None:
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay
        self.warmup_steps = warmup_steps
        self.step = 0

    def decay_at(self, step: int) -> float:
        """Decay used for the `step`-th update (1-based)."""
        if self.warmup_steps <= 0:
            return self.decay
        return self.decay * (1.0 - math.exp(-step / self.warmup_steps))

    @torch.no_grad()
    def update(self, model: nn.Module, skip: torch.Tensor | None = None) -> None:
        """Move the average toward `model` (the unwrapped live model) after an optimizer step.

        skip: 0-dim float tensor, 1 when the optimizer step was skipped (non-finite gradients):
        the average is then left unchanged, decided on the device without a host sync."""
        self.step += 1
        d = self.decay_at(self.step)
        ema_float, live_float = [], []
        for ema_t, live_t in zip(
            self.module.state_dict().values(), model.state_dict().values(), strict=True
        ):
            if ema_t.dtype.is_floating_point:
                ema_float.append(ema_t)
                live_float.append(live_t.detach())
            else:
                ema_t.copy_(live_t)  # counters and integer buffers are copied, not averaged
        if not ema_float:
            return
        if skip is None:
            torch._foreach_lerp_(ema_float, live_float, 1.0 - d)
            return
        delta = torch._foreach_sub(live_float, ema_float)
        torch._foreach_mul_(delta, (1.0 - skip) * (1.0 - d))
        torch._foreach_add_(ema_float, delta)

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.module.state_dict(), "step": self.step, "decay": self.decay}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["model"])
        self.step = int(state["step"])
