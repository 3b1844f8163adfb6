"""The last step of every store action: statistics, split, metadata, completion marker.

Runs in the main process once every unit of the plan is done. The order is what makes a crash
harmless: statistics and split arrays, then the metadata (root zarr.json, atomic), then the
completion marker (atomic), then the plan file is dropped. Before the marker exists, readers
refuse the store; after it, everything it describes is on disk.
"""

from __future__ import annotations

import io
import json
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import numpy as np

from xecdata.geometry import geometry_id
from xecdata.store.encode import finish_stats, merge_stats
from xecdata.store.format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    PLAN_FILE,
    SPLIT_NAMES,
    STATS_FIELDS,
    shard_file,
    split_array,
    stats_array,
    write_meta_node,
)
from xecdata.store.metadata import (
    now,
    split_ranges,
    tool_versions,
    validate_metadata,
    write_complete,
    write_metadata,
)
from xecdata.store.precision import ChannelCode
from xecdata.store.units import unit_stats_file
from xecdata.store.writer import write_small_array

MERGE_BLOCK = 16  # units whose statistics one worker task merges


def finalize(
    root: Path, plan: dict[str, Any], previous: dict[str, Any] | None, pool: Executor | None = None
) -> dict[str, Any]:
    """Write statistics, split, metadata and the completion marker; returns the metadata.
    With a pool, the workers merge the units' statistics (blocks of units each)."""
    n, ce = plan["n_events"], plan["chunk_events"]
    schemes = {}
    for sid, entry in plan["schemes"].items():
        if sid in plan["write_schemes"] or previous is None:
            schemes[sid] = _scheme_record(root, plan, sid, entry, pool)
        else:
            schemes[sid] = previous["schemes"][sid]
    prev = previous or {}
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "n_events": n,
        "chunk_events": ce,
        "shard_events": plan["shard_events"],
        "geometry_id": geometry_id(),
        "codec": plan["codec_profile"],
        "schemes": schemes,
        "raw": {"kept": plan["keep_raw"], "arrays": plan["raw_arrays"]},
        "columns": plan["columns"],
        "column_arrays": plan["column_arrays"],
        "split": _split_record(root, n, ce, plan["val_fraction"]),
        "input": plan["input"],
        "sources": [*prev.get("sources", []), *(_source_record(f) for f in plan["files"])],
        "skipped": [*prev.get("skipped", []), *plan["skipped"]],
        "arrays": _array_records(root, plan, n),
        "tools": tool_versions(),
        "history": [*prev.get("history", []), _history_record(plan, previous)],
        "created": prev.get("created", now()),
    }
    meta = json.loads(json.dumps(meta))  # plain JSON types (tuples -> lists)
    validate_metadata(meta)
    write_metadata(root, meta)
    write_meta_node(root)  # format 2 (start_action wrote it too; a --finalize run may not)
    write_complete(root, meta)
    (root / PLAN_FILE).unlink(missing_ok=True)
    return meta


def _scheme_record(
    root: Path, plan: dict[str, Any], sid: str, entry: dict[str, Any], pool: Executor | None
) -> dict[str, Any]:
    """Merge the units' statistics of one scheme, write its stats array, build its record."""
    stats, total, clipped, codes = merged_stats(root, plan, sid, entry, pool)
    write_small_array(root, stats_array(sid), stats)
    precision = dict(entry["precision"])
    precision["clipped"] = {"npho": int(clipped[0]), "time": int(clipped[1])}
    return {
        "definition": entry["definition"],
        "hash": entry["hash"],
        "array": entry["array"],
        "dtype": entry["dtype"],
        "precision": precision,
        "stats": {
            "array": stats_array(sid),
            "fields": list(STATS_FIELDS),
            "summary": _summary(total, codes),
        },
    }


