"""ConvNeXt V2 blocks and a two-or-more-stage backbone with FCMAE-style dense masking.

Masks are float (B, 1, H, W) with 1 at masked positions. Dense masking emulates a sparse
convolution: a block zeroes masked positions on its input (the residual and what the depthwise
conv reads), after the depthwise conv, before GRN (so its statistics see only visible
positions) and on its output; a downsampled cell is masked only when all four inputs were.
With mask=None the same weights run as a plain dense network (fine-tuning, inference).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from xecmodel.layers.droppath import DropPath
from xecmodel.layers.grn import GRN
from xecmodel.layers.norms import LayerNorm2d


def _keep(mask: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    """1 - mask in the activations' dtype (no fp32 promotion under autocast), or None."""
    return None if mask is None else (1.0 - mask).to(like.dtype)


class ConvNeXtV2Block(nn.Module):
    """DWConv k x k -> LN -> Linear 4C -> GELU -> GRN -> Linear C, plus the residual."""

    def __init__(self, dim: int, kernel_size: int = 7, drop_path: float = 0.0) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.grn = GRN(4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        keep = _keep(mask, x)  # (B, 1, H, W) or None
        if keep is not None:
            x = x * keep  # the residual, and what the depthwise conv reads, skip masked cells
        y = self.dwconv(x)
        if keep is not None:
            y = y * keep
        y = y.permute(0, 2, 3, 1)  # (B, C, H, W) -> (B, H, W, C)
        y = self.act(self.pwconv1(self.norm(y)))
        if keep is not None:
            y = y * keep.permute(0, 2, 3, 1)  # visible positions only feed GRN statistics
        y = self.pwconv2(self.grn(y))
        y = y.permute(0, 3, 1, 2)  # (B, H, W, C) -> (B, C, H, W)
        out = x + self.drop_path(y)
        return out if keep is None else out * keep


def downsample_mask(mask: torch.Tensor | None) -> torch.Tensor | None:
    """(B, 1, H, W) -> (B, 1, H // 2, W // 2): a cell stays masked only if all 4 inputs were."""
    if mask is None:
        return None
    return 1.0 - F.max_pool2d(1.0 - mask, kernel_size=2, stride=2)


class ConvNeXtV2Stages(nn.Module):
    """Stem (conv 3x3, same size) + stages of ConvNeXt V2 blocks, 2x2 stride-2 downsampling.

    (B, in_chans, H, W) -> (B, dims[-1], H / 2^(S-1), W / 2^(S-1)). The 3x3 stem keeps one
    feature cell per sensor cell, so decoders and readouts map back to sensors exactly.
    """

    def __init__(
        self,
        in_chans: int,
        dims: Sequence[int],
        depths: Sequence[int],
        kernel_size: int = 7,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if len(dims) != len(depths) or not dims:
            raise ValueError(f"dims {dims} and depths {depths} need the same non-zero length")
        self.dims = tuple(dims)
        self.stem_conv = nn.Conv2d(in_chans, dims[0], kernel_size=3, padding=1)
        self.stem_norm = LayerNorm2d(dims[0], eps=1e-6)
        self.down_norms = nn.ModuleList(LayerNorm2d(d, eps=1e-6) for d in dims[:-1])
        self.down_convs = nn.ModuleList(
            nn.Conv2d(dims[i], dims[i + 1], kernel_size=2, stride=2) for i in range(len(dims) - 1)
        )
        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        starts = [sum(depths[:i]) for i in range(len(depths))]
        self.stages = nn.ModuleList(
            nn.ModuleList(ConvNeXtV2Block(dim, kernel_size, rates[s + j]) for j in range(depth))
            for dim, depth, s in zip(dims, depths, starts, strict=True)
        )

    @property
    def reduction(self) -> int:
        """Spatial reduction factor of the output grid."""
        return 2 ** (len(self.dims) - 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.stem_norm(self.stem_conv(x))  # (B, C0, H, W)
        keep = _keep(mask, x)
        if keep is not None:
            x = x * keep
        for i, blocks in enumerate(self.stages):
            if i > 0:
                x, mask = self._downsample(i - 1, x, mask)
            for block in cast(nn.ModuleList, blocks):
                x = block(x, mask)
        return x

    def _downsample(
        self, i: int, x: torch.Tensor, mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """LN -> (re-mask) -> conv 2x2 s2 -> re-mask with the downsampled mask."""
        x = self.down_norms[i](x)
        keep = _keep(mask, x)
        if keep is not None:
            x = x * keep
        x = self.down_convs[i](x)  # (B, C_i+1, H / 2, W / 2)
        mask = downsample_mask(mask)
        keep = _keep(mask, x)
        if keep is not None:
            x = x * keep
        return x, mask
