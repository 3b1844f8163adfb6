"""Work units of ingestion: one unit = one shard of every array the running action writes.

A unit covers store events [k * shard_events, (k + 1) * shard_events). Its inputs ("pieces")
follow from the plan alone: entry ranges of ROOT files (their store ranges are fixed up front
from the files' entry counts), events already in the store (the partial last shard that
`--append` extends) or the store's raw arrays (`renormalize`). The unit reads its pieces in
steps of at most `read_events` entries cut at basket boundaries (bounded memory whatever the
file sizes), encodes, streams every array's shard to a temporary file, then publishes: shard
renames, statistics (`u<k>.<scheme>.npz`), and last the unit marker naming the plan id. A unit
interrupted at any point is simply redone on resume and produces the same bytes.
"""

from __future__ import annotations

import contextlib
import io
import json
import queue
import resource
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from xecdata.geometry import N_SENSORS
from xecdata.rootio import Column, FileInfo, open_tree, read_block, read_steps
from xecdata.schemes import Scheme
from xecdata.store.chunks import ChunkArray
from xecdata.store.encode import SchemeEncoder
from xecdata.store.format import (
    RAW_ARRAYS,
    UNITS_DIR,
    atomic_write_bytes,
    fsync_dir,
    unit_marker,
)
from xecdata.store.precision import ChannelCode
from xecdata.store.writer import ArraySpec, ShardWriter


def unit_range(plan: dict[str, Any], unit: int) -> tuple[int, int]:
    """Store event range [a, b) of a unit."""
    a = unit * plan["shard_events"]
    return a, min(a + plan["shard_events"], plan["n_events"])


