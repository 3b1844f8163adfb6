"""Events in physical units, batch by batch, from ROOT files or stores (for the reconstruction).

ROOT files are read with the ingest readers (``xecdata.rootio``: the same branch choice,
checks and messages; baskets are not decompressed twice). A store gives its raw arrays when
it was ingested with --keep-raw, otherwise its first scheme's tensor inverted (NaN where the
tensor holds a sentinel: dead sensors, invalid times); the quantization of the store is well
below the photon statistics (DESIGN.md, "Precision policy"). Per-event branches (truth, reco,
ids) come along as read.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xecdata.remote import is_url
from xecdata.rootio import (
    DEFAULT_TIME,
    DEFAULT_TREE,
    InputError,
    inspect_file,
    open_tree,
    read_block,
    read_steps,
)


@dataclass
class EventBatch:
    """npho (B, 4760) photons and time (B, 4760) s, per-event columns, first entry, source."""

    npho: np.ndarray
    time: np.ndarray
    columns: dict[str, np.ndarray]
    first: int
    source: str


def is_store(path: str | Path) -> bool:
    if isinstance(path, str) and is_url(path):
        return False
    path = Path(path)
    return path.is_dir() and (path / "zarr.json").is_file()


def resolve(inputs: Sequence[str | Path]) -> list[str | Path]:
    """ROOT files, stores, and folders (every *.root below, sorted) -> paths in order; URLs of
    ROOT files (root://, https://, s3://: xecdata.remote) as given."""
    out: list[str | Path] = []
    for item in inputs:
        if isinstance(item, str) and is_url(item):
            out += [item] if item not in out else []
            continue
        path = Path(item)
        if is_store(path):
            found = [path]
        elif path.is_dir():
            found = sorted(path.rglob("*.root"))
            if not found:
                fix = "Give ROOT files, folders of them, or a store (xec ingest)"
                raise InputError(path, "folder holds no .root file and is not a store", fix)
        elif path.is_file():
            found = [path]
        else:
            raise InputError(path, "no such file or folder", "Check the INPUT path")
        out += [p for p in found if p not in out]
    return out


def count_events(path: str | Path, tree: str = DEFAULT_TREE) -> int:
    """Entries of a ROOT file's tree or events of a store (for progress bars)."""
    if is_store(path):
        from xecdata.store import open_store

        return open_store(path).n_events
    t = open_tree(path, tree)
    try:
        return int(t.num_entries)
    finally:
        t.file.close()


def _root_batches(
    path: str | Path, batch: int, tree: str, npho: str | None, tbranch: str
) -> Iterator[EventBatch]:
    t = open_tree(path, tree)
    try:
        info = inspect_file(path, tree, npho, tbranch, t)
        for start, stop in read_steps(info.basket_starts, 0, info.entries, batch):
            raw_npho, raw_time, cols = read_block(t, info, start, stop)
            yield EventBatch(raw_npho, raw_time, cols, start, str(path))
    finally:
        t.file.close()


def _store_batches(path: Path, batch: int) -> Iterator[EventBatch]:
    from xecdata.store import open_store

    st = open_store(path)
    raw = bool(st.metadata["raw"]["kept"])
    scheme = None if raw else st.scheme(st.schemes[0])
    for start in range(0, st.n_events, batch):
        stop = min(start + batch, st.n_events)
        cols = {name: st.read_array(name, start, stop) for name in st.arrays}
        if scheme is None:
            npho, time = st.read_raw(start, stop)
        else:
            npho, time = scheme.denormalize(st.read_sensors(scheme.id, start, stop))
        yield EventBatch(npho.astype(np.float32), time.astype(np.float32), cols, start,
                         str(path))  # fmt: skip


def iter_batches(
    path: str | Path, batch: int = 1024, tree: str = DEFAULT_TREE,
    npho_branch: str | None = None, time_branch: str = DEFAULT_TIME,
) -> Iterator[EventBatch]:  # fmt: skip
    """Batches of <= batch events of one ROOT file (a path or a URL) or store, in order."""
    if is_store(path):
        return _store_batches(Path(path), batch)
    return _root_batches(path, batch, tree, npho_branch, time_branch)
