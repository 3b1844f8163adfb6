"""Mixed precision: the autocast context of a device and a `training.amp` setting."""

from __future__ import annotations

import contextlib
from typing import Any

import torch


def amp_context(device: torch.device, amp: str) -> contextlib.AbstractContextManager[Any]:
    """bf16 / fp16 autocast on CUDA; float32 elsewhere or with amp "none"."""
    if device.type != "cuda" or amp == "none":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if amp == "bf16" else torch.float16)
