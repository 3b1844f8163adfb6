"""Loaders: one sampler, several backends, one batch type (`open_loader` is the entry point).

    loader = open_loader(store, scheme="new@1", batch_size=4096, device="cuda")
    for epoch in range(n):
        loader.set_epoch(epoch)
        for batch in loader:          # Batch(sensors, targets, weights, index) on the device
            ...

Backends (all yield the same events in the same order for a seed; see `sampler`):
  cpu       decode threads -> host ring of chunk slots -> batch gathers on the host
  pinned    the same threads into pinned staging, H2D on a side stream, gathers on the GPU
  dali      an NVIDIA DALI pipeline (parallel external source) decodes the chunks
  resident  the whole split decoded once onto the device; batches are gathers
  root      the original ROOT files through uproot + numpy normalization (baseline only)
  auto      pinned on CUDA (resident when the split fits comfortably), cpu otherwise

Host memory of every backend but resident is bounded by its buffers (`Loader.host_bytes()`);
a yielded Batch is valid until the next one is drawn (`Batch.clone()` keeps one).
"""

from __future__ import annotations

import os
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from xecdata.loaders.augment import AugmentConfig, Augmenter
from xecdata.loaders.batch import Batch
from xecdata.loaders.sampler import SamplerConfig, SplitLayout, n_batches, plan_epoch
from xecdata.reweight import ReweightConfig, Reweighter, fit_reweighter, training_ranges

if TYPE_CHECKING:
    from xecdata.protocols import LoaderBackend
    from xecdata.schemes import Scheme
    from xecdata.store import Store

BACKENDS = ("auto", "cpu", "pinned", "dali", "resident", "root")
DEFAULT_WINDOW = 4096  # events mixed by the shuffle window unless told otherwise
__all__ = ["BACKENDS", "AugmentConfig", "Batch", "Loader", "ReweightConfig", "open_loader"]


@dataclass(frozen=True)
class LoaderInfo:
    """What a loader reads: recorded by training next to the run."""

    store: str
    scheme: str
    split: str
    backend: str
    n_events: int
    chunk_events: int


class Loader:
    """Iterable over one rank's batches of an epoch; see the module docstring.

    Iterating yields the current epoch from where it stands: a loop left early (or a
    load_state_dict) continues there on the next iteration; a finished epoch moves on to the
    next one by itself; set_epoch(e) starts epoch e from its first batch (call it every epoch
    in DDP loops, as with torch's DistributedSampler).
    """

    def __init__(
        self,
        layout: SplitLayout,
        cfg: SamplerConfig,
        backend: LoaderBackend,
        info: LoaderInfo,
        augmenter: Augmenter | None = None,
        reweighter: Reweighter | None = None,
    ):
        self.layout, self.cfg, self.backend, self.info = layout, cfg, backend, info
        self.augmenter, self.reweighter = augmenter, reweighter
        self.epoch, self._consumed = 0, 0

    def __len__(self) -> int:
        return n_batches(self.layout.n_split, self.cfg)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (the shuffle depends on it); starts it from its first batch."""
        self.epoch, self._consumed = int(epoch), 0

    def state_dict(self) -> dict[str, int]:
        """Where the loader stands: resume with load_state_dict on a loader of equal settings."""
        c = self.cfg
        return {
            "epoch": self.epoch,
            "batches": self._consumed,
            "seed": c.seed,
            "batch_size": c.batch_size,
            "rank": c.rank,
            "world_size": c.world_size,
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue from `state`: the next iteration yields the rest of that epoch."""
        c = self.cfg
        for key in ("seed", "batch_size", "world_size"):
            if key in state and int(state[key]) != getattr(c, key):
                raise ValueError(
                    f"loader state: {key}={state[key]} but this loader has {getattr(c, key)}; "
                    f"open the loader with {key}={state[key]} to resume"
                )
        self.epoch, self._consumed = int(state["epoch"]), int(state["batches"])

    def host_bytes(self) -> int:
        """Host memory held by the backend's buffers (the documented bound)."""
        return int(self.backend.host_bytes())

    def __iter__(self) -> Generator[Batch, None, None]:
        epoch, start = self.epoch, self._consumed
        if start >= len(self):  # a finished epoch: go on with the next one
            epoch, start = epoch + 1, 0
            self.epoch, self._consumed = epoch, 0
        plan = plan_epoch(self.layout, self.cfg, epoch)
        for j, batch in enumerate(self.backend.batches(plan, start), start):
            if self.augmenter is not None:
                self.augmenter.reseed(self.cfg.seed, epoch, self.cfg.rank, j)
                self.augmenter(batch.sensors, batch.targets)
            self._consumed = j + 1
            yield batch
        if self._consumed >= len(self):
            self.epoch, self._consumed = epoch + 1, 0


