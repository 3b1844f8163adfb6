"""`xec ingest` / `xec renormalize`: ROOT trees -> a normalized, versioned Zarr tensor store.

Flow of every action (ingest, append, renormalize):

1. Check the request (schemes exist, options valid), take the store's lock file.
2. Plan. Ingest/append: a parallel pre-pass over the input files (structure, truth NaN/Inf,
   jagged lengths, a fingerprint for duplicates) fixes each file's store range from the entry counts up front; bad
   files stop the run with an error naming file/tree/branch/entry, or are recorded and
   skipped with --skip-bad. The plan (`_xec/plan.json`, with a plan id) is written before any
   array data; an append or renormalize first removes the completion marker.
3. Units (xecdata.store.units), in parallel processes (`--workers`, forkserver/spawn-safe):
   one unit = one shard of every array written; finished units are marked and skipped when
   the same command is run again, unfinished ones are redone from scratch. Output bytes depend
   only on the plan, never on the worker count or timing.
4. Finalize (xecdata.store.finalize): statistics, split, metadata, completion marker last.

Memory per worker is bounded by `read_events` entries (default 1024) whatever the file sizes.
"""

from __future__ import annotations

import fcntl
import glob
import json
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from xecdata.rootio import InputError, sha256_file
from xecdata.schemes import Scheme, SchemeError, get_scheme, load_scheme_file
from xecdata.store import format as fmt
from xecdata.store.codecs import DEFAULT_PROFILE, get_profile
from xecdata.store.encode import storage_dtype
from xecdata.store.finalize import finalize
from xecdata.store.metadata import fraction_parts, is_complete, read_metadata
from xecdata.store.precision import precision_summary, scheme_codes
from xecdata.store.prepass import check_files, column_layout
from xecdata.store.runner import run_units, worker_pool
from xecdata.store.writer import ArraySpec, create_array, resize_array

READ_EVENTS = 512
DEFAULT_SCHEMES = ("new",)


class IngestError(Exception):
    """An ingest/renormalize request that cannot proceed; the message says how to fix it."""


