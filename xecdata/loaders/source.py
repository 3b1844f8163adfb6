"""Chunk sources: fill one ring slot with a chunk's sensors, targets and weights.

A source runs in the decode threads. `StoreSource` reads the store's 16-bit codes straight
into the slot (the batch is decoded later, see `codes`); a store whose scheme keeps a channel
losslessly as float32 is read as normalized float32 instead (`decoder` is None then). The root
backend has its own source (`backends.root.RootSource`) with the same interface.
"""

from __future__ import annotations

import mmap
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from xecdata.reweight import Reweighter
from xecdata.store.decoder import CodeDecoder

if TYPE_CHECKING:
    from xecdata.store import Store


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


class MappedChunks:
    """Chunks read through memory maps of the shard files, decoded straight from the map.

    On the machines measured, a copy out of a mapping of the page cache runs several times
    faster than `pread` into a buffer (uncompressed stores; benchmarks/results/loader.json),
    and a codec reading the map saves that copy too. At most `max_open`
    shard maps stay open (least recently used closed first, never while being read), so the
    mapped page cache in the process stays bounded; the pages belong to the page cache, not
    to the loader's buffers.
    """

    def __init__(self, array: Any, max_open: int = 8):
        self.array, self.max_open = array, max_open
        self._maps: OrderedDict[str, mmap.mmap] = OrderedDict()
        self._users: dict[str, int] = {}
        self._lock = threading.Lock()

    def read_chunk_into(self, chunk: int, out: np.ndarray) -> int:
        """Check (crc32c) and decode chunk `chunk` from its shard's map into `out`."""
        n = self.array.chunk_len(chunk)
        path, offset, nbytes = self.array.locate(chunk)  # (shard file, byte offset, size)
        key = str(path)
        m = self._acquire(key)
        try:
            view = memoryview(m)[offset : offset + nbytes]
            try:
                self.array.decode_into(view, chunk, out)
            finally:
                view.release()
        finally:
            with self._lock:
                self._users[key] -= 1
        return n

    def view(self, chunk: int) -> tuple[np.ndarray, int]:
        """A read-only (chunk_events, 4760, 2) view of an uncompressed chunk in its shard's
        map (no copy; its checksum checked) and its event count; the map stays open while the
        view lives."""
        if self.array.codec is not None:
            raise ValueError("view: only uncompressed chunks can be viewed in place")
        path, offset, nbytes = self.array.locate(chunk)
        shape = (self.array.chunk_events, *self.array.tail)
        m = self._acquire(str(path))
        try:
            data = self.array.payload(memoryview(m)[offset : offset + nbytes], chunk)
            if len(data) != 2 * int(np.prod(shape)):
                raise self.array.damaged(chunk, f"it holds {len(data)} bytes, not {shape} codes")
            flat = np.frombuffer(data, np.uint16)
        finally:
            with self._lock:
                self._users[str(path)] -= 1
        return flat.reshape(shape), self.array.chunk_len(chunk)

    def _acquire(self, key: str) -> mmap.mmap:
        with self._lock:
            m = self._maps.get(key)
            if m is None:
                with open(key, "rb") as f:
                    m = self._maps[key] = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                self._evict()
            self._maps.move_to_end(key)
            self._users[key] = self._users.get(key, 0) + 1
            return m

    def _evict(self) -> None:
        for old in list(self._maps):
            if len(self._maps) <= self.max_open:
                return
            if not self._users.get(old):
                try:
                    self._maps[old].close()
                except BufferError:  # a ring slot still views it: closed on a later pass
                    continue
                self._maps.pop(old)
                self._users.pop(old, None)


class StoreSource:
    """Reads chunks of one scheme's sensor codes and the requested truth from a Store.

    Truth values come from the store's packed per-event column arrays: each column chunk is
    decoded once per loader chunk, whatever the number of targets drawn from it.
    """

    def __init__(
        self,
        store: Store,
        scheme_id: str,
        targets: tuple[str, ...],
        reweighter: Reweighter | None,
    ):
        from xecdata.store import raw_codes_reader
        from xecdata.store.chunks import ChunkArray

        self.store, self.scheme_id = store, scheme_id
        self.chunk_events = int(store.chunk_events)
        self.reader = raw_codes_reader(store, scheme_id)
        self.decoder = self.reader.decoder
        self.chunks = MappedChunks(self.reader.array)
        # uncompressed codes can be gathered straight from the shard maps (no ring copy)
        self.zero_copy = self.decoder is not None and self.reader.array.codec is None
        self.raw_dtype = np.dtype(np.uint16 if self.decoder is not None else np.float32)
        self.targets, self.reweighter = targets, reweighter
        self.target_specs = {name: _array_spec(store, name) for name in targets}
        truth = tuple(reweighter.arrays) if reweighter is not None else ()
        for name in truth:
            _array_spec(store, name)
        self.columns = {n: store.metadata["columns"][n] for n in {*targets, *truth}}
        paths = sorted({c["array"] for c in self.columns.values()})
        self.column_arrays = {p: ChunkArray(Path(store.path), p) for p in paths}

    def read_columns(self, chunk: int) -> dict[str, np.ndarray]:
        """The chunk's values of every needed branch, (n, *shape) in the source dtype."""
        out: dict[str, np.ndarray] = {}
        for path, arr in self.column_arrays.items():
            buf = arr.scratch()
            n = arr.read_chunk(chunk, buf)
            for name, col in self.columns.items():
                if col["array"] == path:
                    block = buf[:n, col["start"] : col["stop"]]
                    out[name] = block.reshape(n, *col["shape"]).astype(col["dtype"], copy=False)
        return out

    def read(
        self, chunk: int, sensors: np.ndarray, targets: dict[str, np.ndarray], weights: np.ndarray
    ) -> int:
        n = self.chunks.read_chunk_into(chunk, sensors)
        self.read_aux(chunk, targets, weights)
        return n

    def view(self, chunk: int) -> tuple[np.ndarray, int]:
        """Zero-copy (chunk_events, 4760, 2) codes of an uncompressed chunk, and its events."""
        return self.chunks.view(chunk)

    def read_aux(self, chunk: int, targets: dict[str, np.ndarray], weights: np.ndarray) -> int:
        """The chunk's targets and weights only."""
        arrays = self.read_columns(chunk)
        n = self.chunks.array.chunk_len(chunk)
        for name in self.targets:
            targets[name][:n] = arrays[name]
        weights[:n] = 1.0 if self.reweighter is None else self.reweighter.weights(arrays)
        return n


def _array_spec(store: Store, name: str) -> tuple[tuple[int, ...], np.dtype]:
    """Per-event shape and output dtype of a truth/id array, with a clear error if absent."""
    columns = store.metadata["columns"]
    if name not in columns:
        raise KeyError(
            f"target '{name}' is not an array of store {store.path} (it has "
            f"{', '.join(sorted(columns))}); pick targets from those arrays"
        )
    col = columns[name]
    return tuple(int(d) for d in col["shape"]), target_dtype(np.dtype(col["dtype"]))


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

    def build(self, store: Store | None = None) -> StoreSource:
        """The source over `store`, or over the store at `path` opened here."""
        if store is None:
            from xecdata.store import open_store

            store = open_store(self.path)
        return StoreSource(store, self.scheme_id, self.targets, self.reweighter)

    def __call__(self) -> StoreSource:
        return self.build()