def merged_stats(
    root: Path,
    plan: dict[str, Any],
    sid: str,
    entry: dict[str, Any],
    pool: Executor | None = None,
) -> tuple[np.ndarray, dict[str, Any], np.ndarray, tuple[ChannelCode, ChannelCode]]:
    """A scheme's statistics from its units' files: (stats (3, 4760, 2), merged sums, clipped
    counts (2,), channel codes). `plan` needs n_events and shard_events. With a pool, blocks
    of units are merged in its workers and only their partial sums here."""
    p = entry["precision"]
    codes = (ChannelCode.from_dict(p["npho"]), ChannelCode.from_dict(p["time"]))
    if entry["dtype"] == "float32":
        codes = (lossless(codes[0]), lossless(codes[1]))
    units = list(range(-(-plan["n_events"] // plan["shard_events"])))
    blocks = [units[i : i + MERGE_BLOCK] for i in range(0, len(units), MERGE_BLOCK)]
    if pool is None or len(blocks) < 2:
        partial = [merge_unit_stats(str(root), sid, b) for b in blocks]
    else:
        partial = list(pool.map(merge_unit_stats, [str(root)] * len(blocks), [sid] * len(blocks),
                                blocks))  # fmt: skip
    total = merge_stats([t for t, _ in partial])
    clipped = np.zeros(2, np.int64)
    for _, c in partial:
        clipped += c
    return finish_stats(total, codes), total, clipped, codes


def merge_unit_stats(root: str, sid: str, units: list[int]) -> tuple[dict[str, Any], np.ndarray]:
    """The summed statistics (exact) and clipped counts of some units of a scheme."""
    parts, clipped = [], np.zeros(2, np.int64)
    for unit in units:
        with np.load(io.BytesIO((Path(root) / unit_stats_file(unit, sid)).read_bytes())) as z:
            parts.append({k: z[k] for k in ("events", "count", "s1", "s2")})
            clipped += z["clipped"]
    return merge_stats(parts), clipped


def _split_record(root: Path, n: int, ce: int, val_fraction: float) -> dict[str, Any]:
    """Write the split's range arrays; their metadata record."""
    split = split_ranges(n, ce, val_fraction)
    for name in SPLIT_NAMES:
        write_small_array(root, split_array(name), split[name])
    return {
        "rule": "chunk-blocks",
        "val_fraction": val_fraction,
        "block_events": ce,
        "arrays": {name: split_array(name) for name in SPLIT_NAMES},
        "events": {name: int(np.sum(np.diff(split[name], axis=1))) for name in SPLIT_NAMES},
    }


def lossless(code: ChannelCode) -> ChannelCode:
    """The float32 (stored as is) twin of a channel code."""
    return ChannelCode("float32", 0.0, 0.0, code.sentinel)


def _summary(total: dict[str, Any], codes: tuple[ChannelCode, ...]) -> dict[str, Any]:
    """Pooled valid fraction, mean and std per channel over all sensors and events."""
    out = {}
    events = max(total["events"], 1)
    for ch, name in enumerate(("npho", "time")):
        count = int(sum(total["count"][:, ch])) if "count" in total else 0
        rec: dict[str, float | None] = {
            "valid_fraction": count / (events * total["count"].shape[0]) if count else 0.0
        }
        rec["mean"] = rec["std"] = None
        if count:
            s1, s2 = sum(total["s1"][:, ch]), sum(total["s2"][:, ch])
            mean, var = float(s1 / count), float((count * s2 - s1 * s1) / (count * count))
            code = codes[ch]
            if code.encoding == "uint16":
                mean, var = code.offset + code.step * (mean - 1.0), var * code.step**2
            rec["mean"], rec["std"] = mean, float(np.sqrt(max(var, 0.0)))
        out[name] = rec
    return out


def _source_record(f: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "path",
        "size",
        "sha256",
        "fingerprint",
        "tree",
        "entries",
        "first_index",
        "npho_branch",
        "time_branch",
        "note",
    )
    rec = {k: f[k] for k in keys}
    rec["entry_start"], rec["entry_stop"] = 0, f["entries"]
    return rec


def _array_records(root: Path, plan: dict[str, Any], n: int) -> dict[str, Any]:
    """Every event-axis array: dtype, shape, chunking, codec, bytes on disk and per event."""
    out = {}
    n_shards = -(-n // plan["shard_events"])
    for spec in plan["all_arrays"]:
        nbytes = 0
        for s in range(n_shards):
            path = shard_file(root, spec["path"], s, 1 + len(spec["tail"]))
            nbytes += path.stat().st_size if path.exists() else 0
        out[spec["path"]] = {
            "dtype": spec["dtype"],
            "shape": [n, *spec["tail"]],
            "chunk_events": plan["chunk_events"],
            "shard_events": plan["shard_events"],
            "codec": plan["codec_profile"]["description"],
            "bytes": nbytes,
            "bytes_per_event": nbytes / n if n else 0.0,
        }
    return out


def _history_record(plan: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    before = previous["n_events"] if previous else 0
    return {
        "action": plan["action"],
        "time": now(),
        "command": plan["command"],
        "files": len(plan["files"]),
        "events_added": plan["n_events"] - before,
        "schemes_written": plan["write_schemes"],
    }
