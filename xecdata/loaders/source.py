"""Chunk sources: fill one ring slot with a chunk's sensors, targets and weights.

A source runs in the decode threads. `StoreSource` reads the store's 16-bit codes straight
into the slot (the batch is decoded later, see `codes`); a store whose scheme keeps a channel
losslessly as float32 is read as normalized float32 instead (`decoder` is None then). The root
backend has its own source (`backends.root.RootSource`) with the same interface.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from xecdata.loaders.codes import CodeDecoder
from xecdata.reweight import Reweighter

INT_TARGETS = ("nGamma", "run", "event")


class ChunkSource(Protocol):
    chunk_events: int
    raw_dtype: np.dtype
    decoder: CodeDecoder | None
    target_specs: dict[str, tuple[tuple[int, ...], np.dtype]]

    def read(
        self, chunk: int, sensors: np.ndarray, targets: dict[str, np.ndarray], weights: np.ndarray
    ) -> int:
        """Fill sensors (ce, 4760, 2), targets[name] (ce, ...) and weights (ce,) from `chunk`;
        return the number of events the chunk holds (the store's last chunk may be short)."""
        ...


def target_dtype(store_dtype: np.dtype) -> np.dtype:
    """Targets leave the loader as float32, or int64 for integer arrays (ids, multiplicity)."""
    return np.dtype(np.int64 if np.issubdtype(store_dtype, np.integer) else np.float32)


class StoreSource:
    """Reads chunks of one scheme's sensor codes and the requested truth from a Store."""

    def __init__(
        self,
        store: Any,
        scheme_id: str,
        targets: tuple[str, ...],
        reweighter: Reweighter | None,
    ):
        from xecdata.store import raw_codes_reader

        self.store, self.scheme_id = store, scheme_id
        self.chunk_events = int(store.chunk_events)
        self.reader = raw_codes_reader(store, scheme_id)
        self.decoder = self.reader.decoder
        self.raw_dtype = np.dtype(np.uint16 if self.decoder is not None else np.float32)
        self.targets, self.reweighter = targets, reweighter
        self.target_specs = {name: _array_spec(store, name) for name in targets}
        self.truth_names = tuple(reweighter.arrays) if reweighter is not None else ()

    def read(
        self, chunk: int, sensors: np.ndarray, targets: dict[str, np.ndarray], weights: np.ndarray
    ) -> int:
        n = self.reader.read_chunk_into(chunk, sensors)
        start = chunk * self.chunk_events
        arrays: dict[str, np.ndarray] = {}
        for name in {*self.targets, *self.truth_names}:
            arrays[name] = np.asarray(self.store.read_array(name, start, start + n))
        for name in self.targets:
            targets[name][:n] = arrays[name].reshape(targets[name][:n].shape)
        if self.reweighter is not None:
            weights[:n] = self.reweighter.weights(arrays)
        else:
            weights[:n] = 1.0
        return n


def _array_spec(store: Any, name: str) -> tuple[tuple[int, ...], np.dtype]:
    """Per-event shape and output dtype of a truth/id array, with a clear error if absent."""
    available = sorted(store.arrays)
    if name not in available:
        raise KeyError(
            f"target '{name}' is not an array of store {store.path} (it has {available}); "
            "pick targets from those arrays"
        )
    probe = np.asarray(store.read_array(name, 0, 1))
    return tuple(probe.shape[1:]), target_dtype(probe.dtype)


class SourceFactory:
    """Picklable recipe of a StoreSource (DALI workers rebuild the source from it)."""

    def __init__(
        self, path: str, scheme_id: str, targets: tuple[str, ...], reweighter: Reweighter | None
    ):
        self.path, self.scheme_id, self.targets, self.reweighter = (
            path,
            scheme_id,
            targets,
            reweighter,
        )

    def build(self, store: Any = None) -> StoreSource:
        """The source over `store`, or over the store at `path` opened here."""
        if store is None:
            from xecdata.store import open_store

            store = open_store(self.path)
        return StoreSource(store, self.scheme_id, self.targets, self.reweighter)

    def __call__(self) -> StoreSource:
        return self.build()
