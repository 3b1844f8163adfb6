"""What `xec inspect` shows: a store's events, splits, schemes, arrays, precision, statistics,
provenance and completeness, as a JSON-able dict and as text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xecdata.store.format import StoreError
from xecdata.store.metadata import is_complete, read_metadata
from xecdata.store.plan import read_plan
from xecdata.store.units import unit_done


def describe(path: str | Path) -> dict[str, Any]:
    """Summary of the store at `path`, finished or not."""
    root = Path(path)
    if not (root / "zarr.json").is_file():
        raise StoreError(f"no xec store at {root} (no zarr.json)")
    meta = read_metadata(root)
    out: dict[str, Any] = {"path": str(root), "complete": is_complete(root, meta)}
    plan = read_plan(root)
    if plan is not None and not out["complete"]:
        out["pending"] = _pending(root, plan)
    if meta is None:
        return out
    n = meta["n_events"]
    out |= {
        "n_events": n,
        "chunk_events": meta["chunk_events"],
        "shard_events": meta["shard_events"],
        "n_chunks": -(-n // meta["chunk_events"]),
        "geometry_id": meta["geometry_id"],
        "codec": meta["codec"],
        "splits": {
            "rule": meta["split"]["rule"],
            "val_fraction": meta["split"]["val_fraction"],
            "events": meta["split"]["events"],
        },
        "schemes": {sid: _scheme(e) for sid, e in meta["schemes"].items()},
        "arrays": meta["arrays"],
        "columns": {
            k: {"kind": c["kind"], "dtype": c["dtype"], "shape": c["shape"]}
            for k, c in meta["columns"].items()
        },
        "raw_kept": meta["raw"]["kept"],
        "bytes_per_event": sum(a["bytes"] for a in meta["arrays"].values()) / n,
        "sources": meta["sources"],
        "skipped": meta["skipped"],
        "tools": meta["tools"],
        "history": meta["history"],
    }
    return out


def _pending(root: Path, plan: dict[str, Any]) -> dict[str, Any]:
    """Progress of an unfinished action."""
    units = range(plan["first_unit"], -(-plan["n_events"] // plan["shard_events"]))
    return {
        "action": plan["action"],
        "command": plan["command"],
        "units_done": sum(unit_done(root, plan, k) for k in units),
        "units": len(units),
        "n_events": plan["n_events"],
    }


def _scheme(entry: dict[str, Any]) -> dict[str, Any]:
    p = entry["precision"]
    return {
        "hash": entry["hash"],
        "dtype": entry["dtype"],
        "array": entry["array"],
        "precision": {
            "npho": {
                k: p["npho"].get(k)
                for k in ("encoding", "step", "max_abs_error_normalized", "range_photons")
            },
            "time": {
                k: p["time"].get(k)
                for k in ("encoding", "step", "step_s", "rms_error_s", "max_error_s", "range_s")
            },
            "clipped": p["clipped"],
        },
        "stats": entry["stats"]["summary"],
    }


def _fmt(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def format_text(d: dict[str, Any]) -> str:
    """Human-readable rendering of describe()."""
    lines = [f"store      {d['path']}", f"complete   {'yes' if d['complete'] else 'NO'}"]
    if "pending" in d:
        p = d["pending"]
        lines.append(
            f"pending    {p['action']}: {p['units_done']}/{p['units']} units done; "
            f"resume with: {p['command'] or 'the same xec command'}"
        )
    if "n_events" in d:
        lines += _summary_lines(d) + _scheme_lines(d) + _array_lines(d) + _provenance_lines(d)
    return "\n".join(lines)


def _summary_lines(d: dict[str, Any]) -> list[str]:
    sp = d["splits"]
    return [
        f"events     {d['n_events']}  (chunks of {d['chunk_events']}, shards of "
        f"{d['shard_events']}, {d['n_chunks']} chunks)",
        f"splits     train {sp['events']['train']}, val {sp['events']['val']} "
        f"({sp['rule']}, val_fraction {sp['val_fraction']})",
        f"geometry   {d['geometry_id']}",
        f"codec      {d['codec']['name']}: {d['codec']['description']}",
        "checksums  "
        + (
            "crc32c per chunk (`xec inspect --verify` reads them all)"
            if d["codec"].get("checksum")
            else "none: made before xec checksummed chunks (ingest again to add them)"
        ),
        f"size       {d['bytes_per_event']:.0f} bytes/event in all arrays",
    ]


def _scheme_lines(d: dict[str, Any]) -> list[str]:
    lines = ["schemes"]
    for sid, s in d["schemes"].items():
        pn, pt, st = s["precision"]["npho"], s["precision"]["time"], s["stats"]
        lines.append(f"  {sid}  {s['hash']}  {s['dtype']}")
        lines.append(
            f"    npho step {_fmt(pn['step'])} (max err {_fmt(pn['max_abs_error_normalized'])}), "
            f"time step {_fmt(pt['step_s'])} s (rms {_fmt(pt['rms_error_s'])} s), "
            f"clipped {s['precision']['clipped']}"
        )
        for ch in ("npho", "time"):
            c = st[ch]
            lines.append(
                f"    {ch}: valid {c['valid_fraction']:.4f}, mean {_fmt(c['mean'])}, "
                f"std {_fmt(c['std'])}"
            )
    return lines


def _array_lines(d: dict[str, Any]) -> list[str]:
    lines = ["arrays"]
    for name, a in d["arrays"].items():
        lines.append(
            f"  {name:24s} {a['dtype']:8s} {tuple(a['shape'])!s:20s} "
            f"{a['bytes_per_event']:9.1f} B/event  {a['codec']}"
        )
    lines.append("columns    " + ", ".join(f"{k} ({c['kind']})" for k, c in d["columns"].items()))
    lines.append(f"raw kept   {'yes' if d['raw_kept'] else 'no'}")
    return lines


def _provenance_lines(d: dict[str, Any]) -> list[str]:
    lines = [f"sources    {len(d['sources'])} files"]
    for s in d["sources"]:
        note = f"  {s['note']}" if s["note"] else ""
        lines.append(
            f"  [{s['first_index']}, {s['first_index'] + s['entries']}) {s['path']} "
            f"({s['entries']} entries, {s['sha256'][:19]}...){note}"
        )
    lines += [f"skipped    {s['path']}: {s['reason']}" for s in d["skipped"]]
    lines.append("tools      " + ", ".join(f"{k} {v}" for k, v in d["tools"].items()))
    for h in d["history"]:
        lines.append(
            f"history    {h['time']} {h['action']} +{h['events_added']} events: {h['command']}"
        )
    return lines
