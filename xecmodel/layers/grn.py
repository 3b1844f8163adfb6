"""Global Response Normalization (ConvNeXt V2) for channels-last tensors.

GRN(x) = gamma * (x * N(x)) + beta + x, with G(x) the L2 norm of each channel over all
positions (H, W for images, nodes for graphs) and N(x) = G(x) / mean_c G(x). It keeps channels
from collapsing to the same response, which matters most under heavy masking.
"""

from __future__ import annotations

import torch
from torch import nn


class GRN(nn.Module):
    """GRN over (B, H, W, C) or (B, N, C); gamma and beta start at zero (identity map)."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(dim))
        self.beta = nn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spatial = tuple(range(1, x.dim() - 1))  # (1, 2) for images, (1,) for graphs
        gx = torch.linalg.vector_norm(x, ord=2, dim=spatial, keepdim=True)  # (B, 1.., C)
        nx = (gx / (gx.mean(dim=-1, keepdim=True) + self.eps)).to(
            x.dtype
        )  # x dtype: no fp32 upcast (autocast)
        return self.gamma.to(x.dtype) * (x * nx) + self.beta.to(x.dtype) + x
