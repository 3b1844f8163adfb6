"""AdamW with weight decay only where it regularizes: matrices and convolution kernels.

Norm scales and shifts (LayerNorm, GRN gamma/beta, BatchNorm), biases, embeddings (positional
or token tables) and learned loss log-variances are not decayed: shrinking them toward zero
changes what the layer computes instead of limiting capacity.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from xectrain.config import TrainingConfig

_NO_DECAY_NAMES = ("embed", "token", "logvar", "pos_", "bias")


def _is_norm(module: nn.Module) -> bool:
    name = type(module).__name__
    return (
        isinstance(module, nn.LayerNorm | nn.GroupNorm | nn.modules.batchnorm._NormBase)
        or "Norm" in name
        or name in ("GRN", "GlobalResponseNorm")
    )


def no_decay(name: str, param: nn.Parameter, owner: nn.Module) -> bool:
    """True for parameters that must not be weight-decayed (see the module docstring)."""
    leaf = name.rsplit(".", 1)[-1].lower()
    return (
        param.ndim <= 1
        or _is_norm(owner)
        or isinstance(owner, nn.Embedding)
        or any(tag in leaf for tag in _NO_DECAY_NAMES)
    )


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two AdamW groups: decayed and not decayed (frozen parameters are left out)."""
    decay: list[nn.Parameter] = []
    keep: list[nn.Parameter] = []
    seen: set[int] = set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue  # frozen, or shared and already placed
            seen.add(id(param))
            (keep if no_decay(name, param, module) else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": keep, "weight_decay": 0.0},
    ]


def build_optimizer(model: nn.Module, cfg: TrainingConfig) -> torch.optim.AdamW:
    """Fused AdamW over `model`'s trainable parameters. The fused kernel (CPU and CUDA) takes a
    device-side `found_inf` flag, so a non-finite step is skipped without a host sync."""
    beta1, beta2 = cfg.betas
    return torch.optim.AdamW(
        param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(beta1, beta2), fused=True
    )
