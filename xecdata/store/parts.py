"""One store filled by N processes (`xec ingest ... --part K/N`), e.g. on N cluster nodes sharing
a file system: same plan, disjoint work units, the last part to finish completes the store.

- The plan: the first part to find no plan runs the pre-pass and writes it; its id is a hash
  of its content (`plan_id_of`), so parts that plan at the same time write identical plans and
  array metadata (xecdata.store.writer.create_array never deletes shards). Later parts read it.
- Units: part K of N runs the K-th of N contiguous, balanced blocks of the plan's units, and
  hashes (sha256, for the provenance) the input files whose first event lies in its block,
  recording each digest in `_xec/hashes/f<i>.json`.
- Completion: a part that finds every unit marker in place claims the completion with an
  exclusive create of `_xec/complete.<plan id>.claim` (atomic on NFS and Lustre) and
  finalizes; the others stop there. `xec ingest ... --finalize` completes a store whose parts
  are all done (e.g. when the claiming part died), whatever the claim says.
The bytes depend only on the plan, so they equal a one-node ingest's, in any order of parts.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path
from typing import Any

from xecdata.rootio import sha256_file
from xecdata.store.format import META_DIR, atomic_write_bytes
from xecdata.store.units import unit_done

HASH_DIR = f"{META_DIR}/hashes"


def parse_part(text: str) -> tuple[int, int]:
    """'2/3' -> (2, 3); ValueError naming the form otherwise."""
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--part {text}: give K/N, e.g. 2/3 for the second of three") from None
    if not 1 <= k <= n:
        raise ValueError(f"--part {text}: need 1 <= K <= N")
    return k, n


def plan_id_of(plan: dict[str, Any]) -> str:
    """A plan's id from its content (all but the id and the command line)."""
    body = {k: v for k, v in plan.items() if k not in ("plan_id", "command")}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def all_units(plan: dict[str, Any]) -> range:
    """Every unit the plan writes."""
    return range(plan["first_unit"], -(-plan["n_events"] // plan["shard_events"]))


def part_units(plan: dict[str, Any], part: tuple[int, int] | None) -> list[int]:
    """The units of part (K, N): the K-th of N contiguous blocks of sizes differing by <= 1."""
    units = all_units(plan)
    if part is None:
        return list(units)
    k, n = part
    m = len(units)
    return list(units[(k - 1) * m // n : k * m // n])


def part_files(plan: dict[str, Any], part: tuple[int, int] | None) -> list[int]:
    """Indices of the plan's input files that part (K, N) hashes: those whose first event
    lies in one of its units (every file belongs to exactly one part)."""
    units = all_units(plan)
    mine = set(part_units(plan, part))
    out = []
    for i, f in enumerate(plan["files"]):
        unit = min(max(f["first_index"] // plan["shard_events"], units.start), units.stop - 1)
        if unit in mine:
            out.append(i)
    return out


def units_left(root: Path, plan: dict[str, Any]) -> list[int]:
    """Units of the plan without their marker."""
    return [k for k in all_units(plan) if not unit_done(root, plan, k)]


def owner(plan: dict[str, Any], unit: int, n_parts: int) -> int:
    """The part K (1-based) of N that runs `unit`."""
    units = all_units(plan)
    return (unit - units.start) * n_parts // len(units) + 1 if len(units) else 1


def claim_completion(root: Path, plan: dict[str, Any]) -> bool:
    """True for the one process that may finalize the plan (exclusive create of a claim)."""
    path = root / META_DIR / f"complete.{plan['plan_id']}.claim"
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))
    return True


def drop_claims(root: Path) -> None:
    """Remove completion claims (after finalizing, or to take over with --finalize)."""
    for claim in (root / META_DIR).glob("complete.*.claim"):
        claim.unlink(missing_ok=True)


def hash_input(root: str, plan_id: str, index: int, path: str) -> str:
    """sha256 of input file `index` of the plan, recorded in the store (runs in a worker)."""
    digest = sha256_file(path)
    record = {"plan_id": plan_id, "path": path, "sha256": digest}
    atomic_write_bytes(Path(root) / HASH_DIR / f"f{index}.json", json.dumps(record).encode())
    return digest


def recorded_hash(root: Path, plan: dict[str, Any], index: int) -> str | None:
    """The digest recorded for input file `index` of this plan, if any."""
    try:
        rec = json.loads((root / HASH_DIR / f"f{index}.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    same = rec.get("plan_id") == plan["plan_id"] and rec.get("path") == plan["files"][index]["path"]
    return rec["sha256"] if same else None


def collect_hashes(root: Path, plan: dict[str, Any]) -> None:
    """Fill every plan file's sha256 from the records, hashing here whatever is missing."""
    for i, f in enumerate(plan["files"]):
        f["sha256"] = recorded_hash(root, plan, i) or hash_input(
            str(root), plan["plan_id"], i, f["path"]
        )