def unit_done(root: Path, plan: dict[str, Any], unit: int) -> bool:
    """True when the unit's marker exists and belongs to this plan."""
    try:
        marker = json.loads((root / unit_marker(unit)).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return False
    return marker.get("plan_id") == plan["plan_id"]


def file_info(d: dict[str, Any]) -> FileInfo:
    """A FileInfo from its plan record."""
    keys = FileInfo.__dataclass_fields__
    fields = {k: v for k, v in d.items() if k in keys and k != "basket_starts"}
    fields["columns"] = tuple(
        Column(c["name"], c["kind"], c["dtype"], tuple(c["shape"])) for c in d["columns"]
    )
    fields["jagged"] = tuple(d["jagged"])
    return FileInfo(**fields)


def unit_pieces(plan: dict[str, Any], a: int, b: int) -> list[tuple[Any, ...]]:
    """Inputs of store range [a, b): ("stored"|"raw", a, b) and ("file", index, e0, e1)."""
    pieces: list[tuple[Any, ...]] = []
    if plan["action"] == "renormalize":
        return [("raw", a, b)]
    kept = min(b, plan["n_before"])
    if a < kept:
        pieces.append(("stored", a, kept))
    for i, f in enumerate(plan["files"]):
        lo, hi = max(a, f["first_index"]), min(b, f["first_index"] + f["entries"])
        if lo < hi:
            pieces.append(("file", i, lo - f["first_index"], hi - f["first_index"]))
    return pieces


class UnitWriter:
    """Encodes the events of one unit into the shards of every array the plan writes."""

    def __init__(self, root: Path, plan: dict[str, Any], unit: int) -> None:
        self.root, self.plan, self.unit = root, plan, unit
        self.specs = {
            d["path"]: ArraySpec(d["path"], tuple(d["tail"]), d["dtype"])
            for d in plan["write_arrays"]
        }
        self.writers = {}
        for path, spec in self.specs.items():
            chain = ChunkArray(root, path)  # the array's own codec chain, as its zarr.json says
            ce, se = plan["chunk_events"], plan["shard_events"]
            self.writers[path] = ShardWriter(root, spec, unit, ce, se, chain.codec, chain.checksum)
        self.encoders: dict[str, SchemeEncoder] = {}
        for sid in plan["write_schemes"]:
            entry = plan["schemes"][sid]
            codes = (
                ChannelCode.from_dict(entry["precision"]["npho"]),
                ChannelCode.from_dict(entry["precision"]["time"]),
            )
            self.encoders[sid] = SchemeEncoder(Scheme.from_dict(entry["definition"]), codes)
        self._out: dict[str, np.ndarray] = {}

    def _buffer(self, sid: str, n: int) -> np.ndarray:
        buf = self._out.get(sid)
        if buf is None or len(buf) < n:
            buf = self._out[sid] = np.empty((n, N_SENSORS, 2), self.encoders[sid].dtype)
        return buf

    def add_physical(
        self, npho: np.ndarray, time: np.ndarray, cols: dict[str, np.ndarray] | None
    ) -> None:
        """Raw (n, 4760) npho and time (+ per-event columns) of the next n events."""
        for sid, enc in self.encoders.items():
            stored = enc.encode(npho, time, self._buffer(sid, len(npho)))  # + statistics
            self.writers[self.plan["schemes"][sid]["array"]].append(stored)
        for key, path in RAW_ARRAYS.items():
            if path in self.writers:
                self.writers[path].append(npho if key == "npho" else time)
        if cols is not None:
            for path, packed in pack_columns(self.plan, cols, len(npho)).items():
                self.writers[path].append(packed)

    def add_stored(self, path: str, values: np.ndarray) -> None:
        """Values read back from the store for an array (kept verbatim)."""
        for sid, enc in self.encoders.items():
            if self.plan["schemes"][sid]["array"] == path:
                enc.stats.add(values, (enc.scheme.npho_sentinel, enc.scheme.time_sentinel))
        self.writers[path].append(values)

    def commit(self) -> None:
        """Publish the shards, then the statistics, then the unit marker, each durable on
        disk before the next: after a power loss a unit with a marker has all its bytes."""
        for w in self.writers.values():
            w.close()
        for folder in {w.path.parent for w in self.writers.values()}:
            fsync_dir(folder)
        for sid, enc in self.encoders.items():
            buf = io.BytesIO()
            np.savez(buf, clipped=enc.clipped, **enc.stats.to_arrays())
            path = self.root / unit_stats_file(self.unit, sid)
            atomic_write_bytes(path, buf.getvalue(), fsync=True)
        marker = {
            "plan_id": self.plan["plan_id"],
            "unit": self.unit,
            "events": list(unit_range(self.plan, self.unit)),
        }
        path = self.root / unit_marker(self.unit)
        atomic_write_bytes(path, json.dumps(marker).encode(), fsync=True)

    def abort(self) -> None:
        for w in self.writers.values():
            w.abort()


def unit_stats_file(unit: int, scheme_id: str) -> str:
    return f"{UNITS_DIR}/u{unit:07d}.{scheme_id}.npz"


def pack_columns(
    plan: dict[str, Any], cols: dict[str, np.ndarray], n: int
) -> dict[str, np.ndarray]:
    """Per-event branches -> {columns/<dtype>: (n, K) packed array}."""
    out = {
        path: np.zeros((n, width), path.rsplit("/", 1)[1])
        for path, width in plan["column_arrays"].items()
    }
    for name, c in plan["columns"].items():
        out[c["array"]][:, c["start"] : c["stop"]] = cols[name].reshape(n, -1)
    return out


def run_unit(root: Path, plan: dict[str, Any], unit: int) -> dict[str, Any]:
    """Do one unit; returns its event count, seconds and this process's peak RSS (MB)."""
    t0 = time.perf_counter()
    a, b = unit_range(plan, unit)
    writer = UnitWriter(root, plan, unit)
    try:
        for kind, *data in prefetched(_blocks(root, plan, unit_pieces(plan, a, b))):
            if kind == "physical":
                writer.add_physical(*data)
            else:
                writer.add_stored(*data)
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    return {
        "unit": unit,
        "events": b - a,
        "seconds": time.perf_counter() - t0,
        "peak_rss_mb": peak_rss_mb(),
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB: VmHWM of /proc (the high-water mark of this
    address space; ru_maxrss would carry over the peak of the parent that forked it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _blocks(
    root: Path, plan: dict[str, Any], pieces: list[tuple[Any, ...]]
) -> Iterator[tuple[Any, ...]]:
    """The unit's input, step by step: ("physical", npho, time, cols | None) from ROOT files or
    raw arrays, ("stored", array path, values) from the store."""
    for piece in pieces:
        kind = piece[0]
        if kind == "file":
            _, index, e0, e1 = piece
            info = file_info(plan["files"][index])
            tree = open_tree(info.path, info.tree)
            starts = tuple(int(x) for x in tree[info.npho_branch].entry_offsets)
            for s, e in read_steps(starts, e0, e1, plan["read_events"]):
                yield ("physical", *read_block(tree, info, s, e))
            tree.file.close()
            continue
        _, s0, s1 = piece
        if kind == "raw":
            npho, tm = (ChunkArray(root, RAW_ARRAYS[k]) for k in ("npho", "time"))
            for s in range(s0, s1, plan["chunk_events"]):
                e = min(s + plan["chunk_events"], s1)
                yield ("physical", npho.read(s, e), tm.read(s, e), None)
            continue
        arrays = [ChunkArray(root, d["path"]) for d in plan["write_arrays"]]
        for s in range(s0, s1, plan["chunk_events"]):  # "stored": head of a partial last shard
            e = min(s + plan["chunk_events"], s1)
            for arr in arrays:
                yield ("stored", arr.path, arr.read(s, e))


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetched(items: Iterator[Any], depth: int = 1) -> Iterator[Any]:
    """Iterate `items` in a background thread, `depth` items ahead: ROOT decompression
    (zlib/lzma/lz4/zstd release the GIL) overlaps with encoding in the calling thread."""
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop, done = threading.Event(), object()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as exc:  # handed to the consumer
            q.put(_Failure(exc))

    thread = threading.Thread(target=produce, name="xec-read-ahead", daemon=True)
    thread.start()
    try:
        while (item := q.get()) is not done:
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            with contextlib.suppress(queue.Empty):
                q.get(timeout=0.1)
        thread.join()
