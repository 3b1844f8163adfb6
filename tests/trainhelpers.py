"""In-memory stand-in for xecdata.loaders (same contract) and tiny run configs for loop tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tests.rootfiles import fake_events
from xecdata.loaders import Batch
from xecdata.schemes import get_scheme
from xectrain.config import RunConfig, load_config
from xectrain.run.data import Loaders

TRUTH = ("emiAng", "energyTruth", "timeTruth", "uvwTruth")


def toy_events(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """The toy events (tests/rootfiles.fake_events: light from a point in the xenon, so the
    pattern depends on the truth) as a loader delivers them: float64 `npho` / `time`, the
    regression truth, int64 run and event numbers."""
    ev = fake_events(n, seed)
    out = {"npho": ev["npho"].astype(np.float64), "time": ev["relative_time"].astype(np.float64)}
    out |= {k: ev[k] for k in TRUTH}
    out |= {k: ev[k].astype(np.int64) for k in ("run", "event")}
    return out


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
