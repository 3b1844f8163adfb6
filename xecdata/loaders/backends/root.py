"""The `root` baseline: the store's events streamed from the original ROOT files.

Training fed straight from ROOT (uproot reading entry ranges of the trees, then numpy
normalization through the scheme), kept as the benchmark baseline and as a reference: the
store's provenance (every source file with tree, branches, entry range and first store
index) maps each store chunk back to entries, so the cpu backend's engine can assemble the
same events in the same order. Values match the store up to its quantization. Slow by design:
each chunk is a fresh uproot read of its entries (baskets straddling chunks are read again).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from xecdata.loaders.source import _array_spec
from xecdata.reweight import Reweighter
from xecdata.store.decoder import CodeDecoder

if TYPE_CHECKING:
    from xecdata.store import Store


class RootSource:
    """ChunkSource over the ROOT files listed in a store's metadata `sources`."""

    def __init__(
        self, store: Store, scheme_id: str, targets: tuple[str, ...], reweighter: Reweighter | None
    ):
        self.scheme = store.scheme(scheme_id)
        self.n_events, self.chunk_events = int(store.n_events), int(store.chunk_events)
        self.sources = sorted(store.metadata["sources"], key=lambda f: f["first_index"])
        self.decoder: CodeDecoder | None = None
        self.raw_dtype = np.dtype(np.float32)
        self.targets, self.reweighter = targets, reweighter
        self.target_specs = {name: _array_spec(store, name) for name in targets}
        self.truth = tuple(reweighter.arrays) if reweighter is not None else ()
        self._local = threading.local()

    def pieces(self, start: int, stop: int) -> list[tuple[dict[str, Any], int, int, int]]:
        """(source record, first entry, last entry + 1, offset in [start, stop)) pieces."""
        out = []
        for f in self.sources:
            first = int(f["first_index"])
            lo, hi = max(start, first), min(stop, first + int(f["entries"]))
            if lo < hi:
                e0 = int(f.get("entry_start", 0)) + lo - first
                out.append((f, e0, e0 + hi - lo, lo - start))
        if sum(p[2] - p[1] for p in out) != stop - start:
            raise ValueError(f"store events [{start}, {stop}) are not all covered by its sources")
        return out

    def _tree(self, f: dict[str, Any]) -> Any:
        """The file's tree, opened once per decode thread."""
        from xecdata.rootio import open_tree

        cache = self._local.__dict__.setdefault("trees", {})
        if f["path"] not in cache:
            cache[f["path"]] = open_tree(f["path"], f["tree"])
        return cache[f["path"]]

    def read(
        self, chunk: int, sensors: np.ndarray, targets: dict[str, np.ndarray], weights: np.ndarray
    ) -> int:
        start = chunk * self.chunk_events
        stop = min(start + self.chunk_events, self.n_events)
        names = sorted({*self.targets, *self.truth})
        for f, e0, e1, off in self.pieces(start, stop):
            t = self._tree(f)
            npho, time = _sensor_arrays(t, f, e0, e1)
            self.scheme.normalize_into(npho, time, sensors[off : off + e1 - e0])
            arrays = t.arrays(names, entry_start=e0, entry_stop=e1, library="np") if names else {}
            part = slice(off, off + e1 - e0)
            for name in self.targets:
                targets[name][part] = np.asarray(arrays[name]).reshape(targets[name][part].shape)
            weights[part] = 1.0 if self.reweighter is None else self.reweighter.weights(arrays)
        return stop - start


def _sensor_arrays(t: Any, f: dict[str, Any], e0: int, e1: int) -> tuple[np.ndarray, ...]:
    """(npho, time) (n, 4760) of entries [e0, e1), fixed-size or jagged branches alike."""
    out = []
    for branch in (f["npho_branch"], f["time_branch"]):
        arr = t[branch].array(entry_start=e0, entry_stop=e1, library="np")
        if arr.dtype == object:  # jagged (std::vector or counter-jagged): one array per entry
            arr = np.stack([np.asarray(a, np.float32) for a in arr])
        out.append(arr.reshape(e1 - e0, -1))
    return out[0], out[1]
