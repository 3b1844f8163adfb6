"""`xec ingest` / `xec renormalize`: ROOT trees -> a normalized, versioned Zarr tensor store.

Flow of every action (ingest, append, renormalize):

1. Check the request (schemes exist, options valid), take the store's lock file.
2. Plan. Ingest/append: a parallel pre-pass over the input files (structure, truth NaN/Inf,
   jagged lengths, a fingerprint for duplicates) fixes each file's store range from the entry
   counts up front; bad files stop the run with an error naming file/tree/branch/entry, or
   are recorded and skipped with --skip-bad. The plan (`_xec/plan.json`, with a plan id) is
   written before any array data; an append or renormalize first removes the completion
   marker.
3. Units (xecdata.store.units), in parallel processes (`--workers`, forkserver/spawn-safe):
   one unit = one shard of every array written; finished units are marked and skipped when
   the same command is run again, unfinished ones are redone from scratch. Output bytes depend
   only on the plan, never on the worker count or timing.
4. Finalize (xecdata.store.finalize): statistics, split, metadata, completion marker last.

Memory per worker is bounded by `read_events` entries (default 512, read one step ahead by a
thread so that decompression overlaps with encoding) whatever the file sizes.
"""

from __future__ import annotations

import errno
import fcntl
import glob
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from xecdata.remote import is_url
from xecdata.rootio import InputError, file_stat, fingerprint
from xecdata.schemes import Scheme, SchemeError, get_scheme, load_scheme_file
from xecdata.store import format as fmt
from xecdata.store.actions import IngestError, IngestResult, execute, finalize_parts
from xecdata.store.codecs import DEFAULT_PROFILE, get_profile
from xecdata.store.metadata import fraction_parts, is_complete, read_metadata
from xecdata.store.parts import plan_id_of
from xecdata.store.plan import (
    Settings,
    make_plan,
    read_plan,
    renormalize_plan,
    scheme_entry,
    start_action,
)
from xecdata.store.prepass import check_files, column_layout
from xecdata.store.runner import worker_pool

READ_EVENTS = 512
DEFAULT_SCHEMES = ("new",)
DEFAULT_VAL_FRACTION = 0.1


def resolve_inputs(inputs: Sequence[str | os.PathLike[str]]) -> list[str | Path]:
    """Files, folders (every *.root below, sorted) and globs -> absolute file paths in order;
    URLs (root://, https://, s3://, ...: xecdata.remote) are kept as given, one file each."""
    out: list[str | Path] = []
    for item in inputs:
        text = str(item) if not isinstance(item, str) else item
        if is_url(text):
            out += [text] if text not in out else []
            continue
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
def store_lock(root: Path, shared: bool = False) -> Iterator[None]:
    """Lock of a store for the duration of one action: exclusive, or shared among the parts
    of one ingest (`--part`), which still excludes every exclusive action. A shared file
    system without locks lets parts run unlocked (they coordinate through the plan)."""
    (root / fmt.META_DIR).mkdir(parents=True, exist_ok=True)
    with open(root / fmt.META_DIR / "lock", "a") as f:
        try:
            fcntl.flock(f, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IngestError(f"store {root} is being written by another xec process") from None
        except OSError as exc:
            if not shared or exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                raise
        yield


def default_workers(workers: int | None) -> int:
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
    part: tuple[int, int] | None = None,
    finalize: bool = False,
) -> IngestResult:
    """Ingest ROOT files into the store at `output`: create it, resume an interrupted run of
    the same request, or (append=True) add files to a finished store.

    part=(K, N): run only the K-th of N disjoint shares of the units, so that N processes
    (e.g. on N nodes) fill one store; the last to finish completes it (xecdata.store.parts).
    finalize=True: complete a store whose parts have all run."""
    root = Path(output)
    request: dict[str, Any] = {
        "action": "append" if append else "ingest",
        "inputs": [str(p) for p in resolve_inputs(inputs)],
        "tree": tree,
        "npho_branch": npho_branch,
        "time_branch": time_branch,
        "skip_bad": skip_bad,
        "allow_duplicate": allow_duplicate,
    }
    store_options = {
        "schemes": list(schemes),
        "codec": codec,
        "val_fraction": val_fraction,
        "keep_raw": keep_raw,
        "chunk_events": chunk_events,
        "shard_chunks": shard_chunks,
    }
    if not append:
        request |= _new_store_options(store_options)
    elif part is not None or finalize:
        raise IngestError("--part and --finalize fill new stores; run --append on one node")
    nworkers = default_workers(workers)
    parts = part is not None  # other parts may be starting this store right now
    if root.exists() and not (root / "zarr.json").exists() and not _nothing_written(root, parts):
        raise IngestError(f"{root} exists and is not an xec store; choose another -o")
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        with store_lock(root, shared=part is not None), worker_pool(nworkers) as pool:
            if finalize:
                return finalize_parts(root, _pending(root, request), pool, nworkers, t0)
            plan = _resume_or_plan(
                root, request, store_options, read_events, pool, progress, command, part
            )
            return execute(root, plan, pool, nworkers, progress, t0, part)
    except BaseException:
        if created and part is None and _nothing_written(root):  # refused: leave no folder
            shutil.rmtree(root, ignore_errors=True)
        raise


