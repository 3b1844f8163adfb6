"""A reader of xec stores written from docs/store-format.md alone: plain zarr and numpy, no xec
import. tests/test_store_spec.py checks that its batches equal the loaders' bit for bit, so the
specification says everything a program needs to read a store."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import zarr

N_CODES = 65536


class SpecStore:
    """One finished store, opened as the specification says (sections in brackets)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.group = zarr.open_group(str(self.path), mode="r")
        self.meta: dict[str, Any] = dict(self.group.attrs["xec"])  # [Root group]
        if self.meta["format"] != "xec-store" or self.meta["format_version"] not in (1, 2):
            raise ValueError(f"{path}: not an xec store of a known format version")
        marker = json.loads((self.path / "_xec" / "complete.json").read_text())  # [Completion]
        canonical = json.dumps(self.meta, sort_keys=True, separators=(",", ":"), allow_nan=False)
        digest = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
        if marker["n_events"] != self.meta["n_events"] or marker["metadata_sha256"] != digest:
            raise ValueError(f"{path}: the completion marker does not match: unfinished store")
        self.n_events = int(self.meta["n_events"])

    def split_events(self, name: str) -> np.ndarray:
        """Store event indices of split `name`, in increasing order [Splits]."""
        ranges = self.group[self.meta["split"]["arrays"][name]][...]
        parts = [np.arange(a, b, dtype=np.int64) for a, b in ranges.reshape(-1, 2)]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def luts(self, scheme_id: str) -> np.ndarray | None:
        """(2, 65536) float32 decode tables of a uint16 scheme, None for float32 [Codes]."""
        entry = self.meta["schemes"][scheme_id]
        if entry["dtype"] != "uint16":
            return None
        tables = []
        for channel in ("npho", "time"):
            p = entry["precision"][channel]
            sentinel = np.float32(p["sentinel"])
            lut = np.arange(N_CODES, dtype=np.float32) * np.float32(p["step"])  # rounding 1
            lut = lut + np.float32(p["offset"] - p["step"])  # rounding 2 (offset - step: f64)
            lut[lut == sentinel] = np.nextafter(sentinel, np.float32(np.inf))
            lut[0] = sentinel
            tables.append(lut)
        return np.stack(tables)

    def sensors(self, scheme_id: str, events: np.ndarray) -> np.ndarray:
        """Normalized float32 (n, 4760, 2) of store events `events` [Sensor tensor]."""
        arr = self.group[self.meta["schemes"][scheme_id]["array"]]
        lo, hi = int(events.min()), int(events.max()) + 1
        stored = arr[lo:hi][events - lo]  # (n, 4760, 2) uint16 codes or float32 values
        luts = self.luts(scheme_id)
        if luts is None:
            return np.ascontiguousarray(stored, dtype=np.float32)
        out = np.empty(stored.shape, np.float32)
        for ch in (0, 1):
            out[..., ch] = luts[ch][stored[..., ch]]
        return out

    def column(self, name: str, events: np.ndarray) -> np.ndarray:
        """Per-event branch `name` at `events`, in its source dtype [Columns]."""
        col = self.meta["columns"][name]
        arr = self.group[col["array"]]
        lo, hi = int(events.min()), int(events.max()) + 1
        block = arr[lo:hi][events - lo][:, col["start"] : col["stop"]]
        return block.reshape(len(events), *col["shape"]).astype(col["dtype"])

    def batches(
        self, scheme_id: str, split: str, batch_size: int, targets: tuple[str, ...]
    ) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]]:
        """(sensors, targets, event indices) of consecutive batches of a split, in store order;
        targets as loaders give them: float32, int64 for integer branches [Loaders]."""
        events = self.split_events(split)
        for s in range(0, len(events), batch_size):
            idx = events[s : s + batch_size]
            cols = {}
            for name in targets:
                values = self.column(name, idx)
                kind = np.int64 if np.issubdtype(values.dtype, np.integer) else np.float32
                cols[name] = values.astype(kind)
            yield self.sensors(scheme_id, idx), cols, idx

    def physical(self, scheme_id: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(npho photons, time s) float64 of normalized x, NaN at sentinels [Schemes]."""
        d = self.meta["schemes"][scheme_id]["definition"]
        s1, s2 = d["npho_scale"], d["npho_scale2"]
        u = x[..., 0].astype(np.float64) * s2
        inverse = {
            "log1p": lambda: s1 * np.expm1(u),
            "sqrt": lambda: s1 * np.square(np.maximum(u, 0.0)),
            "anscombe": lambda: s1 * (np.square(np.maximum(u, 0.0) * 0.5) - 0.375),
            "linear": lambda: s1 * u,
        }
        npho = inverse[d["npho_transform"]]()
        npho[x[..., 0] == np.float32(d["npho_sentinel"])] = np.nan
        time = (x[..., 1].astype(np.float64) + d["time_shift"]) * d["time_scale"]
        time[x[..., 1] == np.float32(d["time_sentinel"])] = np.nan
        return npho, time
