"""Invalid-aware random sensor masks, built on the batch's device without per-sample loops.

A sensor is a masking candidate unless it is already invalid. Which sensors count as already
invalid is the mask pool:

    "valid_time"  (default) time channel == time_sentinel: the scheme's definition of an already
                  invalid sensor (dead, or too little light for a time).
    "valid_npho"  npho channel == npho_sentinel (dead only): dark sensors are masked too, so the
                  model learns where there is no light; their time is never a loss target.
                  `time_mask_ratio_scale` > 1 then prefers sensors with a valid time.

Each event masks floor(mask_ratio * candidates) sensors, chosen by the smallest random keys
(one sort per batch). Masked sensors are written as sentinels (see faces.sentinel_fill).
"""

from __future__ import annotations

import torch

from xecdata.schemes import Scheme

MASK_POOLS = ("valid_time", "valid_npho")


def already_invalid(x: torch.Tensor, scheme: Scheme, pool: str = "valid_time") -> torch.Tensor:
    """(B, 4760, 2) -> (B, 4760) bool: sensors that can never be masked (no ground truth)."""
    if pool == "valid_time":
        return x[..., 1] == scheme.time_sentinel
    if pool == "valid_npho":
        return x[..., 0] == scheme.npho_sentinel
    raise ValueError(f"unknown mask pool {pool!r}; choose one of {MASK_POOLS}")


def random_mask(
    x: torch.Tensor,
    scheme: Scheme,
    mask_ratio: float,
    *,
    time_mask_ratio_scale: float = 1.0,
    pool: str = "valid_time",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(B, 4760, 2) -> (B, 4760) bool mask of floor(mask_ratio * candidates) sensors per event."""
    if not 0.0 <= mask_ratio <= 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1], got {mask_ratio}")
    if time_mask_ratio_scale <= 0:
        raise ValueError(f"time_mask_ratio_scale must be > 0, got {time_mask_ratio_scale}")
    if time_mask_ratio_scale != 1.0 and pool == "valid_time":
        raise ValueError(
            "time_mask_ratio_scale prefers sensors with a valid time, but with mask pool "
            "'valid_time' every candidate has one; use pool 'valid_npho' or scale 1.0"
        )
    invalid = already_invalid(x, scheme, pool)  # (B, N)
    b, n = invalid.shape
    keys = torch.rand((b, n), device=x.device, generator=generator)
    if time_mask_ratio_scale != 1.0:
        keys = torch.where(x[..., 1] != scheme.time_sentinel, keys / time_mask_ratio_scale, keys)
    keys = keys.masked_fill(invalid, torch.inf)
    n_mask = ((~invalid).sum(dim=1) * mask_ratio).floor().long()  # (B,)
    order = keys.argsort(dim=1)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(n, device=x.device).expand(b, n))
    return rank < n_mask.unsqueeze(1)


def actual_mask_ratio(mask: torch.Tensor, invalid: torch.Tensor) -> torch.Tensor:
    """Masked / candidate sensors over the batch (0-dim tensor; no host sync)."""
    return mask.sum() / (~invalid).sum().clamp_min(1)
