"""Reading a store: `open_store` and the `Store` object (API documented in the package doc)."""

from __future__ import annotations

import json
import sys
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from xecdata.geometry import N_SENSORS
from xecdata.schemes import Scheme, UnknownSchemeError, get_scheme, register_scheme
from xecdata.store.chunks import ChunkArray, lut_decode, read_small_array
from xecdata.store.decoder import CodeDecoder
from xecdata.store.format import (
    FORMAT_VERSION,
    PLAN_FILE,
    RAW_ARRAYS,
    READABLE_FORMAT_VERSIONS,
    STATS_FIELDS,
    IncompleteStoreError,
    SchemeMismatchError,
    StoreError,
    split_array,
)
from xecdata.store.metadata import is_complete, read_metadata
from xecdata.store.precision import ChannelCode


def open_store(path: str | Path, *, require_complete: bool = True) -> Store:
    """Open the store at `path`; IncompleteStoreError if unfinished and require_complete."""
    root = Path(path)
    if not (root / "zarr.json").is_file():
        raise StoreError(f"no xec store at {root} (no zarr.json); create one with `xec ingest`")
    metadata = read_metadata(root)
    complete = is_complete(root, metadata)
    if not complete and require_complete:
        raise IncompleteStoreError(_incomplete_message(root))
    if metadata is None:
        raise IncompleteStoreError(_incomplete_message(root) + " (it holds no events yet)")
    if metadata.get("format_version") not in READABLE_FORMAT_VERSIONS:
        raise StoreError(
            f"store {root} has format version {metadata.get('format_version')}; this xec reads "
            f"versions {', '.join(map(str, READABLE_FORMAT_VERSIONS))} and writes "
            f"{FORMAT_VERSION}: re-ingest it with this version"
        )
    store = Store(root, metadata, complete)
    if not store.checksums:
        _notice_unchecked(store)
    return store


_NOTICED: set[str] = set()


def _notice_unchecked(store: Store) -> None:
    """One line on stderr, once per store and process, for a store without chunk checksums."""
    key = str(store.path.resolve())
    if key not in _NOTICED:
        _NOTICED.add(key)
        print(
            f"notice: store {store.path} was made before xec checksummed its chunks, so damage "
            "to it cannot be detected; ingest it again (same command, new -o) to add them",
            file=sys.stderr,
        )


def _incomplete_message(root: Path) -> str:
    try:
        command = json.loads((root / PLAN_FILE).read_text()).get("command", "")
    except (FileNotFoundError, json.JSONDecodeError):
        command = ""
    again = f" (`{command}`)" if command else ""
    return (
        f"store {root} is not complete: its ingestion was interrupted or is still running. "
        f"Re-run the same `xec ingest` command{again} to resume it"
    )


