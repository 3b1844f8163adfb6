"""In-memory stand-in for xecdata.loaders (same contract) and tiny run configs for loop tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from xecdata.geometry import sensor_table
from xecdata.loaders import Batch
from xecdata.schemes import get_scheme
from xectrain.config import RunConfig, load_config
from xectrain.run.data import Loaders


def toy_events(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Events whose light pattern depends on the truth: a point source near the inner face."""
    rng = np.random.default_rng(seed)
    table = sensor_table()
    theta, phi = rng.uniform(70, 110, n), rng.uniform(-30, 30, n)
    energy = rng.uniform(0.02, 0.055, n)
    uvw = np.stack([rng.uniform(-20, 20, n), rng.uniform(-50, 50, n), rng.uniform(1, 20, n)], 1)
    phi_pos = uvw[:, 1] / 64.97
    r = 64.97 + uvw[:, 2]
    src = np.stack([-r * np.cos(phi_pos), r * np.sin(phi_pos), uvw[:, 0]], 1)  # (n, 3)
    d = np.linalg.norm(table.pos[None] - src[:, None], axis=-1)  # (n, 4760)
    npho = rng.poisson(4e6 * energy[:, None] * table.area[None] / (4 * np.pi * d**2))
    time = (d / 18.6 + rng.normal(0, 0.3, d.shape)) * 1e-9
    time[npho < 2] = 1e10
    return {
        "npho": npho.astype(np.float64),
        "time": time,
        "emiAng": np.stack([theta, phi], 1).astype(np.float32),
        "energyTruth": energy.astype(np.float32),
        "timeTruth": rng.normal(0, 1, n).astype(np.float32),
        "uvwTruth": uvw.astype(np.float32),
        "run": np.full(n, 7, np.int64),
        "event": np.arange(n, dtype=np.int64),
    }


class ListLoader:
    """The loader contract over arrays in memory: seeded per-epoch shuffle, rank sharding,
    equal batch counts per rank, resumable position, and (like the streaming backends) one
    reused output buffer: a yielded Batch is only valid until the next one is drawn."""

    def __init__(
        self, events: dict[str, np.ndarray], batch_size: int, *, shuffle: bool, seed: int = 0,
        rank: int = 0, world_size: int = 1, scheme: str = "new@1", offset: int = 0,
    ) -> None:  # fmt: skip
        s = get_scheme(scheme)
        self.sensors = torch.from_numpy(s.normalize(events["npho"], events["time"]))
        self.targets = {
            k: torch.from_numpy(v) for k, v in events.items() if k not in ("npho", "time")
        }
        self.n = len(self.sensors)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.rank, self.world_size, self.offset = rank, world_size, offset
        self.epoch, self.consumed = 0, 0
        b = batch_size
        self.out = Batch(
            torch.empty(b, *self.sensors.shape[1:]),
            {k: torch.empty(b, *v.shape[1:], dtype=v.dtype) for k, v in self.targets.items()},
            torch.empty(b),
            torch.empty(b, dtype=torch.int64),
        )

    def __len__(self) -> int:
        return self.n // (self.batch_size * self.world_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.consumed = epoch, 0

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "batches": self.consumed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.consumed = state["epoch"], state["batches"]

    def __iter__(self):  # type: ignore[no-untyped-def]
        order = np.arange(self.n)
        if self.shuffle:
            order = np.random.default_rng((self.seed, self.epoch)).permutation(self.n)
        b, w = self.batch_size, self.world_size
        for j in range(self.consumed, len(self)):
            rows = order[(j * w + self.rank) * b : (j * w + self.rank + 1) * b]
            idx = torch.from_numpy(rows)
            self.consumed = j + 1
            out = self.out
            out.sensors.copy_(self.sensors[idx])
            for k, v in self.targets.items():
                out.targets[k].copy_(v[idx])
            out.weights.fill_(1.0)
            out.index.copy_(idx + self.offset)
            yield out


def toy_loaders(
    n_train: int = 32, n_val: int = 16, batch_size: int = 8, seed: int = 0, **kw: int
) -> Loaders:
    train = ListLoader(toy_events(n_train, seed), batch_size, shuffle=True, seed=seed, **kw)
    val = ListLoader(toy_events(n_val, seed + 100), batch_size, shuffle=False, offset=10_000, **kw)
    return Loaders(train, val, len(train), len(val))


def tiny_config(kind: str, tmp: Path, *overrides: str) -> RunConfig:
    """A CPU-sized run writing into `tmp`, MLflow in tmp's SQLite file."""
    return load_config(
        kind,
        overrides=[
            f"checkpoint.dir={tmp / 'artifacts'}",
            f"tracking.uri=sqlite:///{tmp / 'mlruns.db'}",
            f"tracking.artifact_location={tmp / 'mlartifacts'}",
            "tracking.run_name=t",
            "training.device=cpu",
            "training.epochs=2",
            "training.warmup_epochs=0.5",
            "training.log_every=1",
            "training.ema_warmup_steps=2",
            "training.transform_fit_batches=4",
            "data.batch_size=8",
            "checkpoint.save_artifacts=false",
            *overrides,
        ],
    )
