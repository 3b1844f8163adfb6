"""On-disk layout of an xec store (Zarr v3, format version 2).

    STORE.xec.zarr/
      zarr.json              root group; attributes["xec"] = the metadata (written at the end)
      sensors/<scheme id>    (N, 4760, 2) uint16 codes of the normalized tensor (precision.py),
                             or float32 when a scheme's channel cannot be coded in 16 bits
      raw/npho, raw/time     (N, 4760) float32, lossless (only with --keep-raw)
      columns/<dtype>        (N, K) per-event truth / reco / id values packed by storage dtype
                             (float32, float64, int64); metadata["columns"] maps each branch
                             to its column range, kind and source dtype
      stats/<scheme id>      (3, 4760, 2) float64: per-sensor mean, std, valid fraction of the
                             normalized values (from exact integer sums of the stored codes)
      splits/train, splits/val   (k, 2) int64 [start, stop) event ranges
      _xec/zarr.json         makes _xec an empty Zarr array (shape (0,)), so plain Zarr readers
                             see a node and never look at the bookkeeping files beside it
                             (format 1 had no such file: listing the root group warned)
      _xec/plan.json         what the running ingest/append/renormalize is doing (resume key)
      _xec/units/u<k>.json   one per finished work unit (+ u<k>.<scheme id>.npz: its statistics)
      _xec/complete.json     the completion marker, written last by atomic rename

Every array has event-axis chunks of `chunk_events` events (default 256: a 4.9 MB uint16 or a
9.7 MB float32 chunk of the sensor tensor) inside shards of `shard_events` events (default
64 chunks = 16384 events, ~200 MB per sensor shard with the fast profile), all on the same
event boundaries. A work unit of the ingestion is exactly one shard of every array, so no two
workers ever write the same file, and 1e8 events make ~6100 shard files per array. The small
per-event values are packed into a few arrays so they do not multiply the file count.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
from pathlib import Path

from xecdata.errors import XecError

FORMAT_NAME = "xec-store"
FORMAT_VERSION = 2
READABLE_FORMAT_VERSIONS = (1, 2)  # 1: the same store without _xec/zarr.json
CHUNK_EVENTS = 256
SHARD_CHUNKS = 64
META_DIR = "_xec"
META_NODE = f"{META_DIR}/zarr.json"
PLAN_FILE = f"{META_DIR}/plan.json"
COMPLETE_FILE = f"{META_DIR}/complete.json"
UNITS_DIR = f"{META_DIR}/units"
RAW_ARRAYS = {"npho": "raw/npho", "time": "raw/time"}
STATS_FIELDS = ("mean", "std", "valid_fraction")
SPLIT_NAMES = ("train", "val")
ATTR_KEY = "xec"
_SCHEME_ID = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*@[0-9]+")


class StoreError(XecError):
    """A store cannot be used as asked; the message names the store and the fix."""


class IncompleteStoreError(StoreError):
    """The store was not finished (interrupted or still being written)."""


class SchemeMismatchError(StoreError):
    """The store lacks the requested scheme or holds another definition under its id."""


class DamagedStoreError(StoreError):
    """A chunk's stored bytes fail their checksum, are missing or cannot be decoded. The
    message names the store, the array, the chunk (index and events) and the command that
    rebuilds its shard; the fields are kept for `xec inspect --verify` (and survive pickling,
    e.g. from a DALI worker)."""

    def __init__(
        self, root: str, array: str, chunk: int, events: tuple[int, int], unit: int, reason: str
    ) -> None:
        super().__init__(root, array, chunk, events, unit, reason)
        self.root, self.array, self.chunk, self.events = root, array, chunk, events
        self.unit, self.reason = unit, reason

    def __str__(self) -> str:
        a, b = self.events
        root = Path(self.root)
        return (
            f"store {root}: chunk {self.chunk} of array {self.array} (events {a}..{b - 1}, "
            f"shard {self.unit}) is damaged: {self.reason}. Rebuild it from its sources with "
            f"`{repair_command(root, [self.unit])}`; `xec inspect --verify "
            f"{shlex.quote(str(root))}` lists every damaged chunk"
        )


def repair_command(root: Path, units: list[int] | None = None) -> str:
    """The command that rebuilds work units (= shards) of a store from its source files
    (without units: whatever `xec inspect --verify` finds damaged)."""
    tail = ["--units", ",".join(map(str, units))] if units else []
    return shlex.join(["xec", "repair", str(root), *tail])


def write_meta_node(root: Path) -> None:
    """Make `_xec` an empty Zarr v3 array (idempotent). Zarr lists every entry of a group's
    folder as a member and warns about one that is not a node; as an array, `_xec` is a node
    whose folder Zarr never lists, so xec's plan, unit markers and completion marker there
    stay private without warnings."""
    node = {
        "zarr_format": 3,
        "node_type": "array",
        "shape": [0],
        "data_type": "uint8",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [1]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0,
        "codecs": [{"name": "bytes"}],
        "attributes": {
            "xec": "private bookkeeping of xec (plan, work-unit and completion markers) in "
            "files beside this metadata; holds no data"
        },
    }
    data = json.dumps(node, indent=1).encode()
    path = root / META_NODE
    if not path.is_file() or path.read_bytes() != data:
        atomic_write_bytes(path, data)


def sensors_array(scheme_id: str) -> str:
    """Array path of a scheme's sensor tensor."""
    if not _SCHEME_ID.fullmatch(scheme_id):
        raise ValueError(f"scheme id {scheme_id!r} is not of the form name@version")
    return f"sensors/{scheme_id}"


def stats_array(scheme_id: str) -> str:
    """Array path of a scheme's per-sensor statistics."""
    sensors_array(scheme_id)  # validates the id
    return f"stats/{scheme_id}"


def split_array(name: str) -> str:
    return f"splits/{name}"


def unit_marker(unit: int) -> str:
    return f"{UNITS_DIR}/u{unit:07d}.json"


def shard_file(root: Path, array: str, shard: int, ndim: int) -> Path:
    """Path of shard `shard` (event axis) of an array with `ndim` dimensions (zarr v3 default
    chunk key encoding: c/<i>/<j>/...)."""
    return root / array / "c" / str(shard) / Path(*(["0"] * (ndim - 1)))


def temporary_name(path: Path) -> Path:
    """Where `path` is written before its atomic rename: `.NAME.tmp-HOST-PID`, unique among the
    processes of every node writing one store on a shared file system (`xec ingest --part`)."""
    return path.with_name(f".{path.name}.tmp-{socket.gethostname()}-{os.getpid()}")


def atomic_write_bytes(path: Path, data: bytes, fsync: bool = False) -> None:
    """Write `data` to `path` through a temporary file and an atomic rename; with fsync the
    bytes and then the rename reach the disk before this returns (power-loss safe)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    with open(tmp, "wb") as f:
        f.write(data)
        if fsync:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if fsync:
        fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Make the renames inside folder `path` durable (no-op where folders cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder: nothing more to do there
        pass
    finally:
        os.close(fd)


def remove_temporaries(root: Path) -> int:
    """Delete leftover `.NAME.tmp-HOST-PID` files of interrupted writes; returns how many
    (only while no other process writes the store)."""
    count = 0
    for tmp in root.rglob(".*.tmp-*"):
        tmp.unlink(missing_ok=True)
        count += 1
    return count
