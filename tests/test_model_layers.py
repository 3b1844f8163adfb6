"""Blocks: GRN formula, hex depthwise conv against a hand computation, masked ConvNeXt blocks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xecdata import facemaps
from xecmodel.layers import GRN, ConvNeXtV2Block, HexDepthwiseConv, HexNeXtBlock, neighbor_index
from xecmodel.layers.convnext import ConvNeXtV2Stages, downsample_mask


def test_grn_matches_formula_on_images_and_graphs() -> None:
    torch.manual_seed(0)
    grn = GRN(3)
    with torch.no_grad():
        grn.gamma.copy_(torch.tensor([0.5, -1.0, 2.0]))
        grn.beta.copy_(torch.tensor([0.1, 0.2, 0.3]))
    for x in (torch.randn(2, 4, 5, 3), torch.randn(2, 7, 3)):
        dims = tuple(range(1, x.dim() - 1))
        g = x.pow(2).sum(dim=dims, keepdim=True).sqrt()
        n = g / (g.mean(dim=-1, keepdim=True) + 1e-6)
        expected = grn.gamma * (x * n) + grn.beta + x
        torch.testing.assert_close(grn(x), expected)


def test_hex_conv_matches_hand_computation() -> None:
    # 3 nodes: 0 <-> 1 (types 1 / 2), 2 -> 0 (type 3), self edges type 0.
    src = np.array([0, 1, 2, 0, 1, 2])
    dst = np.array([0, 1, 2, 1, 0, 0])
    etype = np.array([0, 0, 0, 1, 2, 3])
    conv = HexDepthwiseConv(2, neighbor_index(src, dst, etype, 3, 4))
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]]))
        conv.bias.copy_(torch.tensor([0.5, -0.5]))
    x = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])  # (1, 3, 2)
    w, b = conv.weight.detach(), conv.bias.detach()
    expected = torch.stack(
        [
            w[0] * x[0, 0] + w[2] * x[0, 1] + w[3] * x[0, 2] + b,  # node 0: self, 1 (t2), 2 (t3)
            w[0] * x[0, 1] + w[1] * x[0, 0] + b,  # node 1: self, 0 (t1)
            w[0] * x[0, 2] + b,  # node 2: self only
        ]
    )
    torch.testing.assert_close(conv(x)[0], expected)


def test_neighbor_index_refuses_two_edges_of_one_type() -> None:
    with pytest.raises(ValueError, match="same type"):
        neighbor_index(np.array([0, 1]), np.array([2, 2]), np.array([1, 1]), 3, 2)


def test_detector_hex_graph_has_self_edges_and_six_directions() -> None:
    table = neighbor_index(*facemaps.hex_edges(), 73, 7).numpy()
    assert (table[:, 0] == np.arange(73)).all()
    interior = (table < 73).all(axis=1)
    assert interior.sum() > 20  # interior PMTs see all six neighbours
    assert (table[:, 1:] < 73).sum() == len(facemaps.hex_edges()[0]) - 73


@pytest.mark.parametrize("block", ["convnext", "hexnext"])
def test_masked_blocks_keep_masked_positions_zero_and_ignore_them(block: str) -> None:
    torch.manual_seed(0)
    if block == "convnext":
        net = ConvNeXtV2Block(4, kernel_size=3)
        x, mask = torch.randn(2, 4, 6, 5), (torch.rand(2, 1, 6, 5) < 0.5).float()
    else:
        net = HexNeXtBlock(4, neighbor_index(*facemaps.hex_edges(), 73, 7))
        x, mask = torch.randn(2, 73, 4), (torch.rand(2, 73, 1) < 0.5).float()
    with torch.no_grad():
        net.grn.gamma.normal_()
        out = net(x, mask)
        assert (out * mask).abs().max() == 0
        # what sits at masked positions of the input cannot matter
        out2 = net(x + 5.0 * mask * torch.randn_like(x), mask)
    torch.testing.assert_close(out, out2)


def test_downsampled_mask_keeps_a_cell_masked_only_if_all_inputs_are() -> None:
    m = torch.tensor([[1.0, 1.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]]).reshape(1, 1, 2, 4)
    assert downsample_mask(m).flatten().tolist() == [1.0, 0.0]
    stages = ConvNeXtV2Stages(2, (4, 8), (1, 1), kernel_size=3)
    assert stages(torch.randn(2, 2, 9, 7)).shape == (2, 8, 4, 3)