class Store:
    """A finished (or, with require_complete=False, partial) xec store, read-only."""

    def __init__(self, path: Path, metadata: dict[str, Any], complete: bool) -> None:
        self.path = path
        self.metadata = metadata
        self.complete = complete
        self.n_events: int = int(metadata["n_events"])
        self.chunk_events: int = int(metadata["chunk_events"])
        self.shard_events: int = int(metadata["shard_events"])
        self.geometry_id: str = metadata["geometry_id"]
        self._arrays: dict[str, ChunkArray] = {}
        self._luts: dict[str, np.ndarray] = {}

    def __repr__(self) -> str:
        state = "complete" if self.complete else "INCOMPLETE"
        return f"Store({str(self.path)!r}, {self.n_events} events, {self.schemes}, {state})"

    @property
    def n_chunks(self) -> int:
        return -(-self.n_events // self.chunk_events)

    @property
    def schemes(self) -> tuple[str, ...]:
        return tuple(self.metadata["schemes"])

    @cached_property
    def checksums(self) -> bool:
        """True when every event-axis array ends each chunk in a crc32c (stores made since
        checksums); False for older stores, whose damage cannot be detected."""
        return all(self._array(path).checksum for path in self.metadata["arrays"])

    @cached_property
    def arrays(self) -> dict[str, str]:
        """Per-event arrays: name -> kind ('truth', 'reco' or 'ids')."""
        return {name: c["kind"] for name, c in self.metadata["columns"].items()}

    def _array(self, path: str) -> ChunkArray:
        arr = self._arrays.get(path)
        if arr is None:
            arr = self._arrays[path] = ChunkArray(self.path, path)
        return arr

    # ---- schemes -----------------------------------------------------------------------
    def _scheme_entry(self, scheme_id: str) -> dict[str, Any]:
        entry = self.metadata["schemes"].get(scheme_id)
        if entry is None:
            have = ", ".join(self.schemes) or "none"
            raw = (
                ""
                if self.metadata["raw"]["kept"]
                else (
                    " (this store has no raw arrays: re-ingest with --keep-raw first, or ingest "
                    f"again with --scheme {scheme_id})"
                )
            )
            raise SchemeMismatchError(
                f"store {self.path} has no tensor for scheme '{scheme_id}' (it has {have}). "
                f"Add it with `xec renormalize {self.path} --scheme {scheme_id}`{raw}"
            )
        return entry

    def scheme(self, scheme_id: str) -> Scheme:
        """The stored definition of `scheme_id`; refused if this installation defines that id
        with other parameters."""
        entry = self._scheme_entry(scheme_id)
        try:
            stored = Scheme.from_dict(entry["definition"])
        except ValueError as exc:
            raise SchemeMismatchError(f"store {self.path}: scheme {scheme_id}: {exc}") from exc
        if stored.hash != entry["hash"]:
            raise SchemeMismatchError(
                f"store {self.path}: scheme {scheme_id} definition does not match its recorded "
                "hash; the metadata was edited: re-ingest the store"
            )
        try:
            registered = get_scheme(scheme_id)
        except UnknownSchemeError:
            return register_scheme(stored)
        if registered.hash != stored.hash:
            raise SchemeMismatchError(
                f"store {self.path} holds scheme {scheme_id} with hash {stored.hash}, but this "
                f"installation defines {scheme_id} as {registered.hash}: the store was made with "
                "other parameters under the same id. Re-ingest it, or load the matching scheme "
                "definition"
            )
        return registered

    def check_scheme(self, scheme: str | Scheme) -> Scheme:
        """The scheme if the store holds exactly it (id and hash); SchemeMismatchError else."""
        scheme_id = scheme.id if isinstance(scheme, Scheme) else scheme
        stored = self.scheme(scheme_id)
        if isinstance(scheme, Scheme) and scheme.hash != stored.hash:
            raise SchemeMismatchError(
                f"store {self.path} holds {scheme_id} with hash {stored.hash}; the requested "
                f"scheme has hash {scheme.hash}"
            )
        return stored

    def codes(self, scheme_id: str) -> tuple[ChannelCode, ChannelCode] | None:
        """(npho, time) code definitions of a scheme, None when stored as float32."""
        entry = self._scheme_entry(scheme_id)
        if entry["dtype"] != "uint16":
            return None
        p = entry["precision"]
        return ChannelCode.from_dict(p["npho"]), ChannelCode.from_dict(p["time"])

    def luts(self, scheme_id: str) -> np.ndarray | None:
        """(2, 65536) float32 decode tables of a uint16 scheme (None for float32 storage)."""
        lut = self._luts.get(scheme_id)
        if lut is None:
            codes = self.codes(scheme_id)
            if codes is None:
                return None
            lut = self._luts[scheme_id] = np.stack([c.lut() for c in codes])
        return lut

    # ---- the sensor tensor ---------------------------------------------------------------
    def sensor_array(self, scheme_id: str) -> ChunkArray:
        """Low-level chunk access to a scheme's stored (N, 4760, 2) array (codes or float32)."""
        return self._array(self._scheme_entry(scheme_id)["array"])

    def read_chunk_codes_into(self, scheme_id: str, chunk: int, out: np.ndarray) -> int:
        """Stored values of a chunk (uint16 codes, or float32) into out (chunk_events, 4760, 2)."""
        return self.sensor_array(scheme_id).read_chunk(chunk, out)

    def read_chunk_into(self, scheme_id: str, chunk: int, out: np.ndarray) -> int:
        """Decode chunk `chunk` into out float32 (chunk_events, 4760, 2); returns its events."""
        arr = self.sensor_array(scheme_id)
        luts = self.luts(scheme_id)
        if luts is None:
            return arr.read_chunk(chunk, out)
        codes = arr.scratch()
        n = arr.read_chunk(chunk, codes)
        lut_decode(codes[:n], luts, out[:n])
        return n

    def read_sensors(
        self, scheme_id: str, start: int, stop: int, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Normalized float32 (stop - start, 4760, 2) of events [start, stop)."""
        start, stop = max(0, start), min(stop, self.n_events)
        n = max(stop - start, 0)
        if out is None:
            out = np.empty((n, N_SENSORS, 2), np.float32)
        arr, luts, c = self.sensor_array(scheme_id), self.luts(scheme_id), self.chunk_events
        for chunk in range(start // c, -(-stop // c)):
            buf = arr.scratch()
            arr.read_chunk(chunk, buf)
            a, b = max(start, chunk * c), min(stop, (chunk + 1) * c)
            part = buf[a - chunk * c : b - chunk * c]
            if luts is None:
                out[a - start : b - start] = part
            else:
                lut_decode(part, luts, out[a - start : b - start])
        return out[:n]

    def chunk_bytes(self, scheme_id: str, chunk: int) -> bytes:
        """Encoded bytes of a chunk of the scheme's tensor (GPU decompression path)."""
        return self.sensor_array(scheme_id).chunk_bytes(chunk)

    # ---- per-event arrays, raw values, splits, statistics --------------------------------
    def read_array(self, name: str, start: int, stop: int) -> np.ndarray:
        """Truth / reco / id branch `name` for events [start, stop), in its source dtype."""
        col = self.metadata["columns"].get(name)
        if col is None:
            raise KeyError(
                f"store {self.path} has no array {name!r} (it has {', '.join(self.arrays)})"
            )
        block = self._array(col["array"]).read(start, stop)[:, col["start"] : col["stop"]]
        return block.reshape(len(block), *col["shape"]).astype(col["dtype"], copy=False)

    def read_rows(self, name: str, index: np.ndarray, block: int = 1 << 18) -> np.ndarray:
        """Branch `name` at the store event indices `index` (any order, repeats allowed),
        read `block` events at a time so memory stays bounded by the block and the output."""
        index = np.asarray(index, np.int64)
        if index.size and (index.min() < 0 or index.max() >= self.n_events):
            raise IndexError(f"store {self.path} has events 0..{self.n_events - 1}")
        order = np.argsort(index, kind="stable")
        sorted_idx = index[order]
        out: np.ndarray | None = None
        for start in np.unique(sorted_idx // block) * block:
            lo, hi = np.searchsorted(sorted_idx, [start, start + block])
            part = self.read_array(name, int(start), int(min(start + block, self.n_events)))
            if out is None:
                out = np.empty((len(index), *part.shape[1:]), part.dtype)
            out[order[lo:hi]] = part[sorted_idx[lo:hi] - start]
        return out if out is not None else self.read_array(name, 0, 0)

    def read_raw(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Raw float32 (npho, time) (n, 4760) of a store ingested with --keep-raw."""
        if not self.metadata["raw"]["kept"]:
            raise StoreError(
                f"store {self.path} keeps no raw arrays; re-ingest with --keep-raw to get them"
            )
        return tuple(self._array(RAW_ARRAYS[k]).read(start, stop) for k in ("npho", "time"))  # type: ignore[return-value]

    def split(self, name: str) -> np.ndarray:
        """(k, 2) int64 [start, stop) event ranges of split 'train' or 'val'."""
        if name not in self.metadata["split"]["events"]:
            raise KeyError(f"store {self.path} has no split {name!r} (it has train, val)")
        return read_small_array(self.path, split_array(name))

    def stats(self, scheme_id: str) -> dict[str, np.ndarray]:
        """Per-sensor statistics of a scheme: mean, std, valid_fraction, each (4760, 2)."""
        values = read_small_array(self.path, self._scheme_entry(scheme_id)["stats"]["array"])
        return dict(zip(STATS_FIELDS, list(values), strict=True))

    def precision(self, scheme_id: str) -> dict[str, Any]:
        """The stored precision record of a scheme (steps, ranges, errors in physical units)."""
        return dict(self._scheme_entry(scheme_id)["precision"])


class CodesReader:
    """Reads one scheme's stored chunks as they are (codes) plus how to decode them; the
    loaders move codes and decode only their batches (xecdata.store.decoder)."""

    def __init__(self, store: Store, scheme_id: str) -> None:
        self.store, self.scheme_id = store, scheme_id
        self.codes = store.codes(scheme_id)
        self.array = store.sensor_array(scheme_id)
        self.dtype = self.array.dtype

    @cached_property
    def decoder(self) -> CodeDecoder | None:
        """The CodeDecoder for uint16 storage, None for float32 storage."""
        if self.codes is None:
            return None
        return CodeDecoder(*self.codes)

    def read_chunk_into(self, chunk: int, out: np.ndarray) -> int:
        """Stored values of a chunk into out (chunk_events, 4760, 2) of `dtype`."""
        return self.array.read_chunk(chunk, out)


def raw_codes_reader(store: Store, scheme_id: str) -> CodesReader:
    """A CodesReader of `scheme_id` in `store` (checked against the registered scheme)."""
    store.check_scheme(scheme_id)
    return CodesReader(store, scheme_id)
