"""Reusable network blocks, one small file each (GRN, norms, ConvNeXt V2, HexNeXt, fusion)."""

from xecmodel.layers.convnext import ConvNeXtV2Block, ConvNeXtV2Stages
from xecmodel.layers.droppath import DropPath
from xecmodel.layers.fusion import FusionTransformer
from xecmodel.layers.grn import GRN
from xecmodel.layers.hexconv import HexDepthwiseConv, HexNeXtBlock, neighbor_index
from xecmodel.layers.norms import LayerNorm2d

__all__ = [
    "GRN",
    "ConvNeXtV2Block",
    "ConvNeXtV2Stages",
    "DropPath",
    "FusionTransformer",
    "HexDepthwiseConv",
    "HexNeXtBlock",
    "LayerNorm2d",
    "neighbor_index",
]
