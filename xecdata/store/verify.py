"""`xec inspect --verify`: read every chunk of a store, list the damaged ones and how to rebuild.

Every chunk of every event-axis array is read and decoded as the loaders read it (shard index
crc32c, chunk crc32c, codec), in parallel threads; the small arrays (statistics, splits) are
read through zarr, which checks their crc32c. A damaged chunk is reported with its array,
index, events and work unit (= shard), and each damaged unit with the source files and entries
that fill it (from the store's provenance), so `xec repair STORE --units ...` can rebuild it
from them. Stores made before checksums can only show chunks that no longer decode.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from xecdata.store.chunks import ChunkArray, read_small_array
from xecdata.store.format import (
    SPLIT_NAMES,
    DamagedStoreError,
    IncompleteStoreError,
    StoreError,
    repair_command,
    split_array,
)
from xecdata.store.metadata import is_complete, read_metadata


@dataclass(frozen=True)
class Damage:
    """One damaged chunk."""

    array: str
    chunk: int
    events: tuple[int, int]  # [start, stop) store events
    unit: int  # the work unit (= shard) that rebuilds it
    reason: str


@dataclass
class VerifyReport:
    """What `verify_store` found."""

    store: str
    checksums: bool  # False: a store made before checksums (bit flips cannot be seen)
    chunks_checked: int
    damaged: list[Damage] = field(default_factory=list)
    small_damaged: list[str] = field(default_factory=list)  # messages of small arrays
    sources: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # unit -> inputs

    @property
    def units(self) -> list[int]:
        return sorted({d.unit for d in self.damaged})

    @property
    def clean(self) -> bool:
        return not self.damaged and not self.small_damaged

    @property
    def command(self) -> str | None:
        """The command that rebuilds everything damaged (None for a clean store)."""
        if self.clean:
            return None
        return repair_command(Path(self.store), self.units)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out |= {"units": self.units, "clean": self.clean, "command": self.command}
        out["sources"] = {str(k): v for k, v in self.sources.items()}
        return out


def verify_store(path: str | Path, threads: int | None = None) -> VerifyReport:
    """Read and check every chunk of the finished store at `path` (module docstring)."""
    root = Path(path)
    meta = read_metadata(root)
    if meta is None or not is_complete(root, meta):
        raise IncompleteStoreError(
            f"store {root} is not complete: finish its ingestion (re-run the same `xec ingest`) "
            "before verifying it"
        )
    arrays = [ChunkArray(root, name) for name in meta["arrays"]]
    jobs = [(arr, c) for arr in arrays for c in range(arr.n_chunks)]
    with ThreadPoolExecutor(threads or min(4, os.cpu_count() or 1)) as pool:
        found = [d for d in pool.map(_check, *zip(*jobs, strict=True)) if d is not None]
    report = VerifyReport(str(root), all(a.checksum for a in arrays), len(jobs), found)
    report.small_damaged = _small_damage(root, meta)
    shard = int(meta["shard_events"])
    for unit in report.units:
        report.sources[unit] = unit_sources(meta, unit * shard, (unit + 1) * shard)
    return report


def _check(arr: ChunkArray, chunk: int) -> Damage | None:
    try:
        arr.read_chunk(chunk, arr.scratch())
    except DamagedStoreError as err:
        return Damage(err.array, err.chunk, err.events, err.unit, err.reason)
    return None


def _small_damage(root: Path, meta: dict[str, Any]) -> list[str]:
    paths = [e["stats"]["array"] for e in meta["schemes"].values()]
    paths += [split_array(name) for name in SPLIT_NAMES]
    out = []
    for p in paths:
        try:
            read_small_array(root, p)
        except StoreError as err:
            out.append(str(err))
    return out


def unit_sources(meta: dict[str, Any], a: int, b: int) -> list[dict[str, Any]]:
    """The source files and entry ranges that fill store events [a, b) (provenance)."""
    out = []
    for s in meta["sources"]:
        lo, hi = max(a, s["first_index"]), min(b, s["first_index"] + s["entries"])
        if lo < hi:
            e0, e1 = lo - s["first_index"], hi - s["first_index"]
            out.append({"path": s["path"], "tree": s["tree"], "entries": [e0, e1]})
    return out


def format_report(r: VerifyReport) -> str:
    """Human-readable rendering of a VerifyReport."""
    check = "crc32c per chunk" if r.checksums else "NO checksums (made before xec stored them)"
    lines = [f"store      {r.store}", f"verified   {r.chunks_checked} chunks ({check})"]
    if r.clean:
        return "\n".join([*lines, "result     no damaged chunk"])
    for d in r.damaged:
        lines.append(
            f"DAMAGED    {d.array} chunk {d.chunk} (events {d.events[0]}..{d.events[1] - 1}, "
            f"shard {d.unit}): {d.reason}"
        )
    lines += [f"DAMAGED    {msg}" for msg in r.small_damaged]
    for unit, pieces in r.sources.items():
        text = "; ".join(f"{p['path']} entries {p['entries'][0]}..{p['entries'][1] - 1}"
                         for p in pieces)  # fmt: skip
        lines.append(f"shard {unit} is filled from {text}")
    lines.append(f"rebuild    {r.command}")
    return "\n".join(lines)
