"""Single events in physical units from a store or an input ROOT file (for event displays).

Sensors come back as float64 (n, 4760) photons and seconds with NaN where there is no value
(a dead sensor, an invalid time): from a store's kept raw arrays when it has them, else by
inverting the store's scheme; from a ROOT file as read, with the producer's 1e10 'invalid'
marker turned into NaN. Per-event branches (truth, reconstruction, ids) come with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xecdata.rootio import DEFAULT_TIME, DEFAULT_TREE, inspect_file, open_tree, read_block
from xecdata.schemes import DEAD_ABOVE, TIME_INVALID_ABOVE


@dataclass
class Events:
    """Events picked from one source: sensors in physical units and their per-event branches."""

    source: str
    entries: np.ndarray  # (n,) index in the store / entry in the file
    npho: np.ndarray  # (n, 4760) photons, NaN = no value
    time: np.ndarray  # (n, 4760) s, NaN = no value
    columns: dict[str, np.ndarray]  # name -> (n, ...)
    how: str  # where the sensor values come from (raw arrays, scheme inverse, file)
    kinds: dict[str, str] = field(default_factory=dict)  # name -> truth / reco / ids


def _as_physical(npho: np.ndarray, time: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    npho, time = npho.astype(np.float64), time.astype(np.float64)
    npho[~(npho <= DEAD_ABOVE) | (npho == -np.inf)] = np.nan  # NaN, Inf and the dead marker
    time[~(np.abs(time) <= TIME_INVALID_ABOVE)] = np.nan
    return npho, time


def find_ids(run: np.ndarray, event: np.ndarray, wanted: Sequence[tuple[int, int]]) -> np.ndarray:
    """Entries holding each (run, event) of `wanted`; KeyError naming the ones not found."""
    index = {(int(r), int(e)): i for i, (r, e) in enumerate(zip(run, event, strict=True))}
    missing = [w for w in wanted if tuple(w) not in index]
    if missing:
        shown = ", ".join(f"{r}:{e}" for r, e in missing[:5])
        raise KeyError(f"run:event {shown} not found")
    return np.array([index[(int(r), int(e))] for r, e in wanted], np.int64)


def _check_entries(entries: Sequence[int], n: int, source: str) -> np.ndarray:
    idx = np.asarray(entries, np.int64)
    bad = idx[(idx < 0) | (idx >= n)]
    if bad.size:
        raise IndexError(f"{source} has events 0..{n - 1}; entry {int(bad[0])} is out of range")
    return idx


def store_events(
    path: str | Path,
    entries: Sequence[int] = (),
    ids: Sequence[tuple[int, int]] = (),
    scheme: str | None = None,
) -> Events:
    """Events of a store by index or by (run, event); raw arrays unless `scheme` is given
    (or the store keeps none), in which case the scheme's tensor is inverted."""
    from xecdata.store import open_store

    store = open_store(path)
    if ids:
        run, event = (
            store.read_array("run", 0, store.n_events),
            store.read_array("event", 0, store.n_events),
        )
        entries = [*entries, *find_ids(run, event, ids)]
    idx = _check_entries(entries, store.n_events, f"store {path}")
    cols = {
        name: np.stack([store.read_array(name, i, i + 1)[0] for i in idx]) for name in store.arrays
    }
    if scheme is None and store.metadata["raw"]["kept"]:
        raw = [store.read_raw(int(i), int(i) + 1) for i in idx]
        npho, time = _as_physical(
            np.concatenate([r[0] for r in raw]), np.concatenate([r[1] for r in raw])
        )
        how = "raw arrays"
    else:
        sid = scheme or store.schemes[0]
        s = store.scheme(sid)
        x = np.concatenate([store.read_sensors(sid, int(i), int(i) + 1) for i in idx])
        npho, time = s.denormalize(x)
        how = f"scheme {sid}, inverted"
    return Events(str(path), idx, npho, time, cols, how, dict(store.arrays))


def root_events(
    path: str | Path,
    entries: Sequence[int] = (),
    ids: Sequence[tuple[int, int]] = (),
    tree: str = DEFAULT_TREE,
    npho_branch: str | None = None,
    time_branch: str = DEFAULT_TIME,
) -> Events:
    """Entries of an input ROOT file by number or by (run, event), as read."""
    t = open_tree(path, tree)
    try:
        info = inspect_file(path, tree, npho_branch, time_branch, t=t)
        if ids:
            arrays = t.arrays(["run", "event"], library="np")
            entries = [*entries, *find_ids(arrays["run"], arrays["event"], ids)]
        idx = _check_entries(entries, info.entries, f"{path} (tree {tree})")
        blocks = [read_block(t, info, int(i), int(i) + 1) for i in idx]
    finally:
        t.file.close()
    npho, time = _as_physical(
        np.concatenate([b[0] for b in blocks]), np.concatenate([b[1] for b in blocks])
    )
    cols = {c.name: np.concatenate([b[2][c.name] for b in blocks]) for c in info.columns}
    how = f"file, branches {info.npho_branch}/{info.time_branch}"
    return Events(str(path), idx, npho, time, cols, how, {c.name: c.kind for c in info.columns})