def open_loader(
    store: str | Path | Store,
    *,
    scheme: str,
    split: str = "train",
    batch_size: int,
    device: str | torch.device = "cpu",
    backend: str = "auto",
    dtype: torch.dtype = torch.float32,
    shuffle: bool = True,
    seed: int = 0,
    targets: Sequence[str] = (),
    reweight: ReweightConfig | Reweighter | None = None,
    rank: int = 0,
    world_size: int = 1,
    drop_last: bool = True,
    even_batches: bool = True,
    augment: AugmentConfig | None = None,
    threads: int | None = None,
    shuffle_window: int | None = None,
    ring: int | None = None,
) -> Loader:
    """Open a loader over `split` of `store` (a Store or its path) for scheme `scheme`.

    shuffle_window: events whose order is mixed on top of the per-epoch chunk permutation
        (default: DEFAULT_WINDOW events or 4 chunks, and at least batch_size); the ring holds
        about two windows plus the read-ahead, e.g. ~250 MB of codes for 4096 events;
    ring: extra chunk slots of read-ahead (default: one window's worth);
    threads: decode threads (default: min(4, CPUs));
    even_batches (with drop_last=False and several ranks): True pads every rank to the same
        number of batches by repeating at most world_size - 1 events of the epoch's start
        (what DDP training needs); False yields every event of the split exactly once over
        the ranks, whose batch counts may then differ by one (validation, predictions).
    reweight: a Reweighter (e.g. fitted by training's rank 0) or the settings to get one with
        (`fit_reweighter`: the store's cache written by `xec reweight`, else a fit in memory;
        the store is never written);
    Refuses an unfinished store and a store without `scheme` (naming the fix).
    """
    from xecdata.loaders.backends import make_backend
    from xecdata.loaders.checks import open_checked

    st, scheme_id = open_checked(store, scheme)
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:  # streams and DALI need the card's number
        dev = torch.device("cuda", torch.cuda.current_device())
    if dtype not in (torch.float32, torch.bfloat16):
        raise ValueError(f"dtype must be torch.float32 or torch.bfloat16, got {dtype}")
    ce = int(st.chunk_events)
    layout = SplitLayout.from_split(st.split(split), ce, int(st.n_events))
    window = shuffle_window if shuffle_window is not None else max(DEFAULT_WINDOW, 4 * ce)
    cfg = SamplerConfig(
        batch_size, seed, shuffle, drop_last, rank, world_size, window, even_batches
    )
    reweighter = _reweighter(st, reweight)
    options = {
        "threads": threads or min(4, os.cpu_count() or 1),
        "ring": ring if ring is not None else -(-cfg.window_events // ce) + 1,
        "dtype": dtype,
    }
    name, impl = make_backend(
        backend, st, scheme_id, layout, cfg, dev, tuple(targets), reweighter, options
    )
    info = LoaderInfo(str(st.path), scheme_id, split, name, layout.n_split, ce)
    aug = None
    if augment is not None and augment.active:
        aug = Augmenter(augment, _scheme_of(st, scheme_id), dev)
    return Loader(layout, cfg, impl, info, aug, reweighter)


def _reweighter(store: Store, reweight: ReweightConfig | Reweighter | None) -> Reweighter | None:
    """The given Reweighter, or one for the settings (read from the store's cache or fitted in
    memory on its training split; the store is only read)."""
    if reweight is None or isinstance(reweight, Reweighter):
        return reweight
    return fit_reweighter(store, reweight, training_ranges(store))


def _scheme_of(store: Store, scheme_id: str) -> Scheme:
    return store.scheme(scheme_id)
