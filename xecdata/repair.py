"""`xec repair`: rebuild damaged work units (shards) of a finished store from its source files.

A unit's bytes depend only on the events that fill it (xecdata.store.units), so a unit run again
from the same source files gives back the bytes it had. The store's provenance names every
source file (path, size, sha256, tree, branches, first store index). Repair checks the files
that fill the asked units (the pre-pass checks, then size and full sha256 against the
provenance: a changed or missing file is refused, naming it), plans exactly those files at
their recorded store indices with the store's own settings, and runs the units through the
ingestion's unit code (each shard published by atomic rename, so readers never see a partial
one). Each rebuilt unit's statistics must equal the recorded ones. Damaged small arrays
(statistics, splits) are rewritten from the units' statistics files and the split rule, and the
metadata gains a history record. Without --units, `verify_store` finds what to rebuild.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xecdata.ingest import IngestError, default_workers, store_lock
from xecdata.rootio import sha256_file
from xecdata.store.finalize import merged_stats
from xecdata.store.format import SPLIT_NAMES, split_array, stats_array
from xecdata.store.metadata import (
    is_complete,
    now,
    read_metadata,
    split_ranges,
    validate_metadata,
    write_complete,
    write_metadata,
)
from xecdata.store.plan import Settings, make_plan
from xecdata.store.prepass import check_one, column_layout
from xecdata.store.runner import worker_pool
from xecdata.store.units import run_unit, unit_range, unit_stats_file
from xecdata.store.verify import unit_sources, verify_store
from xecdata.store.writer import write_small_array

READ_EVENTS = 512


class RepairError(IngestError):
    """A repair that cannot proceed; the message names the unit or file and the fix."""


@dataclass
class RepairResult:
    store: str
    units: list[int]
    events: int  # events rewritten
    files: list[str]  # source files read
    small_arrays: list[str]  # small arrays rewritten
    seconds: float


def repair(
    store: str | Path,
    units: list[int] | None = None,
    *,
    workers: int | None = None,
    command: str = "",
) -> RepairResult:
    """Rebuild `units` (default: every damaged one) of the finished store at `store`."""
    root, t0 = Path(store), time.perf_counter()
    meta = read_metadata(root)
    if meta is None or not is_complete(root, meta):
        raise RepairError(
            f"store {root} is not complete: resume its ingestion (the same `xec ingest` "
            "command) instead; repair rebuilds parts of finished stores"
        )
    with store_lock(root):
        if units is None:
            units = verify_store(root).units
        plan = repair_plan(root, meta, sorted(set(units)), command)
        before = {k: _unit_stats(root, plan, k) for k in units}
        with worker_pool(min(default_workers(workers), max(len(units), 1))) as pool:
            if pool is None:
                done = [run_unit(root, plan, k) for k in units]
            else:
                done = [f.result() for f in [pool.submit(run_unit, root, plan, k) for k in units]]
        for k in units:
            old = before[k]
            if old is not None and not _same(old, _unit_stats(root, plan, k)):
                raise RepairError(
                    f"store {root}: shard {k} rebuilt from its sources differs from the one "
                    "ingested (its statistics changed): the sources no longer give the stored "
                    "events; ingest them into a new store"
                )
        small = _repair_small(root, meta)
        if units or small:
            _record(root, meta, command, len(plan["files"]))
    return RepairResult(
        str(root),
        list(units),
        sum(r["events"] for r in done),
        [f["path"] for f in plan["files"]],
        small,
        time.perf_counter() - t0,
    )


def repair_plan(root: Path, meta: dict[str, Any], units: list[int], command: str) -> dict[str, Any]:
    """A plan writing `units` of every array from the source files that fill them."""
    n_units = -(-meta["n_events"] // meta["shard_events"])
    bad = [k for k in units if not 0 <= k < n_units]
    if bad:
        raise RepairError(f"store {root} has shards 0..{n_units - 1}; --units {bad} are not")
    settings = Settings.of_store(meta)
    request = {"action": "repair", "units": units}
    plan = make_plan("repair", request, command, settings, 0, [], [], READ_EVENTS)
    plan["n_events"], plan["input"] = meta["n_events"], meta["input"]
    paths = {p["path"] for k in units for p in unit_sources(meta, *unit_range(plan, k))}
    plan["files"] = [_source_file(s, meta) for s in meta["sources"] if s["path"] in paths]
    return plan


def _source_file(source: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """The plan record of a source file, checked against the store's provenance."""
    path = source["path"]
    res = check_one(path, source["tree"], source["npho_branch"], source["time_branch"])
    if "error" in res:
        raise RepairError(f"source of the store: {res['error']}")
    rec = res["record"]
    if (rec["size"], rec["entries"]) != (source["size"], source["entries"]):
        raise RepairError(
            f"source {path} changed since it was ingested (size {rec['size']} vs "
            f"{source['size']}, entries {rec['entries']} vs {source['entries']}); restore it"
        )
    if column_layout(rec["columns"])[0] != meta["columns"]:
        raise RepairError(f"source {path}: its branches differ from the store's; restore it")
    if sha256_file(path) != source["sha256"]:
        raise RepairError(f"source {path}: its sha256 differs from the ingested file; restore it")
    rec["first_index"] = source["first_index"]
    return dict(rec)


def _unit_stats(root: Path, plan: dict[str, Any], unit: int) -> dict[str, np.ndarray] | None:
    """The statistics files of a unit (every scheme), None where one is missing."""
    out: dict[str, np.ndarray] = {}
    for sid in plan["schemes"]:
        try:
            data = (root / unit_stats_file(unit, sid)).read_bytes()
        except FileNotFoundError:
            return None
        with np.load(io.BytesIO(data)) as z:
            out |= {f"{sid}/{k}": z[k] for k in z.files}
    return out


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray] | None) -> bool:
    return b is not None and a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _repair_small(root: Path, meta: dict[str, Any]) -> list[str]:
    """Rewrite damaged statistics and split arrays (from the units' files / the split rule)."""
    from xecdata.store.chunks import read_small_array
    from xecdata.store.format import StoreError

    rewritten = []
    sizes = {"n_events": meta["n_events"], "shard_events": meta["shard_events"]}
    split = split_ranges(meta["n_events"], meta["chunk_events"], meta["split"]["val_fraction"])
    arrays: dict[str, Any] = {split_array(name): split[name] for name in SPLIT_NAMES}
    for sid, entry in meta["schemes"].items():
        arrays[stats_array(sid)] = (sid, entry)
    for path, value in arrays.items():
        try:
            read_small_array(root, path)
            continue
        except StoreError:
            pass
        if isinstance(value, tuple):
            value = merged_stats(root, sizes, *value)[0]
        write_small_array(root, path, value)
        rewritten.append(path)
    return rewritten


def _record(root: Path, meta: dict[str, Any], command: str, files: int) -> None:
    """Append the repair to the store's history (metadata, then its completion marker)."""
    entry = {
        "action": "repair",
        "time": now(),
        "command": command,
        "files": files,
        "events_added": 0,
        "schemes_written": list(meta["schemes"]),
    }
    meta = {**meta, "history": [*meta["history"], entry]}
    validate_metadata(meta)
    write_metadata(root, meta)
    write_complete(root, meta)
