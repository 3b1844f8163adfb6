"""The plan of a store action (`_xec/plan.json`): everything the units and the finalize step
need, fixed before any array data is written, so that a re-run resumes the same work.

Plan keys: plan_id, action (ingest | append | renormalize), command, request (what a resume
must match), n_before (events already in the store), n_events, first_unit, chunk_events,
shard_events, read_events, codec / codec_profile, keep_raw / raw_arrays, schemes (definition,
hash, array, dtype, precision of every scheme of the store), write_schemes, columns /
column_arrays (packed per-event branches), write_arrays / all_arrays (ArraySpec dicts), files
(pre-pass records with first_index), skipped, input, val_fraction.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from xecdata.geometry import N_SENSORS
from xecdata.schemes import Scheme
from xecdata.store import format as fmt
from xecdata.store.codecs import get_profile
from xecdata.store.encode import storage_dtype
from xecdata.store.metadata import write_complete
from xecdata.store.precision import precision_summary, scheme_codes
from xecdata.store.writer import ArraySpec, create_array, resize_array

SCHEME_KEYS = ("definition", "hash", "array", "dtype", "precision")


@dataclass
class Settings:
    """Store-wide settings: chosen by the first ingest, inherited by every later action."""

    schemes: dict[str, dict[str, Any]]
    chunk_events: int
    shard_events: int
    codec: str
    keep_raw: bool
    val_fraction: float
    columns: dict[str, Any]
    column_arrays: dict[str, int]

    @classmethod
    def of_store(cls, meta: dict[str, Any]) -> Settings:
        """The settings recorded in a store's metadata."""
        return cls(
            schemes={sid: {k: e[k] for k in SCHEME_KEYS} for sid, e in meta["schemes"].items()},
            chunk_events=meta["chunk_events"],
            shard_events=meta["shard_events"],
            codec=meta["codec"]["name"],
            keep_raw=meta["raw"]["kept"],
            val_fraction=meta["split"]["val_fraction"],
            columns=meta["columns"],
            column_arrays=meta["column_arrays"],
        )


def scheme_entry(s: Scheme) -> dict[str, Any]:
    """A scheme's record: definition, hash, array path, storage dtype, precision."""
    codes = scheme_codes(s)
    return {
        "definition": s.to_dict(),
        "hash": s.hash,
        "array": fmt.sensors_array(s.id),
        "dtype": storage_dtype(codes),
        "precision": precision_summary(s, codes),
    }


def array_specs(settings: Settings) -> list[dict[str, Any]]:
    """Every event-axis array of a store with these settings."""
    specs = [ArraySpec(e["array"], (N_SENSORS, 2), e["dtype"]) for e in settings.schemes.values()]
    if settings.keep_raw:
        specs += [ArraySpec(p, (N_SENSORS,), "float32") for p in fmt.RAW_ARRAYS.values()]
    specs += [ArraySpec(p, (w,), p.rsplit("/", 1)[1]) for p, w in settings.column_arrays.items()]
    return [asdict(s) for s in specs]


def make_plan(
    action: str,
    request: dict[str, Any],
    command: str,
    settings: Settings,
    n_before: int,
    files: list[dict[str, Any]],
    skipped: list[dict[str, str]],
    read_events: int,
) -> dict[str, Any]:
    """A plan adding `files` (records with entries) after the store's first n_before events."""
    first = n_before
    for f in files:
        f["first_index"], first = first, first + f["entries"]
    arrays = array_specs(settings)
    return {
        "plan_id": uuid.uuid4().hex,
        "action": action,
        "command": command,
        "request": request,
        "n_before": n_before,
        "n_events": first,
        "first_unit": n_before // settings.shard_events,
        "chunk_events": settings.chunk_events,
        "shard_events": settings.shard_events,
        "read_events": read_events,
        "codec": settings.codec,
        "codec_profile": get_profile(settings.codec).to_dict(),
        "keep_raw": settings.keep_raw,
        "raw_arrays": dict(fmt.RAW_ARRAYS) if settings.keep_raw else {},
        "schemes": settings.schemes,
        "write_schemes": list(settings.schemes),
        "columns": settings.columns,
        "column_arrays": settings.column_arrays,
        "write_arrays": arrays,
        "all_arrays": arrays,
        "files": files,
        "skipped": skipped,
        "input": {
            "tree": request.get("tree", "tree"),
            "npho_branch": request.get("npho_branch") or "npho (else relative_npho)",
            "time_branch": request.get("time_branch", "relative_time"),
        },
        "val_fraction": settings.val_fraction,
    }


