"""From the (B, 4760, 2) sensor vector to face images and hex node sets, and back to sensors.

`face_layout` describes which grids the encoder sees (index maps from xecdata.facemaps only):
inner (93, 44), US and DS (24, 6), and the outer face either as the fine grid sum-pooled by
`outer_fine_pool` ("finegrid") or as the coarse (9, 24) grid plus the centre patch (5, 6)
("split"); top and bottom are hex node sets of 73 PMTs.

The outer fine grid conserves photon counts in physical units whatever the scheme: normalized
npho is inverted with the scheme's torch inverse, split by facemaps.OUTER_FINE_AREA, sum-pooled
and normalized again (never divided in normalized space, which is only right for linear
schemes). Time is intensive: a pooled cell takes the photon-weighted mean of its valid times,
which equals the mean of the physical times because the time normalization is affine. A cell
with no live sensor gets the sentinels; a cell with some dead or masked sensors is estimated
from the live ones (their counts scaled by cells / live cells).

`SensorAssembler` maps per-grid outputs back onto the 4760 sensors (decoders, readouts): every
sensor is reported by exactly one grid, through a few (cell, weight) taps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from xecdata import facemaps
from xecdata.geometry import N_SENSORS, sensor_table
from xecdata.schemes import Scheme

OUTER_MODES = ("finegrid", "split")
HEX_FACES = ("top", "bottom")


@dataclass(frozen=True)
class RectGrid:
    """One rectangular encoder input: name, (H, W), sensor id per cell (None: the fine grid),
    and the sensors this grid reports back (each sensor is owned by exactly one grid)."""

    name: str
    shape: tuple[int, int]
    cell_ids: np.ndarray | None
    owned: np.ndarray


@dataclass(frozen=True)
class FaceLayout:
    """The grids and hex faces of one outer mode; the token order is rect then hex."""

    outer_mode: str
    outer_fine_pool: tuple[int, int]
    rect: tuple[RectGrid, ...]
    hex: tuple[str, ...] = HEX_FACES

    @property
    def token_names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.rect) + self.hex

    def grid(self, name: str) -> RectGrid:
        return next(g for g in self.rect if g.name == name)

    def owned(self, name: str) -> np.ndarray:
        """Sensor ids reported by a grid or hex face."""
        return facemaps.HEX_IDS[name] if name in self.hex else self.grid(name).owned

    def sensor_order(self) -> np.ndarray:
        """Concatenated owned ids in token order; a permutation of 0..4759 (checked)."""
        order = np.concatenate([self.owned(n) for n in self.token_names])
        if not np.array_equal(np.sort(order), np.arange(N_SENSORS)):
            raise AssertionError("face layout does not report every sensor exactly once")
        return order

    def taps(self, name: str, reduction: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(n_owned, K) flat cell index and weight into the grid downsampled by `reduction`.

        A plain grid has one tap per sensor; an outer fine-grid sensor spreads over up to K
        pooled cells, weighted by its count fraction in each (rows sum to 1).
        """
        grid = self.grid(name)
        h, w = grid.shape
        hr, wr = h // reduction, w // reduction
        if grid.cell_ids is None:
            rows, cols = np.indices(facemaps.FINE_SHAPE)
            cell_ids, area = facemaps.OUTER_FINE_MAP, facemaps.OUTER_FINE_AREA
            rows, cols = rows // self.outer_fine_pool[0], cols // self.outer_fine_pool[1]
        else:
            rows, cols = np.indices(grid.shape)
            cell_ids, area = grid.cell_ids, np.ones(grid.shape)
        flat = np.minimum(rows // reduction, hr - 1) * wr + np.minimum(cols // reduction, wr - 1)
        return _taps(grid.owned, cell_ids.ravel(), flat.ravel(), area.ravel())

    def token_centers(self) -> np.ndarray:
        """(T, 6): mean position / 100 cm and mean inward normal of each token's sensors."""
        t = sensor_table()
        rows = [
            np.concatenate([t.pos[i].mean(0) / 100.0, t.normal[i].mean(0)])
            for i in (self.owned(n) for n in self.token_names)
        ]
        return np.stack(rows).astype(np.float32)


def _taps(
    owned: np.ndarray, cell_sensor: np.ndarray, cell_flat: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Group (sensor, target cell, weight) triples into padded (n_owned, K) tap tables."""
    per_sensor: list[dict[int, float]] = [{} for _ in owned]
    where = {int(s): i for i, s in enumerate(owned)}
    for s, c, a in zip(cell_sensor, cell_flat, weight, strict=True):
        if int(s) in where:
            d = per_sensor[where[int(s)]]
            d[int(c)] = d.get(int(c), 0.0) + float(a)
    k = max(len(d) for d in per_sensor)
    idx, w = np.zeros((len(owned), k), np.int64), np.zeros((len(owned), k), np.float32)
    for i, d in enumerate(per_sensor):
        total = sum(d.values())
        idx[i, : len(d)] = list(d)
        w[i, : len(d)] = [v / total for v in d.values()]
    return idx, w


def face_layout(
    outer_mode: str = "finegrid", outer_fine_pool: tuple[int, int] = (3, 3)
) -> FaceLayout:
    """The encoder's grids for an outer mode ("finegrid" or "split") and fine-grid pooling."""
    if outer_mode not in OUTER_MODES:
        raise ValueError(f"unknown outer_mode {outer_mode!r}; choose one of {OUTER_MODES}")
    pool = (int(outer_fine_pool[0]), int(outer_fine_pool[1]))
    fh, fw = facemaps.FINE_SHAPE
    if pool[0] < 1 or pool[1] < 1 or fh % pool[0] or fw % pool[1]:
        raise ValueError(
            f"outer_fine_pool {list(pool)} must divide the fine grid {list(facemaps.FINE_SHAPE)}"
            " (e.g. [1, 1], [3, 3], [5, 3], [3, 6])"
        )
    plain = {n: facemaps.RECT_MAPS[n] for n in ("inner", "us", "ds")}
    grids = [RectGrid(n, m.shape, m, m.ravel()) for n, m in plain.items()]
    if outer_mode == "finegrid":
        owned = np.unique(facemaps.OUTER_FINE_MAP)
        grids.append(RectGrid("outer", (fh // pool[0], fw // pool[1]), None, owned))
    else:
        coarse, center = facemaps.OUTER_COARSE_MAP, facemaps.OUTER_CENTER_MAP
        coarse_only = np.setdiff1d(coarse.ravel(), center.ravel())
        grids.append(RectGrid("outer_coarse", coarse.shape, coarse, coarse_only))
        grids.append(RectGrid("outer_center", center.shape, center, np.sort(center.ravel())))
    return FaceLayout(outer_mode, pool, tuple(grids))


def _pool(t: torch.Tensor, pool: tuple[int, int], shape: tuple[int, int]) -> torch.Tensor:
    """Sum-pool (B, Hf * Wf) fine cells into (B, H, W)."""
    return t.reshape(-1, shape[0], pool[0], shape[1], pool[1]).sum(dim=(2, 4))


class OuterFineGrid(nn.Module):
    """(B, 4760, 2) normalized -> (B, 2, H, W) outer fine grid, pooled in physical units."""

    ids: torch.Tensor
    area: torch.Tensor

    def __init__(self, scheme: Scheme, pool: tuple[int, int]) -> None:
        super().__init__()
        self.scheme, self.pool = scheme, pool
        self.shape = (facemaps.FINE_SHAPE[0] // pool[0], facemaps.FINE_SHAPE[1] // pool[1])
        ids = torch.from_numpy(facemaps.OUTER_FINE_MAP.ravel().astype(np.int64))
        area = torch.from_numpy(facemaps.OUTER_FINE_AREA.ravel().astype(np.float32))
        self.register_buffer("ids", ids, persistent=False)  # (Hf * Wf,)
        self.register_buffer("area", area, persistent=False)  # (Hf * Wf,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.scheme
        fine = x[:, self.ids]  # (B, Hf * Wf, 2)
        y, tn = fine[..., 0], fine[..., 1]
        alive = y != s.npho_sentinel
        counts = s.transform.inverse_torch(y, s.npho_scale, s.npho_scale2) * self.area
        counts = torch.where(alive, counts, 0.0)  # physical photons per fine cell
        n_alive = _pool(alive.to(x.dtype), self.pool, self.shape)  # (B, H, W)
        total = _pool(counts, self.pool, self.shape) * (self.pool[0] * self.pool[1])
        pooled = torch.where(n_alive > 0, total / n_alive.clamp_min(1.0), torch.nan)
        npho = s.normalize_torch(pooled, torch.zeros_like(pooled))[..., 0].to(x.dtype)
        w = torch.where(tn != s.time_sentinel, counts.clamp_min(0.0) + 1e-3 * self.area, 0.0)
        w_sum = _pool(w, self.pool, self.shape)
        t_mean = _pool(w * tn, self.pool, self.shape)
        time = torch.where(w_sum > 0, t_mean / w_sum.clamp_min(1e-12), s.time_sentinel)
        return torch.stack((npho, time), dim=1)  # (B, 2, H, W)

    def pool_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """(B, 4760) float mask -> (B, 1, H, W): a pooled cell is masked if all its cells are."""
        fine = mask[:, self.ids].reshape(
            -1, self.shape[0], self.pool[0], self.shape[1], self.pool[1]
        )
        return fine.amin(dim=(2, 4)).unsqueeze(1)


class FaceGather(nn.Module):
    """(B, 4760, 2) -> {grid: (B, 2, H, W)} and {hex face: (B, 73, 2)} with index buffers."""

    ids: torch.Tensor

    def __init__(self, layout: FaceLayout, scheme: Scheme) -> None:
        super().__init__()
        self.layout = layout
        plain = [g for g in layout.rect if g.cell_ids is not None]
        self.plain = [(g.name, g.shape) for g in plain]
        maps = [g.cell_ids for g in plain if g.cell_ids is not None]
        idx = [m.ravel() for m in maps] + [facemaps.HEX_IDS[h] for h in layout.hex]
        self.sizes = [len(i) for i in idx]
        self.register_buffer("ids", torch.from_numpy(np.concatenate(idx)), persistent=False)
        fine = [g for g in layout.rect if g.cell_ids is None]
        self.outer_fine = OuterFineGrid(scheme, layout.outer_fine_pool) if fine else None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self._gather(x)
        if self.outer_fine is not None:
            out["outer"] = self.outer_fine(x)
        return out

    def masks(self, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, 4760) bool/float sensor mask -> {grid: (B, 1, H, W)}, {hex: (B, 73, 1)} float."""
        m = mask.to(torch.float32)
        out = self._gather(m.unsqueeze(-1))
        if self.outer_fine is not None:
            out["outer"] = self.outer_fine.pool_mask(m)
        return out

    def _gather(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Plain grids and hex faces of (B, 4760, C) by one index gather."""
        parts = torch.split(x[:, self.ids], self.sizes, dim=1)  # (B, n_i, C) each
        out: dict[str, torch.Tensor] = {}
        for (name, (h, w)), part in zip(self.plain, parts, strict=False):
            out[name] = part.reshape(-1, h, w, x.shape[-1]).permute(0, 3, 1, 2)  # (B, C, H, W)
        for name, part in zip(self.layout.hex, parts[len(self.plain) :], strict=True):
            out[name] = part  # (B, 73, C)
        return out


class SensorAssembler(nn.Module):
    """Per-grid outputs -> (B, 4760, C): {grid: (B, C, H / r, W / r)}, {hex: (B, 73, C)}."""

    inverse: torch.Tensor

    def __init__(self, layout: FaceLayout, reduction: int = 1) -> None:
        super().__init__()
        self.layout, self.reduction = layout, reduction
        self.rect = [g.name for g in layout.rect]
        for name in self.rect:
            idx, w = layout.taps(name, reduction)
            self.register_buffer(f"idx_{name}", torch.from_numpy(idx), persistent=False)
            self.register_buffer(f"w_{name}", torch.from_numpy(w), persistent=False)
        inverse = np.argsort(layout.sensor_order())  # sensor id -> row of the concatenation
        self.register_buffer("inverse", torch.from_numpy(inverse), persistent=False)

    def forward(self, per_grid: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = [self._read(name, per_grid[name]) for name in self.rect]
        parts += [per_grid[name] for name in self.layout.hex]
        return torch.cat(parts, dim=1)[:, self.inverse]  # (B, 4760, C)

    def _read(self, name: str, fmap: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, n_owned, C) through the grid's taps."""
        idx, w = getattr(self, f"idx_{name}"), getattr(self, f"w_{name}")  # (n, K)
        flat = fmap.flatten(2)  # (B, C, H * W)
        taps = flat[:, :, idx]  # (B, C, n, K)
        return torch.einsum("bcnk,nk->bnc", taps, w.to(flat.dtype))


def sentinel_fill(x: torch.Tensor, mask: torch.Tensor, scheme: Scheme) -> torch.Tensor:
    """(B, 4760, 2) with masked sensors (mask (B, 4760) bool) set to the scheme's sentinels."""
    sentinel = x.new_tensor([scheme.npho_sentinel, scheme.time_sentinel])  # (2,)
    return torch.where(mask.unsqueeze(-1), sentinel, x)


def fill_masked(
    x: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor, scheme: Scheme
) -> torch.Tensor:
    """x (B, 4760, 2) with masked sensors replaced by pred (B, 4760, C); a channel the model
    does not predict (time in npho-only mode) keeps the sentinel at masked sensors."""
    filled = sentinel_fill(x, mask, scheme)
    n, m = pred.shape[-1], mask.unsqueeze(-1)
    return torch.cat([torch.where(m, pred.to(x.dtype), filled[..., :n]), filled[..., n:]], -1)