def _pending(root: Path, request: dict[str, Any]) -> dict[str, Any]:
    """The unfinished plan of this very request (what --finalize completes)."""
    plan = read_plan(root)
    if plan is None or is_complete(root, read_metadata(root)):
        raise IngestError(f"store {root} has no unfinished ingest to finalize")
    if plan["request"] != request:
        raise IngestError(
            f"store {root} holds an unfinished `{plan['command'] or plan['action']}`; "
            "--finalize needs exactly that command's inputs and options"
        )
    return plan


def _nothing_written(root: Path, starting: bool = False) -> bool:
    """True for an empty folder, or one holding only the lock file of an attempt that
    stopped before writing anything (e.g. refused or killed in the pre-pass); starting: also
    while another part is writing the store's first file."""
    entries = list(root.iterdir())
    if not entries:
        return True
    meta = root / fmt.META_DIR
    if starting:
        return all(p == meta or p.name.startswith(".zarr.json.tmp-") for p in entries)
    return entries == [meta] and [p.name for p in meta.iterdir()] == ["lock"]


def _new_store_options(o: dict[str, Any]) -> dict[str, Any]:
    """Validated settings of a new store, as recorded in the request."""
    schemes = resolve_schemes(o["schemes"] or DEFAULT_SCHEMES)
    codec = o["codec"] or DEFAULT_PROFILE
    vf = DEFAULT_VAL_FRACTION if o["val_fraction"] is None else o["val_fraction"]
    try:
        get_profile(codec)
        fraction_parts(vf)
    except ValueError as exc:
        raise IngestError(str(exc)) from None
    if o["chunk_events"] < 1 or o["shard_chunks"] < 1:
        raise IngestError("--chunk-events and --shard-chunks must be >= 1")
    return {
        "schemes": [s.id for s in schemes],
        "codec": codec,
        "val_fraction": vf,
        "keep_raw": o["keep_raw"],
        "chunk_events": o["chunk_events"],
        "shard_chunks": o["shard_chunks"],
    }


