"""The geometry-aware encoder: face backbones, one token per face, a fusion transformer.

(B, 4760, 2) normalized by a scheme -> face grids (xecmodel.faces) -> ConvNeXt V2 stages for
the rectangular grids (one shared backbone or one per grid; same-shape grids run as one batch)
and a HexNeXt stack for top and bottom (shared, batched) -> each grid pooled to a token ->
tokens + position embeddings (learned, or a learned projection of the faces' geometric centres)
-> fusion transformer -> (B, T, D) tokens, T = 6 ("finegrid") or 7 ("split").

A sensor mask (B, 4760) bool (True = masked) writes the scheme's sentinels into the masked
sensors and switches on FCMAE-style dense masking inside the backbones, so nothing of a masked
sensor's value reaches the output.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from xecdata import facemaps
from xecdata.geometry import geometry_id
from xecdata.schemes import Scheme
from xecmodel.faces import FaceGather, face_layout, sentinel_fill
from xecmodel.layers import ConvNeXtV2Stages, FusionTransformer, HexNeXtBlock, neighbor_index

POS_EMBEDS = ("learned", "geometric")


@dataclass(frozen=True)
class EncoderConfig:
    """Encoder hyper-parameters (sizes in xecmodel.registry)."""

    rect_dims: tuple[int, ...] = (32, 64)
    rect_depths: tuple[int, ...] = (2, 3)
    kernel_size: int = 7
    hex_dim: int = 96
    hex_depth: int = 4
    token_dim: int = 1024
    token_grid: int = 4  # rect feature maps are average-pooled to token_grid^2 cells
    fusion_depth: int = 2
    fusion_heads: int = 8
    fusion_ffn: int = 4096
    fusion_dropout: float = 0.1
    drop_path_rate: float = 0.0
    outer_mode: str = "finegrid"
    outer_fine_pool: tuple[int, int] = (3, 3)
    share_rect_backbone: bool = True
    pos_embed: str = "learned"

    def __post_init__(self) -> None:
        if self.pos_embed not in POS_EMBEDS:
            raise ValueError(f"unknown pos_embed {self.pos_embed!r}; choose one of {POS_EMBEDS}")
        for key in ("rect_dims", "rect_depths", "outer_fine_pool"):
            object.__setattr__(self, key, tuple(int(v) for v in getattr(self, key)))

    def to_dict(self) -> dict:
        """Plain JSON-able dict (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def adaptive_pool_matrix(shape: tuple[int, int], grid: int) -> torch.Tensor:
    """(grid^2, H * W) matrix equal to adaptive_avg_pool2d to (grid, grid), as one matmul."""
    h, w = shape
    eye = torch.eye(h * w).reshape(h * w, 1, h, w)
    return F.adaptive_avg_pool2d(eye, grid).reshape(h * w, grid * grid).T.contiguous()


class HexEncoder(nn.Module):
    """(B, 73, 2) -> (B, 73, C): Linear stem + LN + GELU, then HexNeXt blocks."""

    def __init__(self, dim: int, depth: int, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        nbr = neighbor_index(*facemaps.hex_edges(), len(facemaps.TOP_IDS), 7)
        self.stem = nn.Sequential(nn.Linear(2, dim), nn.LayerNorm(dim), nn.GELU())
        rates = torch.linspace(0, drop_path_rate, max(depth, 1)).tolist()
        self.blocks = nn.ModuleList(HexNeXtBlock(dim, nbr, rates[i]) for i in range(depth))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.stem(x)  # (B, 73, C)
        if mask is not None:
            x = x * (1.0 - mask).to(x.dtype)
        for block in self.blocks:
            x = block(x, mask)
        return x


def fourier_features(coords: torch.Tensor, n_freq: int = 8) -> torch.Tensor:
    """(T, K) coordinates -> (T, 2 K n_freq) sin/cos at octave frequencies."""
    freqs = math.pi * 2.0 ** torch.arange(n_freq, dtype=torch.float32)  # (F,)
    angles = coords[..., None] * freqs  # (T, K, F)
    return torch.cat([angles.sin(), angles.cos()], dim=-1).flatten(1)


class XECEncoder(nn.Module):
    """Face backbones + fusion; `forward_features(x, mask)` -> (B, T, D) face tokens."""

    pos_features: torch.Tensor

    def __init__(self, config: EncoderConfig, scheme: Scheme) -> None:
        super().__init__()
        self.config, self.scheme = config, scheme
        self.scheme_id, self.scheme_hash, self.geometry_id = scheme.id, scheme.hash, geometry_id()
        self.layout = face_layout(config.outer_mode, config.outer_fine_pool)
        self.gather = FaceGather(self.layout, scheme)
        self.grids = [(g.name, g.shape) for g in self.layout.rect]
        self._build_rect(config)
        self.hex_encoder = HexEncoder(config.hex_dim, config.hex_depth, config.drop_path_rate)
        d = config.token_dim
        self.hex_token = nn.Sequential(nn.LayerNorm(config.hex_dim), nn.Linear(config.hex_dim, d))
        self.n_tokens = len(self.layout.token_names)
        self._build_pos_embed(config)
        self.fusion = FusionTransformer(
            d, config.fusion_depth, config.fusion_heads, config.fusion_ffn, config.fusion_dropout
        )

    # ---- construction -------------------------------------------------------------------
    def _build_rect(self, c: EncoderConfig) -> None:
        def stages() -> ConvNeXtV2Stages:
            return ConvNeXtV2Stages(2, c.rect_dims, c.rect_depths, c.kernel_size, c.drop_path_rate)

        def token_proj() -> nn.Module:
            flat = c.rect_dims[-1] * c.token_grid**2
            if flat == c.token_dim:
                return nn.Identity()
            return nn.Sequential(nn.LayerNorm(flat), nn.Linear(flat, c.token_dim))

        keys = ["shared"] if c.share_rect_backbone else [n for n, _ in self.grids]
        self.rect_backbones = nn.ModuleDict({k: stages() for k in keys})
        self.rect_tokens = nn.ModuleDict({k: token_proj() for k in keys})
        self.reduction = 2 ** (len(c.rect_dims) - 1)  # ConvNeXtV2Stages.reduction
        for name, (h, w) in self.grids:
            shape = (h // self.reduction, w // self.reduction)
            if min(shape) < 1:
                raise ValueError(f"grid {name} {h}x{w} is too small for {len(c.rect_dims)} stages")
            pool = adaptive_pool_matrix(shape, c.token_grid)
            self.register_buffer(f"pool_{name}", pool, persistent=False)

    def _build_pos_embed(self, c: EncoderConfig) -> None:
        if c.pos_embed == "learned":
            self.pos_embed = nn.Parameter(torch.zeros(1, self.n_tokens, c.token_dim))
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
            return
        centers = torch.from_numpy(self.layout.token_centers())  # (T, 6)
        self.register_buffer("pos_features", fourier_features(centers), persistent=False)
        self.pos_proj = nn.Linear(self.pos_features.shape[1], c.token_dim)

    def _backbone_key(self, name: str) -> str:
        return "shared" if self.config.share_rect_backbone else name

    # ---- forward ------------------------------------------------------------------------
    def forward_maps(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Final feature maps: {grid: (B, C, H / r, W / r)}, {hex face: (B, 73, C_hex)}."""
        if mask is not None:
            x = sentinel_fill(x, mask, self.scheme)
        faces = self.gather(x)
        masks = self.gather.masks(mask) if mask is not None else None
        maps = self._run_rect(faces, masks)
        hexes = [faces[h] for h in self.layout.hex]
        hmask = None if masks is None else torch.cat([masks[h] for h in self.layout.hex])
        nodes = self.hex_encoder(torch.cat(hexes), hmask)  # (n_hex * B, 73, C_hex)
        maps.update(
            zip(self.layout.hex, nodes.unflatten(0, (len(hexes), -1)).unbind(0), strict=True)
        )
        return maps

    def _run_rect(
        self, faces: dict[str, torch.Tensor], masks: dict[str, torch.Tensor] | None
    ) -> dict[str, torch.Tensor]:
        """Run the backbones; grids of one shape sharing a backbone go through as one batch."""
        groups: dict[tuple, list[str]] = {}
        for name, shape in self.grids:
            groups.setdefault((self._backbone_key(name), shape), []).append(name)
        out: dict[str, torch.Tensor] = {}
        for (key, _), names in groups.items():
            imgs = torch.cat([faces[n] for n in names])  # (len(names) * B, 2, H, W)
            m = None if masks is None else torch.cat([masks[n] for n in names])
            feats = self.rect_backbones[key](imgs.contiguous(memory_format=torch.channels_last), m)
            out.update(zip(names, feats.unflatten(0, (len(names), -1)).unbind(0), strict=True))
        return out

    def tokens_from_maps(self, maps: dict[str, torch.Tensor]) -> torch.Tensor:
        """Feature maps -> fused tokens (B, T, D) in layout.token_names order."""
        tokens = []
        for name, _ in self.grids:
            pool = getattr(self, f"pool_{name}")  # (G * G, H' * W')
            pooled = torch.einsum("bcp,gp->bcg", maps[name].flatten(2), pool.to(maps[name].dtype))
            tokens.append(self.rect_tokens[self._backbone_key(name)](pooled.flatten(1)))
        tokens += [self.hex_token(maps[h].mean(dim=1)) for h in self.layout.hex]
        t = torch.stack(tokens, dim=1)  # (B, T, D)
        t = t + (self.pos_embed if self.config.pos_embed == "learned" else self._geo_embed())
        return self.fusion(t)

    def _geo_embed(self) -> torch.Tensor:
        return self.pos_proj(self.pos_features).unsqueeze(0)  # (1, T, D)

    def forward_features(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 4760, 2), optional (B, 4760) bool mask -> (B, T, D) fused face tokens."""
        return self.tokens_from_maps(self.forward_maps(x, mask))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_features(x, mask)


ENCODER_PREFIXES = ("module.", "_orig_mod.")


def encoder_state(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The encoder's entries of a state dict from an MAE, inpainter, regressor or bare encoder.

    Strips DDP ("module.") and torch.compile ("_orig_mod.") prefixes; if any key starts with
    "encoder.", keeps only those (without the prefix), otherwise returns the dict as is.
    """
    clean = {}
    for key, value in state_dict.items():
        for prefix in ENCODER_PREFIXES:
            key = key.removeprefix(prefix)
        clean[key] = value
    if any(k.startswith("encoder.") for k in clean):
        clean = {
            k.removeprefix("encoder."): v for k, v in clean.items() if k.startswith("encoder.")
        }
    return clean


def load_encoder_state(encoder: XECEncoder, state_dict: dict[str, torch.Tensor]) -> None:
    """Load encoder weights (see encoder_state); a mismatch lists the offending keys."""
    state = encoder_state(state_dict)
    own = encoder.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or shapes:
        raise ValueError(
            f"encoder weights do not fit this encoder: missing {missing[:5]} ({len(missing)}), "
            f"unexpected {unexpected[:5]} ({len(unexpected)}), other shape {shapes[:5]} "
            f"({len(shapes)}); build the model with the same size and outer_mode as the "
            "checkpoint"
        )
    encoder.load_state_dict(state)
