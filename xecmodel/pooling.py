"""Weighted-pooling readout over the 4760 sensors (optional input of the task heads).

Per sensor, a raw branch embeds (npho, time, position / 100 cm, inward normal) and an encoded
branch embeds the encoder's feature at that sensor; a learned weight w in (0, 1) comes from the
encoded feature, and dead sensors (npho sentinel) get w = 0. Each branch is pooled four ways:

    weighted mean   sum_n w f / sum_n w
    weighted sum    sum_n w f / N_sensors   (the total, on a fixed scale)
    max, min        over sensors with w >= threshold (0 where there is none)

The eight pooled vectors are concatenated and layer-normed, (B, 8 D). Weighted reductions are
einsums; nothing is broadcast to (B, N, D) beyond the features themselves.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from xecdata.geometry import N_SENSORS, sensor_table
from xecdata.schemes import Scheme
from xecmodel.faces import FaceLayout, SensorAssembler


class WeightedPoolingReadout(nn.Module):
    """(x (B, 4760, 2), encoder maps) -> (B, 8 dim) pooled sensor features."""

    geometry: torch.Tensor

    def __init__(
        self,
        layout: FaceLayout,
        scheme: Scheme,
        rect_channels: int,
        hex_channels: int,
        reduction: int,
        dim: int,
        threshold: float = 0.1,
    ) -> None:
        super().__init__()
        self.npho_sentinel, self.threshold, self.dim = scheme.npho_sentinel, threshold, dim
        t = sensor_table()
        geo = np.concatenate([t.pos / 100.0, t.normal], axis=1).astype(np.float32)
        self.register_buffer("geometry", torch.from_numpy(geo), persistent=False)  # (4760, 6)
        self.raw_x = nn.Linear(2, dim)
        self.raw_geo = nn.Linear(6, dim, bias=False)
        self.raw_out = nn.Sequential(nn.GELU(), nn.Linear(dim, dim))
        self.rect_proj = nn.Conv2d(rect_channels, dim, kernel_size=1)
        self.hex_proj = nn.Linear(hex_channels, dim)
        self.assemble = SensorAssembler(layout, reduction)
        self.enc_out = nn.Sequential(nn.GELU(), nn.Linear(dim, dim))
        self.weight = nn.Linear(dim, 1)
        self.norm = nn.LayerNorm(8 * dim)

    @property
    def out_dim(self) -> int:
        return 8 * self.dim

    def sensor_features(self, maps: dict[str, torch.Tensor]) -> torch.Tensor:
        """Encoder maps -> (B, 4760, dim) encoded feature of every sensor."""
        per_grid = {
            n: self.rect_proj(m) if m.dim() == 4 else self.hex_proj(m) for n, m in maps.items()
        }
        return self.assemble(per_grid)

    def forward(self, x: torch.Tensor, maps: dict[str, torch.Tensor]) -> torch.Tensor:
        enc = self.sensor_features(maps)  # (B, N, D)
        raw = self.raw_out(self.raw_x(x) + self.raw_geo(self.geometry))  # (B, N, D)
        enc_f = self.enc_out(enc)  # (B, N, D)
        alive = (x[..., 0] != self.npho_sentinel).to(enc.dtype)  # (B, N)
        w = torch.sigmoid(self.weight(enc)).squeeze(-1) * alive  # (B, N)
        return self.norm(torch.cat([self._pool(raw, w), self._pool(enc_f, w)], dim=-1))

    def _pool(self, f: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """(B, N, D), weights (B, N) -> (B, 4 D): weighted mean, weighted sum, max, min."""
        wf = torch.einsum("bn,bnd->bd", w, f)  # (B, D)
        mean = wf / w.sum(dim=1, keepdim=True).clamp_min(1e-6)
        total = wf / N_SENSORS
        keep = (w >= self.threshold).unsqueeze(-1)  # (B, N, 1)
        any_kept = keep.any(dim=1)  # (B, 1)
        big = torch.finfo(f.dtype).max
        fmax = torch.where(keep, f, -big).amax(dim=1)
        fmin = torch.where(keep, f, big).amin(dim=1)
        return torch.cat(
            [mean, total, torch.where(any_kept, fmax, 0.0), torch.where(any_kept, fmin, 0.0)],
            dim=-1,
        )
