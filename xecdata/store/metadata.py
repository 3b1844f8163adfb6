"""Store metadata: tool versions, the train/val split rule, the completion marker, the schema.

The metadata lives in the root group's zarr.json under attributes["xec"]; its JSON Schema is
schemas/store.schema.json. The completion marker `_xec/complete.json` is written last, by
atomic rename, and carries the event count and the sha256 of the canonical metadata JSON, so a
reader can tell a finished store from one being written or interrupted (no marker) and from
one whose metadata changed after it was finished (hash mismatch).

Split rule ("chunk blocks"): the event axis is cut into blocks of `chunk_events` events (the
loaders' unit of reading); block j is validation iff floor((j+1) p / q) > floor(j p / q) with
p / q = val_fraction as a fraction of 10^6. Contiguous ranges, spread evenly through every file
and run, exact in integers, and stable under `--append` (a block's membership depends only on
its index).
"""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from xecdata.store.format import ATTR_KEY, COMPLETE_FILE, atomic_write_bytes

SCHEMA_FILE = Path(__file__).parent / "store.schema.json"  # a link to schemas/store.schema.json
FRACTION_DENOMINATOR = 10**6


def now() -> str:
    """UTC time stamp, ISO 8601."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def tool_versions() -> dict[str, str]:
    """Versions of the tools that shape the stored bytes."""
    import numcodecs
    import uproot
    import zarr

    import xecdata

    return {
        "xec": xecdata.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "zarr": zarr.__version__,
        "numcodecs": numcodecs.__version__,
        "uproot": uproot.__version__,
    }


def canonical_hash(metadata: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a metadata dict."""
    text = json.dumps(metadata, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def read_metadata(root: Path) -> dict[str, Any] | None:
    """The metadata of a store (None when it was never finished)."""
    try:
        group = json.loads((root / "zarr.json").read_text())
    except FileNotFoundError:
        return None
    meta = group.get("attributes", {}).get(ATTR_KEY)
    return meta if isinstance(meta, dict) else None


def write_metadata(root: Path, metadata: dict[str, Any]) -> None:
    """Replace attributes["xec"] of the root group's zarr.json (atomic rename)."""
    path = root / "zarr.json"
    group = json.loads(path.read_text())
    group.setdefault("attributes", {})[ATTR_KEY] = metadata
    atomic_write_bytes(path, json.dumps(group, indent=1, allow_nan=False).encode(), fsync=True)


def write_complete(root: Path, metadata: dict[str, Any]) -> None:
    """The completion marker: written last."""
    marker = {
        "n_events": metadata["n_events"],
        "metadata_sha256": canonical_hash(metadata),
        "finished": now(),
    }
    atomic_write_bytes(root / COMPLETE_FILE, json.dumps(marker).encode(), fsync=True)


def is_complete(root: Path, metadata: dict[str, Any] | None) -> bool:
    """True when the marker exists and matches the metadata."""
    try:
        marker = json.loads((root / COMPLETE_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return False
    return (
        metadata is not None
        and marker.get("n_events") == metadata.get("n_events")
        and marker.get("metadata_sha256") == canonical_hash(metadata)
    )


def validate_metadata(metadata: dict[str, Any]) -> None:
    """Check metadata against schemas/store.schema.json (ValueError listing the problems)."""
    import jsonschema

    schema = json.loads(SCHEMA_FILE.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(metadata), key=lambda e: list(map(str, e.path)))
    if errors:
        lines = [f"  {'/'.join(map(str, e.path)) or '<root>'}: {e.message}" for e in errors[:20]]
        raise ValueError("store metadata does not match store.schema.json:\n" + "\n".join(lines))


def fraction_parts(val_fraction: float) -> tuple[int, int]:
    """val_fraction as p / 10^6 (ValueError outside [0, 1))."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    return round(val_fraction * FRACTION_DENOMINATOR), FRACTION_DENOMINATOR


def split_ranges(n_events: int, block: int, val_fraction: float) -> dict[str, np.ndarray]:
    """{'train': (k, 2), 'val': (m, 2)} int64 [start, stop) ranges of the chunk-block rule."""
    p, q = fraction_parts(val_fraction)
    j = np.arange(-(-n_events // block), dtype=np.int64)
    is_val = ((j + 1) * p) // q > (j * p) // q
    out = {}
    for name, mask in (("train", ~is_val), ("val", is_val)):
        edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
        starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        ranges = np.stack([starts * block, np.minimum(stops * block, n_events)], -1)
        out[name] = ranges.astype(np.int64).reshape(-1, 2)
    return out
