"""Dummy detector events for the model tests: raw counts/times and their normalized tensor."""

from __future__ import annotations

import numpy as np
import torch

from xecdata.geometry import N_SENSORS
from xecdata.schemes import Scheme


def raw_events(batch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(B, 4760) photon counts and times (s): some dark sensors, sensor 7 dead in event 0."""
    rng = np.random.default_rng(seed)
    npho = rng.exponential(400.0, (batch, N_SENSORS))
    npho[rng.random((batch, N_SENSORS)) < 0.15] = 0.0  # dark: no time
    time = rng.normal(0.0, 3e-8, (batch, N_SENSORS))
    npho[0, 7] = 1e10  # dead
    return npho, time


def events(scheme: Scheme, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """(B, 4760, 2) float32 normalized with `scheme`."""
    return torch.from_numpy(scheme.normalize(*raw_events(batch, seed)))
