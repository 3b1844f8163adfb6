"""The one batch type every loader backend yields."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Batch:
    """A training batch on the loader's device.

    Streaming backends reuse their output buffers: a Batch is valid until the next one is
    drawn from the loader; `clone()` it to keep it longer.
    """

    sensors: torch.Tensor  # (B, 4760, 2) normalized [npho, time], in the loader's dtype
    targets: dict[str, torch.Tensor]  # name -> (B, ...) float32 (int64 for ids/multiplicity)
    weights: torch.Tensor  # (B,) float32 per-sample weights (ones without reweighting)
    index: torch.Tensor  # (B,) int64 global event indices in the store

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def clone(self) -> Batch:
        """A copy that owns its memory (survives the loader's buffer reuse)."""
        return Batch(
            self.sensors.clone(),
            {k: v.clone() for k, v in self.targets.items()},
            self.weights.clone(),
            self.index.clone(),
        )
