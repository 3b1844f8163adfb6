"""Training augmentations applied on the device to a normalized batch (off by default).

All four act in physical units through the batch's scheme and leave invalid channels alone:

- channel dropout: each sensor of each event is dropped with probability `channel_dropout`;
  a dropped sensor gets the scheme's sentinels in BOTH channels (never zero: zero is a valid
  normalized value, the sentinel is what "no reading" means everywhere else).
- npho noise: npho -> npho + npho_noise * sqrt(max(npho, 1)) * N(0, 1), a Poisson-like
  fluctuation (npho_noise = 1 is one more Poisson draw's worth), clipped at 0 photons.
- time jitter: time -> time + N(0, time_jitter_ps) on sensors whose time is valid.
- energy scaling: one factor k = 1 + energy_scale * N(0, 1) per event multiplies every valid
  npho and the energy target (`energyTruth`) alike, so the pair stays consistent.

Random numbers come from a generator on the batch's device reseeded per batch from (seed,
epoch, rank, batch index), so a resumed epoch draws the same augmentations.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from xecdata.markers import float32_above as _above
from xecdata.schemes import Scheme

ENERGY_TARGET = "energyTruth"


@dataclass(frozen=True)
class AugmentConfig:
    """Strengths of the device-side augmentations; all zero means identity."""

    channel_dropout: float = 0.0  # probability per sensor
    npho_noise: float = 0.0  # fraction of the Poisson sigma
    time_jitter_ps: float = 0.0  # Gaussian sigma, picoseconds
    energy_scale: float = 0.0  # relative Gaussian sigma of the per-event factor

    @property
    def active(self) -> bool:
        return any((self.channel_dropout, self.npho_noise, self.time_jitter_ps, self.energy_scale))


class Augmenter:
    """Applies an AugmentConfig in place to batches of one scheme on one device."""

    def __init__(self, config: AugmentConfig, scheme: Scheme, device: torch.device):
        self.config, self.scheme = config, scheme
        self.generator = torch.Generator(device=device)

    def reseed(self, seed: int, epoch: int, rank: int, batch: int) -> None:
        """Seed from the batch's coordinates (a 63-bit mix, stable across runs)."""
        h = 1469598103934665603
        for v in (seed, epoch, rank, batch):
            h = ((h ^ (v & 0xFFFFFFFFFFFF)) * 1099511628211) & 0x7FFFFFFFFFFFFFFF
        self.generator.manual_seed(h)

    def __call__(self, sensors: torch.Tensor, targets: dict[str, torch.Tensor]) -> None:
        """sensors (B, 4760, 2) normalized, modified in place; targets likewise."""
        c = self.config
        if not c.active:
            return
        x = sensors.float()  # (B, S, 2) work copy when sensors are bf16, else the tensor itself
        if c.npho_noise or c.energy_scale:
            self._npho(x, targets)
        if c.time_jitter_ps:
            self._time(x)
        if c.channel_dropout:
            self._dropout(x)
        if x.data_ptr() != sensors.data_ptr():
            sensors.copy_(x)

    def _normal(self, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        return torch.randn(shape, generator=self.generator, device=like.device, dtype=like.dtype)

    def _npho(self, x: torch.Tensor, targets: dict[str, torch.Tensor]) -> None:
        s, c = self.scheme, self.config
        y = x[..., 0]  # (B, S)
        alive = y != s.npho_sentinel
        npho = s.transform.inverse_torch(y, s.npho_scale, s.npho_scale2)
        if c.energy_scale:
            k = 1.0 + c.energy_scale * self._normal((x.shape[0], 1), x)  # (B, 1)
            npho = npho * k
            if ENERGY_TARGET in targets:
                e = targets[ENERGY_TARGET]
                e.mul_(k.view(-1, *([1] * (e.dim() - 1))).to(e.dtype))
        if c.npho_noise:
            sigma = c.npho_noise * npho.clamp_min(1.0).sqrt()
            npho = (npho + sigma * self._normal(tuple(y.shape), x)).clamp_min(0.0)
        y_new = s.transform.forward_torch(npho, s.npho_scale, s.npho_scale2)
        y_new = y_new.clamp_min(_above(s.npho_sentinel))
        y.copy_(torch.where(alive, y_new, y))

    def _time(self, x: torch.Tensor) -> None:
        s = self.scheme
        t = x[..., 1]  # (B, S)
        valid = t != s.time_sentinel
        sigma = self.config.time_jitter_ps * 1e-12 / s.time_scale  # normalized units
        t_new = t + sigma * self._normal(tuple(t.shape), x)
        t_new = torch.where(t_new == s.time_sentinel, _above(s.time_sentinel), t_new)
        t.copy_(torch.where(valid, t_new, t))

    def _dropout(self, x: torch.Tensor) -> None:
        s = self.scheme
        u = torch.rand(x.shape[:2], generator=self.generator, device=x.device)  # (B, S)
        drop = u < self.config.channel_dropout
        x[..., 0].masked_fill_(drop, s.npho_sentinel)
        x[..., 1].masked_fill_(drop, s.time_sentinel)
