"""Detector events for the model tests: the shared toy events' raw counts and times, and their
normalized tensor."""

from __future__ import annotations

import numpy as np
import torch

from tests.rootfiles import INVALID, fake_events
from xecdata.schemes import Scheme


def raw_events(batch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(B, 4760) photon counts and times (s) of the toy events (tests/rootfiles.fake_events):
    a few dead sensors, no time on dark ones; sensor 7 is also dead in event 0."""
    ev = fake_events(batch, seed)
    npho, time = ev["npho"].astype(np.float64), ev["relative_time"].astype(np.float64)
    npho[0, 7] = INVALID
    return npho, time


def events(scheme: Scheme, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """(B, 4760, 2) float32 normalized with `scheme`."""
    return torch.from_numpy(scheme.normalize(*raw_events(batch, seed)))
