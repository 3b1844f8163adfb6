"""The contracts where modules meet: what a store, a batch and a loader offer their users.

`xecdata.store.Store`, `xecdata.loaders.Batch` and `xecdata.loaders.Loader` are the
implementations; training, validation and reweighting take these protocols, so an in-memory
stand-in (tests, benchmarks) that offers the same members serves as well.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # annotations only: importing the protocols costs neither torch nor numpy
    import numpy as np
    import torch

    from xecdata.loaders.batch import Batch
    from xecdata.loaders.sampler import EpochPlan
    from xecdata.schemes import Scheme


class ColumnSource(Protocol):
    """Per-event arrays (truth, reco, ids) readable by event index: a store, or the columns
    of ROOT inputs."""

    @property
    def arrays(self) -> dict[str, str]: ...

    def read_array(self, name: str, start: int, stop: int) -> np.ndarray: ...

    def read_rows(self, name: str, index: np.ndarray, block: int = ...) -> np.ndarray: ...


class StoreView(ColumnSource, Protocol):
    """A finished store, read-only: its events, splits, per-event arrays and schemes."""

    @property
    def path(self) -> Path: ...

    @property
    def metadata(self) -> Mapping[str, Any]: ...

    @property
    def n_events(self) -> int: ...

    @property
    def chunk_events(self) -> int: ...

    @property
    def schemes(self) -> tuple[str, ...]: ...

    def scheme(self, scheme_id: str) -> Scheme: ...

    def check_scheme(self, scheme: str | Scheme) -> Scheme: ...

    def split(self, name: str) -> np.ndarray: ...

    def read_sensors(
        self, scheme_id: str, start: int, stop: int, out: np.ndarray | None = ...
    ) -> np.ndarray: ...


class BatchView(Protocol):
    """One batch on the loader's device; valid until the next one is drawn."""

    sensors: torch.Tensor  # (B, 4760, 2) normalized [npho, time]
    targets: dict[str, torch.Tensor]  # name -> (B, ...)
    weights: torch.Tensor  # (B,)
    index: torch.Tensor  # (B,) int64 global event indices

    def __len__(self) -> int: ...

    def clone(self) -> BatchView: ...


class BatchSource(Protocol):
    """Batches of one pass over some events (validation, prediction)."""

    def __iter__(self) -> Iterator[BatchView]: ...

    def __len__(self) -> int: ...


class BatchLoader(BatchSource, Protocol):
    """Batches of one split, epoch after epoch, resumable mid-epoch (training)."""

    def set_epoch(self, epoch: int) -> None: ...

    def state_dict(self) -> dict[str, int]: ...

    def load_state_dict(self, state: dict[str, int]) -> None: ...


class LoaderBackend(Protocol):
    """How a Loader gets its batches (xecdata.loaders.backends: cpu, pinned, resident, dali)."""

    def host_bytes(self) -> int: ...

    def batches(self, plan: EpochPlan, start: int = 0) -> Iterator[Batch]: ...
