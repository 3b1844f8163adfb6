"""Running a planned store action (ingest, append, renormalize): its units (all of them, or
one part's, xecdata.store.parts), the inputs' checksums, and the completion.

The main process only hands out work: the units and the sha256 of the input files run in the
worker processes (xecdata.store.runner); what stays here is per unit or per file (progress,
markers), plus the finalize step (per-unit statistics merges, metadata).
"""

from __future__ import annotations

import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xecdata.errors import XecError
from xecdata.store import format as fmt
from xecdata.store.finalize import finalize
from xecdata.store.metadata import read_metadata
from xecdata.store.parts import (
    claim_completion,
    collect_hashes,
    drop_claims,
    owner,
    part_files,
    part_units,
    units_left,
)
from xecdata.store.plan import roll_back
from xecdata.store.runner import run_units


class IngestError(XecError):
    """An ingest/renormalize request that cannot proceed; the message says how to fix it."""


@dataclass
class IngestResult:
    """Summary of one action (or of one part of it)."""

    store: str
    action: str
    n_events: int
    events_written: int
    units_run: int
    units_resumed: int
    workers: int
    seconds: float  # the whole action
    units_seconds: float  # of which running the units
    peak_rss_mb: float
    skipped: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    complete: bool = True  # False: a part finished, other parts' units are still to run


def execute(
    root: Path,
    plan: dict[str, Any],
    pool: Executor | None,
    nworkers: int,
    progress: bool,
    t0: float,
    part: tuple[int, int] | None = None,
) -> IngestResult:
    """Run the plan's units (or part K/N's) and hash its inputs, then complete the store when
    no unit is left (for a part: if it is the one that claims the completion)."""
    if part is None:  # no other process writes the store: interrupted writes can go
        fmt.remove_temporaries(root)
    previous = read_metadata(root) if plan["action"] != "ingest" else None
    try:
        t_units = time.perf_counter()
        units, files = part_units(plan, part), part_files(plan, part)
        report = run_units(root, plan, pool, progress, units, files)
        t_units = time.perf_counter() - t_units
    except Exception as exc:  # Ctrl-C and kill leave the action resumable instead
        raise failed(root, plan, previous, exc) from exc
    result = IngestResult(
        store=str(root),
        action=plan["action"],
        n_events=plan["n_events"],
        events_written=report["events"],
        units_run=report["run"],
        units_resumed=report["resumed"],
        workers=nworkers,
        seconds=0.0,
        units_seconds=t_units,
        peak_rss_mb=report["peak_rss_mb"],
        skipped=plan["skipped"],
        notes=sorted({f["note"] for f in plan["files"] if f["note"]}),
    )
    if part is not None:
        result.complete = _part_may_complete(root, plan, part, result)
    if result.complete:
        complete(root, plan, previous, pool)
    result.seconds = time.perf_counter() - t0
    return result


def _part_may_complete(
    root: Path, plan: dict[str, Any], part: tuple[int, int], result: IngestResult
) -> bool:
    """After part K/N: True if it is to complete the store; else a note says who does."""
    left = units_left(root, plan)
    k, n = part
    if left:
        parts = sorted({owner(plan, u, n) for u in left})
        result.notes.append(
            f"part {k}/{n} is done; {len(left)} units of parts {parts} are still to run. The "
            "last part to finish completes the store (or, once all are done, the same command "
            "with --finalize instead of --part)"
        )
        return False
    if not claim_completion(root, plan):
        result.notes.append(f"part {k}/{n} is done; another part is completing the store")
        return False
    return True


def complete(
    root: Path, plan: dict[str, Any], previous: dict[str, Any] | None, pool: Executor | None
) -> dict[str, Any]:
    """Checksums of every input (recorded by the workers), then statistics (merged in the
    pool's workers), metadata and the completion marker (xecdata.store.finalize)."""
    collect_hashes(root, plan)
    meta = finalize(root, plan, previous, pool)
    fmt.remove_temporaries(root)  # every unit is done: what is left is from killed runs
    drop_claims(root)
    return meta


def finalize_parts(
    root: Path, plan: dict[str, Any], pool: Executor | None, nworkers: int, t0: float
) -> IngestResult:
    """`--finalize`: complete a store whose parts have all run (whatever a claim says)."""
    left = units_left(root, plan)
    if left:
        raise IngestError(
            f"store {root}: units {_ranges(left)} are not done yet; run the parts that own them "
            "(or the same command without --part, which runs whatever is left) before "
            "--finalize"
        )
    complete(root, plan, None, pool)
    return IngestResult(str(root), plan["action"], plan["n_events"], 0, 0,
                        len(list(part_units(plan, None))), nworkers,
                        time.perf_counter() - t0, 0.0, 0.0, plan["skipped"])  # fmt: skip


def _ranges(units: list[int]) -> str:
    """[1, 2, 3, 7] -> '1-3, 7'."""
    out, start = [], units[0]
    for a, b in zip(units, [*units[1:], None], strict=True):
        if b != a + 1:
            out.append(f"{start}-{a}" if a > start else str(a))
            start = b if b is not None else start
    return ", ".join(out)


def failed(
    root: Path, plan: dict[str, Any], previous: dict[str, Any] | None, exc: Exception
) -> IngestError:
    """The error of a failed action; a failed append/renormalize is rolled back first."""
    if previous is not None:
        roll_back(root, plan, previous)
        return IngestError(
            f"{exc}\n{plan['action']} failed: store {root} was rolled back to its previous "
            f"{previous['n_events']} events and is complete"
        )
    return IngestError(
        f"{exc}\nstore {root} is left incomplete: fix or remove that input, delete the store "
        "and ingest again"
    )
