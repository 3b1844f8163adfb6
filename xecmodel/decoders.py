"""Face decoders / inpainting heads shared by the MAE and the inpainter.

A rect head starts from the encoder's final feature map of its grid (B, C, h, w), replaces
masked cells by a learned mask token, adds the face's fused token, upsamples (nearest) to the
grid (B, dim, H, W), optionally adds a stem of the (masked) face image itself (the inpainter's
local context), runs ConvNeXt V2 blocks and predicts `out_ch` values per cell. The hex head is
the same on the 73 nodes with HexNeXt blocks. `FaceHeads` runs one head per grid / hex face and
maps the per-cell outputs back to (B, 4760, out_ch) through faces.SensorAssembler.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xecdata import facemaps
from xecmodel.encoder import XECEncoder
from xecmodel.faces import SensorAssembler
from xecmodel.layers import ConvNeXtV2Block, HexNeXtBlock, LayerNorm2d, neighbor_index
from xecmodel.layers.convnext import downsample_mask


class RectHead(nn.Module):
    """(fmap (B, C, h, w), token (B, D)) -> (B, out_ch, H, W) for one rectangular grid."""

    def __init__(
        self, fmap_ch: int, token_dim: int, dim: int, depth: int, out_ch: int, image_ch: int = 0
    ) -> None:
        super().__init__()
        self.fmap_proj = nn.Conv2d(fmap_ch, dim, kernel_size=1)
        self.token_proj = nn.Linear(token_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, dim, 1, 1))
        self.image_stem = nn.Conv2d(image_ch, dim, 3, padding=1) if image_ch else None
        self.blocks = nn.ModuleList(ConvNeXtV2Block(dim) for _ in range(depth))
        self.norm = LayerNorm2d(dim, eps=1e-6)
        self.out = nn.Conv2d(dim, out_ch, kernel_size=1)

    def forward(
        self,
        fmap: torch.Tensor,
        token: torch.Tensor,
        shape: tuple[int, int],
        mask_low: torch.Tensor | None = None,
        image: torch.Tensor | None = None,
    ) -> torch.Tensor:
        y = self.fmap_proj(fmap)  # (B, dim, h, w)
        if mask_low is not None:
            m = mask_low.to(y.dtype)
            y = y * (1.0 - m) + self.mask_token.to(y.dtype) * m
        y = F.interpolate(y, size=shape, mode="nearest")  # (B, dim, H, W)
        y = y + self.token_proj(token)[:, :, None, None]
        if self.image_stem is not None and image is not None:
            y = y + self.image_stem(image)
        for block in self.blocks:
            y = block(y)
        return self.out(self.norm(y))  # (B, out_ch, H, W)


class HexHead(nn.Module):
    """(nodes (B, 73, C), token (B, D)) -> (B, 73, out_ch) for one hexagonal face."""

    def __init__(
        self, node_ch: int, token_dim: int, dim: int, depth: int, out_ch: int, image_ch: int = 0
    ) -> None:
        super().__init__()
        n_nodes = len(facemaps.TOP_IDS)
        self.node_proj = nn.Linear(node_ch, dim)
        self.token_proj = nn.Linear(token_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, n_nodes, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.image_stem = nn.Linear(image_ch, dim) if image_ch else None
        nbr = neighbor_index(*facemaps.hex_edges(), n_nodes, 7)
        self.blocks = nn.ModuleList(HexNeXtBlock(dim, nbr) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, out_ch)

    def forward(
        self,
        nodes: torch.Tensor,
        token: torch.Tensor,
        mask: torch.Tensor | None = None,
        image: torch.Tensor | None = None,
    ) -> torch.Tensor:
        y = self.node_proj(nodes)  # (B, 73, dim)
        if mask is not None:
            m = mask.to(y.dtype)
            y = y * (1.0 - m) + self.mask_token.to(y.dtype) * m
        y = y + self.pos + self.token_proj(token)[:, None, :]
        if self.image_stem is not None and image is not None:
            y = y + self.image_stem(image)
        for block in self.blocks:
            y = block(y)
        return self.out(self.norm(y))  # (B, 73, out_ch)


class FaceHeads(nn.Module):
    """One head per grid and hex face of an encoder -> per-sensor outputs (B, 4760, out_ch).

    `image=True` feeds each head its face image plus the mask as a third channel (inpainter).
    """

    def __init__(
        self,
        encoder: XECEncoder,
        rect_dim: int,
        rect_depth: int,
        hex_dim: int,
        hex_depth: int,
        out_ch: int,
        image: bool = False,
    ) -> None:
        super().__init__()
        c, layout = encoder.config, encoder.layout
        self.layout, self.image = layout, image
        self.reduction: int = encoder.reduction
        self.shapes = {g.name: g.shape for g in layout.rect}
        img_ch = 3 if image else 0
        self.rect = nn.ModuleDict(
            {
                n: RectHead(c.rect_dims[-1], c.token_dim, rect_dim, rect_depth, out_ch, img_ch)
                for n in self.shapes
            }
        )
        self.hex = nn.ModuleDict(
            {
                h: HexHead(c.hex_dim, c.token_dim, hex_dim, hex_depth, out_ch, img_ch)
                for h in layout.hex
            }
        )
        self.assemble = SensorAssembler(layout, reduction=1)

    def forward(
        self,
        maps: dict[str, torch.Tensor],
        tokens: torch.Tensor,
        masks: dict[str, torch.Tensor] | None = None,
        faces: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """maps / masks / faces per grid (encoder.forward_maps, gather.masks, gather)."""
        tok = dict(zip(self.layout.token_names, tokens.unbind(dim=1), strict=True))
        out: dict[str, torch.Tensor] = {}
        for name, head in self.rect.items():
            m = None if masks is None else masks[name]
            img = (
                None
                if not self.image or faces is None or m is None
                else torch.cat([faces[name], m], 1)
            )
            out[name] = head(maps[name], tok[name], self.shapes[name], self._low(m), img)
        for name, head in self.hex.items():
            m = None if masks is None else masks[name]
            img = (
                None
                if not self.image or faces is None or m is None
                else torch.cat([faces[name], m], -1)
            )
            out[name] = head(maps[name], tok[name], m, img)
        return self.assemble(out)  # (B, 4760, out_ch)

    def _low(self, mask: torch.Tensor | None) -> torch.Tensor | None:
        """Grid mask -> the encoder's final resolution."""
        r = self.reduction
        while r > 1 and mask is not None:
            mask, r = downsample_mask(mask), r // 2
        return mask