def _resume_or_plan(
    root: Path,
    request: dict[str, Any],
    options: dict[str, Any],
    read_events: int,
    pool: Executor | None,
    progress: bool,
    command: str,
    part: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """The pending plan of the same request, or a new plan after the pre-pass (for a part,
    with an id from its content: parts that plan at once make the very same plan)."""
    previous = read_metadata(root)
    complete = is_complete(root, previous)
    pending = _same_request(root, request, read_plan(root), complete)
    if pending is not None:
        return pending
    if request["action"] == "ingest":
        if complete:
            raise IngestError(f"store {root} is already complete; pass --append to add files")
        if previous is not None:
            raise IngestError(f"store {root} is in an unknown state; delete it and ingest again")
    elif not complete or previous is None:
        raise IngestError(f"--append needs a finished store; {root} is not one (ingest first)")
    else:
        _refuse_append_options(root, previous, options)
    files, skipped = _checked_inputs(request, previous, pool, progress)
    settings = Settings.of_store(previous) if previous else _settings(request, files)
    n_before = previous["n_events"] if previous else 0
    plan = make_plan(
        request["action"], request, command, settings, n_before, files, skipped, read_events
    )
    if part is not None:
        plan["plan_id"] = plan_id_of(plan)
        pending = _same_request(root, request, read_plan(root), is_complete(root, previous))
        if pending is not None:  # another part planned meanwhile
            return pending
    start_action(root, plan, previous)
    return plan


def _same_request(
    root: Path, request: dict[str, Any], pending: dict[str, Any] | None, complete: bool
) -> dict[str, Any] | None:
    """The pending plan if it is this request's (to resume); refused if another request's."""
    if pending is None or complete:
        return None
    if pending["request"] != request:
        raise IngestError(
            f"store {root} holds an unfinished `{pending['command'] or pending['action']}`; "
            "re-run exactly that command to resume it, or write to another -o"
        )
    _check_unchanged(pending)
    return pending


def _checked_inputs(
    request: dict[str, Any],
    previous: dict[str, Any] | None,
    pool: Executor | None,
    progress: bool,
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The pre-pass: (records of the files to ingest, skipped files with reasons)."""
    known = {s["fingerprint"] for s in previous["sources"]} if previous else set()
    reference = previous["columns"] if previous else None
    try:
        paths = [p if is_url(p) else Path(p) for p in request["inputs"]]
        files, skipped = check_files(paths, request, known, reference, pool, progress)
    except ValueError as exc:
        raise IngestError(str(exc)) from None
    if not files:
        raise IngestError(
            "no input file can be ingested: " + "; ".join(s["reason"] for s in skipped)
        )
    return files, skipped


def _settings(request: dict[str, Any], files: list[dict[str, Any]]) -> Settings:
    columns, column_arrays = column_layout(files[0]["columns"])
    return Settings(
        schemes={s.id: scheme_entry(s) for s in resolve_schemes(request["schemes"])},
        chunk_events=request["chunk_events"],
        shard_events=request["chunk_events"] * request["shard_chunks"],
        codec=request["codec"],
        keep_raw=request["keep_raw"],
        val_fraction=request["val_fraction"],
        columns=columns,
        column_arrays=column_arrays,
    )


def _refuse_append_options(root: Path, previous: dict[str, Any], options: dict[str, Any]) -> None:
    """--append keeps the store's settings: refuse explicitly different ones."""
    have = Settings.of_store(previous)
    asked = {
        "schemes": sorted(s.id for s in resolve_schemes(options["schemes"]))
        if options["schemes"]
        else None,
        "codec": options["codec"],
        "val_fraction": options["val_fraction"],
        "keep_raw": options["keep_raw"] or None,
    }
    current = {
        "schemes": sorted(have.schemes),
        "codec": have.codec,
        "val_fraction": have.val_fraction,
        "keep_raw": have.keep_raw,
    }
    bad = [k for k, v in asked.items() if v is not None and v != current[k]]
    if bad:
        raise IngestError(
            f"--append keeps the settings of store {root} "
            f"({', '.join(f'{k}={current[k]}' for k in bad)}); drop the differing options; "
            "add schemes with `xec renormalize`"
        )


def _check_unchanged(plan: dict[str, Any]) -> None:
    """Resuming needs the very files the plan was made from: same size and modification time
    (for a URL also the same fingerprint: a server may give no time)."""
    for f in plan["files"]:
        try:
            now = file_stat(f["path"])
        except (FileNotFoundError, InputError) as exc:
            why = f" ({exc})" if isinstance(exc, InputError) else ""
            raise IngestError(
                f"input {f['path']} of the interrupted run is gone{why}; restore it to resume"
            ) from None
        same = now == (f["size"], f["mtime_ns"])
        if same and is_url(f["path"]):
            same = fingerprint(f["path"]) == f["fingerprint"]
        if not same:
            raise IngestError(
                f"input {f['path']} changed since the interrupted run (size, mtime or "
                "content); restore it, or delete the store and ingest again"
            )


def renormalize(
    store: str | os.PathLike[str],
    scheme: str,
    *,
    workers: int | None = None,
    progress: bool = True,
    command: str = "",
) -> IngestResult:
    """Add scheme `scheme` to a finished store made with --keep-raw, from its raw arrays;
    re-running the same call resumes an interrupted one."""
    root = Path(store)
    (s,) = resolve_schemes([scheme])
    request = {"action": "renormalize", "scheme": s.id, "hash": s.hash}
    nworkers = default_workers(workers)
    t0 = time.perf_counter()
    if not (root / "zarr.json").exists():
        raise IngestError(f"no xec store at {root}")
    with store_lock(root), worker_pool(nworkers) as pool:
        previous = read_metadata(root)
        pending = read_plan(root)
        if pending is not None and not is_complete(root, previous):
            if pending["request"] != request:
                raise IngestError(
                    f"store {root} holds an unfinished `{pending['command']}`; re-run it first"
                )
            return execute(root, pending, pool, nworkers, progress, t0)
        _check_renormalizable(root, previous, s)
        assert previous is not None
        plan = renormalize_plan(previous, s, request, command)
        start_action(root, plan, previous)
        return execute(root, plan, pool, nworkers, progress, t0)


def _check_renormalizable(root: Path, previous: dict[str, Any] | None, s: Scheme) -> None:
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


__all__ = ["IngestError", "IngestResult", "InputError", "ingest", "renormalize", "resolve_inputs"]