@dataclass
class IngestResult:
    """Summary of one action."""

    store: str
    action: str
    n_events: int
    events_written: int
    units_run: int
    units_resumed: int
    workers: int
    seconds: float
    peak_rss_mb: float
    skipped: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def resolve_inputs(inputs: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Files, folders (every *.root below, sorted) and globs -> absolute file paths in order."""
    out: list[Path] = []
    for item in inputs:
        text = str(item)
        if Path(text).is_dir():
            found = sorted(Path(text).rglob("*.root"))
        elif any(ch in text for ch in "*?["):
            found = sorted(Path(p) for p in glob.glob(text, recursive=True))
        else:
            found = [Path(text)]
        if not found:
            raise IngestError(f"input {text!r} matches no ROOT file; check the path or pattern")
        out += [p.resolve() for p in found if p.resolve() not in out]
    return out


def resolve_schemes(ids: Sequence[str]) -> list[Scheme]:
    """Scheme ids (or YAML/JSON scheme files) -> registered schemes, in order, unique."""
    schemes: list[Scheme] = []
    for sid in ids:
        try:
            is_file = sid.endswith((".yaml", ".yml", ".json")) and Path(sid).is_file()
            s = load_scheme_file(sid) if is_file else get_scheme(sid)
        except SchemeError as exc:
            raise IngestError(f"--scheme {sid}: {exc}") from exc
        if s.id not in [x.id for x in schemes]:
            schemes.append(s)
    return schemes


@contextmanager
def store_lock(root: Path) -> Iterator[None]:
    """Exclusive lock of a store for the duration of one action."""
    (root / fmt.META_DIR).mkdir(parents=True, exist_ok=True)
    with open(root / fmt.META_DIR / "lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IngestError(f"store {root} is being written by another xec process") from None
        yield


def _default_workers(workers: int | None) -> int:
    """--workers, defaulting to every core this process may use."""
    if workers is not None and workers < 1:
        raise IngestError(f"--workers must be >= 1, got {workers}")
    if workers:
        return workers
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def ingest(
    inputs: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    schemes: Sequence[str] = (),
    tree: str = "tree",
    npho_branch: str | None = None,
    time_branch: str = "relative_time",
    codec: str | None = None,
    workers: int | None = None,
    val_fraction: float | None = None,
    keep_raw: bool = False,
    append: bool = False,
    skip_bad: bool = False,
    allow_duplicate: bool = False,
    chunk_events: int = fmt.CHUNK_EVENTS,
    shard_chunks: int = fmt.SHARD_CHUNKS,
    read_events: int = READ_EVENTS,
    progress: bool = True,
    command: str = "",
) -> IngestResult:
    """Ingest ROOT files into the store at `output` (create, resume, or --append)."""
    root = Path(output)
    files = resolve_inputs(inputs)
    request: dict[str, Any] = {
        "action": "append" if append else "ingest",
        "inputs": [str(p) for p in files],
        "tree": tree,
        "npho_branch": npho_branch,
        "time_branch": time_branch,
        "skip_bad": skip_bad,
        "allow_duplicate": allow_duplicate,
    }
    if not append:
        sch = resolve_schemes(schemes or DEFAULT_SCHEMES)
        get_profile(codec or DEFAULT_PROFILE)
        fraction_parts(0.1 if val_fraction is None else val_fraction)
        if chunk_events < 1 or shard_chunks < 1:
            raise IngestError("--chunk-events and --shard-chunks must be >= 1")
        request |= {
            "schemes": [s.id for s in sch],
            "codec": codec or DEFAULT_PROFILE,
            "val_fraction": 0.1 if val_fraction is None else val_fraction,
            "keep_raw": keep_raw,
            "chunk_events": chunk_events,
            "shard_chunks": shard_chunks,
        }
    nworkers = _default_workers(workers)
    if root.exists() and not (root / "zarr.json").exists() and any(root.iterdir()):
        raise IngestError(f"{root} exists and is not an xec store; choose another -o")
    root.mkdir(parents=True, exist_ok=True)
    with store_lock(root), worker_pool(nworkers) as pool:
        plan = _resume_or_plan(
            root,
            request,
            files,
            read_events,
            pool,
            progress,
            command,
            (schemes, codec, val_fraction, keep_raw),
        )
        return _execute(root, plan, pool, nworkers, progress)


def _resume_or_plan(
    root: Path,
    request: dict[str, Any],
    files: list[Path],
    read_events: int,
    pool: Any,
    progress: bool,
    command: str,
    explicit: tuple[Any, ...],
) -> dict[str, Any]:
    previous = read_metadata(root)
    complete = is_complete(root, previous)
    pending = _read_plan(root)
    if pending is not None and not complete:
        if pending["request"] != request:
            raise IngestError(
                f"store {root} holds an unfinished `{pending['command'] or pending['action']}`; "
                "re-run exactly that command to resume it, or write to another -o"
            )
        _check_unchanged(pending)
        return pending
    if complete and request["action"] == "ingest":
        raise IngestError(f"store {root} is already complete; pass --append to add files to it")
    if request["action"] == "append":
        if not complete or previous is None:
            raise IngestError(f"--append needs a finished store; {root} is not one (ingest first)")
        _refuse_append_options(root, previous, explicit)
    elif previous is not None:
        raise IngestError(f"store {root} is in an unknown state; delete it and ingest again")
    return _new_plan(root, request, files, previous, read_events, pool, progress, command)


def _refuse_append_options(root: Path, previous: dict[str, Any], explicit: tuple[Any, ...]) -> None:
    schemes, codec, val_fraction, keep_raw = explicit
    have = {
        "schemes": sorted(previous["schemes"]),
        "codec": previous["codec"]["name"],
        "val_fraction": previous["split"]["val_fraction"],
        "keep_raw": previous["raw"]["kept"],
    }
    asked = {
        "schemes": sorted(s.id for s in resolve_schemes(schemes)) if schemes else None,
        "codec": codec,
        "val_fraction": val_fraction,
        "keep_raw": keep_raw or None,
    }
    bad = [k for k, v in asked.items() if v is not None and v != have[k]]
    if bad:
        raise IngestError(
            f"--append keeps the settings of store {root} ({', '.join(f'{k}={have[k]}' for k in bad)}); "
            f"drop the differing options ({', '.join(bad)}); add schemes with `xec renormalize`"
        )


def _read_plan(root: Path) -> dict[str, Any] | None:
    try:
        plan: dict[str, Any] = json.loads((root / fmt.PLAN_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return plan


def _check_unchanged(plan: dict[str, Any]) -> None:
    for f in plan["files"]:
        try:
            st = os.stat(f["path"])
        except FileNotFoundError:
            raise IngestError(
                f"input {f['path']} of the interrupted run is gone; restore it to resume"
            ) from None
        if (st.st_size, st.st_mtime_ns) != (f["size"], f["mtime_ns"]):
            raise IngestError(
                f"input {f['path']} changed since the interrupted run (size or mtime); restore "
                "it, or delete the store and ingest again"
            )


def _scheme_entry(s: Scheme) -> dict[str, Any]:
    codes = scheme_codes(s)
    return {
        "definition": s.to_dict(),
        "hash": s.hash,
        "array": fmt.sensors_array(s.id),
        "dtype": storage_dtype(codes),
        "precision": precision_summary(s, codes),
    }


def _new_plan(
    root: Path,
    request: dict[str, Any],
    files: list[Path],
    previous: dict[str, Any] | None,
    read_events: int,
    pool: Any,
    progress: bool,
    command: str,
) -> dict[str, Any]:
    known = {s["fingerprint"] for s in previous["sources"]} if previous else set()
    reference = previous["columns"] if previous else None
    try:
        checked, skipped = check_files(files, request, known, reference, pool, progress)
    except ValueError as exc:
        raise IngestError(str(exc)) from None
    if not checked:
        raise IngestError(
            "no input file could be ingested: " + "; ".join(s["reason"] for s in skipped)
        )
    columns, column_arrays = (
        column_layout(checked[0]["columns"])
        if previous is None
        else (previous["columns"], previous["column_arrays"])
    )
    n_before = previous["n_events"] if previous else 0
    first = n_before
    for f in checked:
        f["first_index"], first = first, first + f["entries"]
    if previous is None:
        schemes = {s.id: _scheme_entry(s) for s in resolve_schemes(request["schemes"])}
        ce, shard = request["chunk_events"], request["chunk_events"] * request["shard_chunks"]
        codec, keep_raw, vf = request["codec"], request["keep_raw"], request["val_fraction"]
    else:
        schemes = {
            sid: {k: e[k] for k in ("definition", "hash", "array", "dtype", "precision")}
            for sid, e in previous["schemes"].items()
        }
        ce, shard = previous["chunk_events"], previous["shard_events"]
        codec, keep_raw, vf = (
            previous["codec"]["name"],
            previous["raw"]["kept"],
            previous["split"]["val_fraction"],
        )
    arrays = _array_specs(schemes, keep_raw, column_arrays)
    plan = {
        "plan_id": uuid.uuid4().hex,
        "action": request["action"],
        "command": command,
        "request": request,
        "n_before": n_before,
        "n_events": first,
        "first_unit": n_before // shard,
        "chunk_events": ce,
        "shard_events": shard,
        "read_events": read_events,
        "codec": codec,
        "codec_profile": get_profile(codec).to_dict(),
        "keep_raw": keep_raw,
        "raw_arrays": dict(fmt.RAW_ARRAYS) if keep_raw else {},
        "schemes": schemes,
        "write_schemes": list(schemes),
        "columns": columns,
        "column_arrays": column_arrays,
        "write_arrays": arrays,
        "all_arrays": arrays,
        "files": checked,
        "skipped": skipped,
        "input": {
            "tree": request["tree"],
            "npho_branch": request["npho_branch"] or "npho (else relative_npho)",
            "time_branch": request["time_branch"],
        },
        "val_fraction": vf,
    }
    _start_action(root, plan, previous)
    return plan


def _array_specs(
    schemes: dict[str, Any], keep_raw: bool, column_arrays: dict[str, int]
) -> list[dict[str, Any]]:
    specs = [ArraySpec(e["array"], (4760, 2), e["dtype"]) for e in schemes.values()]
    if keep_raw:
        specs += [ArraySpec(p, (4760,), "float32") for p in fmt.RAW_ARRAYS.values()]
    specs += [ArraySpec(p, (w,), p.rsplit("/", 1)[1]) for p, w in column_arrays.items()]
    return [asdict(s) for s in specs]


def _start_action(root: Path, plan: dict[str, Any], previous: dict[str, Any] | None) -> None:
    """Marker off, plan on, array metadata in place: from here on the action is resumable."""
    (root / fmt.COMPLETE_FILE).unlink(missing_ok=True)
    if previous is None:  # a bare root group; the metadata is added by finalize
        group = {"zarr_format": 3, "node_type": "group", "attributes": {}}
        fmt.atomic_write_bytes(root / "zarr.json", json.dumps(group).encode())
    fmt.atomic_write_bytes(root / fmt.PLAN_FILE, json.dumps(plan).encode(), fsync=True)
    profile = get_profile(plan["codec"])
    existing = {a["path"] for a in plan["all_arrays"]} if previous is not None else set()
    for d in plan["write_arrays"]:
        spec = ArraySpec(d["path"], tuple(d["tail"]), d["dtype"])
        if d["path"] in existing and plan["action"] == "append":
            resize_array(root, d["path"], plan["n_events"])
        else:
            create_array(
                root, spec, plan["n_events"], plan["chunk_events"], plan["shard_events"], profile
            )


def _execute(
    root: Path, plan: dict[str, Any], pool: Any, nworkers: int, progress: bool
) -> IngestResult:
    t0 = time.perf_counter()
    fmt.remove_temporaries(root)
    previous = read_metadata(root) if plan["action"] != "ingest" else None
    with ThreadPoolExecutor(2) as hashing:  # full checksums overlap with the units
        digests = [hashing.submit(sha256_file, f["path"]) for f in plan["files"]]
        report = run_units(root, plan, pool, progress)
        for f, digest in zip(plan["files"], digests, strict=True):
            f["sha256"] = digest.result()
    meta = finalize(root, plan, previous)
    notes = sorted({f["note"] for f in plan["files"] if f["note"]})
    return IngestResult(
        store=str(root),
        action=plan["action"],
        n_events=meta["n_events"],
        events_written=report["events"],
        units_run=report["run"],
        units_resumed=report["resumed"],
        workers=nworkers,
        seconds=time.perf_counter() - t0,
        peak_rss_mb=report["peak_rss_mb"],
        skipped=plan["skipped"],
        notes=notes,
    )


def renormalize(
    store: str | os.PathLike[str],
    scheme: str,
    *,
    workers: int | None = None,
    progress: bool = True,
    command: str = "",
) -> IngestResult:
    """Add scheme `scheme` to a store made with --keep-raw, from its raw arrays."""
    root = Path(store)
    (s,) = resolve_schemes([scheme])
    request = {"action": "renormalize", "scheme": s.id, "hash": s.hash}
    nworkers = _default_workers(workers)
    if not (root / "zarr.json").exists():
        raise IngestError(f"no xec store at {root}")
    with store_lock(root), worker_pool(nworkers) as pool:
        previous = read_metadata(root)
        pending = _read_plan(root)
        if pending is not None and not is_complete(root, previous):
            if pending["request"] != request:
                raise IngestError(
                    f"store {root} holds an unfinished `{pending['command']}`; re-run it first"
                )
            return _execute(root, pending, pool, nworkers, progress)
        if previous is None or not is_complete(root, previous):
            raise IngestError(f"store {root} is not complete; finish its ingestion first")
        if not previous["raw"]["kept"]:
            raise IngestError(
                f"store {root} keeps no raw arrays, so it cannot be renormalized; ingest the ROOT "
                f"files again with --keep-raw (or with --scheme {s.id})"
            )
        if s.id in previous["schemes"]:
            if previous["schemes"][s.id]["hash"] != s.hash:
                raise IngestError(f"store {root} already holds {s.id} with other parameters")
            raise IngestError(f"store {root} already holds scheme {s.id}; nothing to do")
        plan = _renormalize_plan(root, previous, s, request, command)
        return _execute(root, plan, pool, nworkers, progress)


def _renormalize_plan(
    root: Path, previous: dict[str, Any], s: Scheme, request: dict[str, Any], command: str
) -> dict[str, Any]:
    schemes = {
        sid: {k: e[k] for k in ("definition", "hash", "array", "dtype", "precision")}
        for sid, e in previous["schemes"].items()
    }
    schemes[s.id] = _scheme_entry(s)
    all_arrays = _array_specs(schemes, True, previous["column_arrays"])
    plan = {
        "plan_id": uuid.uuid4().hex,
        "action": "renormalize",
        "command": command,
        "request": request,
        "n_before": previous["n_events"],
        "n_events": previous["n_events"],
        "first_unit": 0,
        "chunk_events": previous["chunk_events"],
        "shard_events": previous["shard_events"],
        "read_events": previous["chunk_events"],
        "codec": previous["codec"]["name"],
        "codec_profile": previous["codec"],
        "keep_raw": True,
        "raw_arrays": previous["raw"]["arrays"],
        "schemes": schemes,
        "write_schemes": [s.id],
        "columns": previous["columns"],
        "column_arrays": previous["column_arrays"],
        "write_arrays": [a for a in all_arrays if a["path"] == schemes[s.id]["array"]],
        "all_arrays": all_arrays,
        "files": [],
        "skipped": [],
        "input": previous["input"],
        "val_fraction": previous["split"]["val_fraction"],
    }
    _start_action(root, plan, previous)
    return plan


__all__ = ["IngestError", "IngestResult", "InputError", "ingest", "renormalize", "resolve_inputs"]