def renormalize_plan(
    previous: dict[str, Any], scheme: Scheme, request: dict[str, Any], command: str
) -> dict[str, Any]:
    """A plan writing one more scheme's tensor from the store's raw arrays."""
    settings = Settings.of_store(previous)
    settings.schemes[scheme.id] = scheme_entry(scheme)
    plan = make_plan(
        "renormalize", request, command, settings, previous["n_events"], [], [],
        previous["chunk_events"],
    )  # fmt: skip
    plan["first_unit"] = 0
    plan["input"] = previous["input"]
    plan["write_schemes"] = [scheme.id]
    array = settings.schemes[scheme.id]["array"]
    plan["write_arrays"] = [a for a in plan["all_arrays"] if a["path"] == array]
    return plan


def start_action(root: Path, plan: dict[str, Any], previous: dict[str, Any] | None) -> None:
    """Marker off, plan on, array metadata in place: from here on the action is resumable.

    A new store gets its arrays before its plan, so a plan on disk always has its arrays (the
    parts of `xec ingest --part` start units as soon as they read it; a crash before the plan
    leaves a store with no plan, which the next run plans again). A finished store gets the
    plan first: once its marker is gone, the plan is what makes the action resumable."""
    (root / fmt.COMPLETE_FILE).unlink(missing_ok=True)
    if previous is None:  # a bare root group; the metadata is added by finalize
        group = {"zarr_format": 3, "node_type": "group", "attributes": {}}
        fmt.atomic_write_bytes(root / "zarr.json", json.dumps(group).encode())
    fmt.write_meta_node(root)  # also upgrades a format-1 store that is appended to
    if previous is not None:
        _write_plan(root, plan)
    profile = get_profile(plan["codec"])
    for d in plan["write_arrays"]:
        if plan["action"] == "append":
            resize_array(root, d["path"], plan["n_events"])
        else:
            spec = ArraySpec(d["path"], tuple(d["tail"]), d["dtype"])
            n, ce, se = plan["n_events"], plan["chunk_events"], plan["shard_events"]
            create_array(root, spec, n, ce, se, profile)
    if previous is None:
        _write_plan(root, plan)


def _write_plan(root: Path, plan: dict[str, Any]) -> None:
    fmt.atomic_write_bytes(root / fmt.PLAN_FILE, json.dumps(plan).encode(), fsync=True)


def roll_back(root: Path, plan: dict[str, Any], previous: dict[str, Any]) -> None:
    """Undo a failed append or renormalize: the store returns to its previous complete state.

    The metadata of the previous state is still in place (finalize never ran), so shrinking
    the arrays back (append) or dropping the new tensor (renormalize) and writing the marker
    again restores it; events before n_before were never changed (a rewritten tail shard holds
    the same codes for them)."""
    if plan["action"] == "append":
        for d in plan["write_arrays"]:
            resize_array(root, d["path"], previous["n_events"])
    elif plan["action"] == "renormalize":
        for sid in plan["write_schemes"]:
            shutil.rmtree(root / plan["schemes"][sid]["array"], ignore_errors=True)
    write_complete(root, previous)
    (root / fmt.PLAN_FILE).unlink(missing_ok=True)


def read_plan(root: Path) -> dict[str, Any] | None:
    """The pending plan of a store, if any."""
    try:
        plan: dict[str, Any] = json.loads((root / fmt.PLAN_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return plan
