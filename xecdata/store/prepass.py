"""The ingestion pre-pass: check every input file before any event is written.

Per file, in parallel: structure (`rootio.inspect_file`: tree, branches, shapes, entries),
content (`rootio.scan_file`: truth NaN/Inf, jagged sensor lengths), fingerprint (size + sha256
of the first and last MiB). Then, in input order: the same branch set in every file, no file
already in the store or repeated (by fingerprint) unless allowed. The first problem stops the
run with an error naming the file and the fix, or, with --skip-bad, is recorded with its reason
and the file is left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tqdm import tqdm

from xecdata.rootio import InputError, fingerprint, inspect_file, open_tree, scan_file


def check_one(path: str, tree: str, npho_branch: str | None, time_branch: str) -> dict[str, Any]:
    """{'record': plan record} or {'error': message} for one file (runs in a worker)."""
    try:
        t = open_tree(path, tree)
        info = inspect_file(path, tree, npho_branch, time_branch, t)
        scan_file(info, tree=t)
        t.file.close()
        record = asdict(info)
        record.pop("basket_starts")
        record["fingerprint"] = fingerprint(path)
        record["sha256"] = None  # computed while the units run (xecdata.ingest)
        return {"record": record}
    except InputError as exc:
        return {"error": str(exc)}
    except Exception as exc:  # uproot/awkward failures on damaged files
        return {
            "error": f"{path}: cannot be read ({type(exc).__name__}: {exc}). Remove it "
            "from the inputs or pass --skip-bad"
        }


def _signature(columns: Any) -> dict[str, tuple[str, str, tuple[int, ...]]]:
    """name -> (kind, dtype, shape) of a column list (plan records) or a column map."""
    if isinstance(columns, dict):
        return {n: (c["kind"], c["dtype"], tuple(c["shape"])) for n, c in columns.items()}
    return {c["name"]: (c["kind"], c["dtype"], tuple(c["shape"])) for c in columns}


def _mismatch(path: str, have: dict[str, Any], ref: dict[str, Any]) -> str | None:
    if have == ref:
        return None
    missing, extra = sorted(set(ref) - set(have)), sorted(set(have) - set(ref))
    differ = sorted(n for n in set(ref) & set(have) if ref[n] != have[n])
    return (
        f"{path}: its truth/reco/id branches differ from the other inputs (missing {missing}, "
        f"extra {extra}, other type or shape {differ}); all files of one store must carry the "
        "same set. Ingest such files into a separate store, or pass --skip-bad"
    )


def check_files(
    files: Sequence[str | Path],
    request: dict[str, Any],
    known: set[str],
    reference: dict[str, Any] | None,
    pool: Executor | None,
    progress: bool,
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """(records of the files to ingest, skipped files with reasons); raises InputError-like
    messages as ValueError when skipping is not allowed."""
    args = [
        (str(p), request["tree"], request["npho_branch"], request["time_branch"]) for p in files
    ]
    if pool is None:
        results = [check_one(*a) for a in tqdm(args, desc="check inputs", disable=not progress)]
    else:
        futures = [pool.submit(check_one, *a) for a in args]
        results = [f.result() for f in tqdm(futures, desc="check inputs", disable=not progress)]
    checked: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    ref = _signature(reference) if reference is not None else None
    seen = dict.fromkeys(known, "the store")
    for (path, *_), res in zip(args, results, strict=True):
        reason = res.get("error")
        if reason is None:
            rec = res["record"]
            ref = ref if ref is not None else _signature(rec["columns"])
            reason = _mismatch(path, _signature(rec["columns"]), ref)
            if reason is None and rec["fingerprint"] in seen and not request["allow_duplicate"]:
                reason = (
                    f"{path}: same content (checksum) as {seen[rec['fingerprint']]}; pass "
                    "--allow-duplicate to ingest it again"
                )
        if reason is None:
            seen[rec["fingerprint"]] = path
            checked.append(rec)
        elif request["skip_bad"]:
            skipped.append({"path": path, "reason": reason})
        else:
            raise ValueError(reason)
    return checked, skipped


def column_layout(columns: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, int]]:
    """Pack columns by storage dtype: ({name: record}, {array path: width})."""
    widths: dict[str, int] = {}
    out: dict[str, Any] = {}
    for c in columns:
        kind = c["dtype"]
        group = (
            "float32" if kind == "float32" else "float64" if kind.startswith("float") else "int64"
        )
        path = f"columns/{group}"
        width = 1
        for s in c["shape"]:
            width *= s
        start = widths.get(path, 0)
        widths[path] = start + width
        out[c["name"]] = {
            "kind": c["kind"],
            "dtype": c["dtype"],
            "shape": list(c["shape"]),
            "array": path,
            "start": start,
            "stop": start + width,
        }
    return out, widths
