"""Writing store arrays: zarr v3 array metadata, and whole shards streamed chunk by chunk.

A `ShardWriter` builds one shard file of the zarr v3 sharding codec ("sharding_indexed",
index at the end, index codecs bytes + crc32c) without holding the shard in memory: each full
chunk of `chunk_events` events is encoded with the profile's numcodecs codec, followed by the
crc32c of the encoded bytes (the chain's `crc32c` codec), and appended to a temporary file;
`close` pads the last partial chunk with the fill value (zarr stores edge chunks at full size),
appends the index and renames the file into place atomically. So a shard
on disk is always either absent, the old version, or complete, and its bytes depend only on
the values written (never on timing or worker count). Plain zarr reads these shards.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import google_crc32c  # a dependency of zarr 3 (its crc32c codec)
import numpy as np
from numcodecs.abc import Codec

from xecdata.store.codecs import CodecProfile, crc32c
from xecdata.store.format import atomic_write_bytes, shard_file, temporary_name

MISSING = np.uint64(2**64 - 1)  # index entry of a chunk absent from a shard


@dataclass(frozen=True)
class ArraySpec:
    """An event-axis array: path in the store, per-event shape and storage dtype."""

    path: str
    tail: tuple[int, ...]
    dtype: str

    @property
    def ndim(self) -> int:
        return 1 + len(self.tail)


def create_array(
    root: Path,
    spec: ArraySpec,
    n_events: int,
    chunk_events: int,
    shard_events: int,
    profile: CodecProfile,
    attributes: dict[str, Any] | None = None,
) -> None:
    """Write the zarr.json of an event-axis array (and of the groups above it), each by atomic
    rename, and nothing else: shards already there are kept. So several processes filling one
    store (`xec ingest --part`) may all run it with the same plan, in any order."""
    import zarr
    from zarr.storage import MemoryStore

    written: dict[str, Any] = {}
    zarr.create_array(
        store=MemoryStore(store_dict=written),
        name=spec.path,
        shape=(n_events, *spec.tail),
        dtype=spec.dtype,
        chunks=(chunk_events, *spec.tail),
        shards=(shard_events, *spec.tail),
        compressors=profile.zarr_compressors(np.dtype(spec.dtype)),
        filters=None,
        fill_value=0,
        zarr_format=3,
        attributes=attributes or {},
    )
    for key, buffer in written.items():
        if key != "zarr.json":  # the root group is the store's own (metadata)
            atomic_write_bytes(root / key, buffer.to_bytes())


def resize_array(root: Path, path: str, n_events: int) -> None:
    """Grow or shrink the event axis of an array (metadata only; shards are rewritten by units)."""
    import zarr

    arr = zarr.open_array(store=str(root), path=path, mode="r+")
    arr.resize((n_events, *arr.shape[1:]))


def write_small_array(root: Path, path: str, values: np.ndarray) -> None:
    """A small unchunked array (statistics, split ranges), written whole through zarr, its one
    chunk checksummed like every other."""
    import zarr
    from zarr.codecs import Crc32cCodec

    arr = zarr.create_array(
        store=str(root),
        name=path,
        shape=values.shape,
        dtype=values.dtype,
        chunks=tuple(max(1, s) for s in values.shape),
        compressors=[Crc32cCodec()],
        fill_value=0,
        zarr_format=3,
        overwrite=True,
    )
    if values.size:
        arr[...] = values


class ShardWriter:
    """Streams one shard: append events, then close() to publish it atomically."""

    def __init__(
        self,
        root: Path,
        spec: ArraySpec,
        shard: int,
        chunk_events: int,
        shard_events: int,
        codec: Codec | None,
        checksum: bool = True,
    ) -> None:
        self.path = shard_file(root, spec.path, shard, spec.ndim)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = temporary_name(self.path)
        self._file = open(self.tmp, "wb")  # noqa: SIM115 - closed in close()/abort()
        self._codec, self._checksum = codec, checksum  # checksum: False only for old stores
        self._index = np.full((shard_events // chunk_events, 2), MISSING, dtype="<u8")
        self._buf = np.zeros((chunk_events, *spec.tail), dtype=spec.dtype)  # one chunk
        self._fill = 0  # events in _buf
        self._chunk = 0  # index of the chunk being filled
        self._offset = 0  # bytes written

    def append(self, values: np.ndarray) -> None:
        """Add (n, *tail) values after the ones already appended."""
        done = 0
        while done < len(values):
            take = min(len(values) - done, len(self._buf) - self._fill)
            self._buf[self._fill : self._fill + take] = values[done : done + take]
            self._fill += take
            done += take
            if self._fill == len(self._buf):
                self._flush()

    def _flush(self) -> None:
        if self._chunk >= len(self._index):
            raise ValueError(f"{self.path}: more events than one shard holds")
        data: Any = self._buf if self._codec is None else self._codec.encode(self._buf)
        raw = memoryview(data).cast("B")
        self._file.write(raw)
        nbytes = raw.nbytes
        if self._checksum:
            nbytes += self._file.write(crc32c(raw))
        self._index[self._chunk] = (self._offset, nbytes)
        self._offset += nbytes
        self._chunk += 1
        self._fill = 0

    def close(self) -> None:
        """Pad and flush the last chunk, append the index + crc32c, rename into place."""
        if self._fill:
            self._buf[self._fill :] = 0
            self._flush()
        index = self._index.tobytes()
        self._file.write(index)
        self._file.write(np.uint32(google_crc32c.value(index)).astype("<u4").tobytes())
        self._file.flush()
        os.fsync(self._file.fileno())  # on disk before the rename publishes it
        self._file.close()
        os.replace(self.tmp, self.path)  # the caller fsyncs the folder (units.commit)

    def abort(self) -> None:
        """Drop the temporary file (on an error inside the unit)."""
        self._file.close()
        self.tmp.unlink(missing_ok=True)
