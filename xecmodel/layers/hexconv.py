"""Graph depthwise convolution on the hexagonal PMT faces and the HexNeXt block.

A node's output is sum_k w_k * x[neighbour_k] + b per channel, with one learned weight vector
per edge type k (0 = the node itself, 1..6 = one physical direction each, from
xecdata.facemaps.hex_edges). The graph is stored as a dense (N, K) neighbour table padded with
index N, which points at an all-zero row appended to the input: one gather and one einsum,
no loops over nodes or edges.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xecmodel.layers.droppath import DropPath
from xecmodel.layers.grn import GRN


def neighbor_index(
    src: np.ndarray, dst: np.ndarray, edge_type: np.ndarray, n_nodes: int, n_types: int
) -> torch.Tensor:
    """(n_nodes, n_types) int64 table: table[dst, type] = src, n_nodes where no such edge.

    Messages flow src -> dst. Raises if a node receives two edges of one type.
    """
    table = np.full((n_nodes, n_types), n_nodes, dtype=np.int64)
    if np.unique(np.stack([dst, edge_type]), axis=1).shape[1] != len(dst):
        raise ValueError("hex graph: a node has two incoming edges of the same type")
    table[np.asarray(dst), np.asarray(edge_type)] = np.asarray(src)
    return torch.from_numpy(table)


class HexDepthwiseConv(nn.Module):
    """(B, N, C) -> (B, N, C): per-edge-type, per-channel weights over a fixed graph."""

    neighbors: torch.Tensor

    def __init__(self, dim: int, neighbors: torch.Tensor) -> None:
        super().__init__()
        n_types = neighbors.shape[1]
        self.register_buffer("neighbors", neighbors.clone(), persistent=False)  # (N, K)
        self.weight = nn.Parameter(torch.randn(n_types, dim) * 0.02)  # (K, C)
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, (0, 0, 0, 1))  # (B, N + 1, C); row N is the zero pad
        nb = padded[:, self.neighbors]  # (B, N, K, C)
        w, b = self.weight.to(x.dtype), self.bias.to(x.dtype)  # no fp32 promotion (autocast)
        return torch.einsum("bnkc,kc->bnc", nb, w) + b


class HexNeXtBlock(nn.Module):
    """HexDepthwiseConv -> LN -> Linear 4C -> GELU -> GRN -> Linear C, plus the residual.

    The graph twin of ConvNeXtV2Block, with the same dense masking; mask is (B, N, 1) float,
    1 at masked nodes.
    """

    def __init__(self, dim: int, neighbors: torch.Tensor, drop_path: float = 0.0) -> None:
        super().__init__()
        self.conv = HexDepthwiseConv(dim, neighbors)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.grn = GRN(4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        keep = None if mask is None else (1.0 - mask).to(x.dtype)  # (B, N, 1)
        if keep is not None:
            x = x * keep
        y = self.conv(x)
        if keep is not None:
            y = y * keep
        y = self.act(self.pwconv1(self.norm(y)))  # (B, N, 4C)
        if keep is not None:
            y = y * keep
        y = self.pwconv2(self.grn(y))  # (B, N, C)
        out = x + self.drop_path(y)
        return out if keep is None else out * keep
