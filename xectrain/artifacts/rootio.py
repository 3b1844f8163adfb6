"""Streaming ROOT output of predictions (one basket per batch, bounded memory).

Three layouts, each with a one-entry `metadata` tree (kind, channels or tasks, units, scheme id
and hash, geometry id, ...):
- `event` (MAE): one entry per event: event_idx, run, event (also as the earlier tool's run_id,
  event_id), and (4760,) arrays truth_*, pred_*, err_*, mask (randomly
  masked), invalid (already invalid before masking) and masked_npho, masked_time (the model
  input after masking, normalized: masked sensors hold the scheme's sentinels; not physical);
- `sensor` (inpainter): one entry per masked sensor: event_idx, run, event, sensor_id, face,
  truth_*, pred_*, error_*;
- regressor validation (`validation_results_<run>.root`, TableRootWriter): one entry per event:
  event_index, run, event, then true_<c> / pred_<c> per component of each task, the CSV columns.
Values are physical (photons, ns; deg, GeV, cm) unless the metadata says otherwise. The file is
written under a temporary name and renamed on close, so a crash never leaves a truncated file
at `path`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import awkward as ak
import numpy as np
import uproot

from xecdata.geometry import N_SENSORS, sensor_table

CHANNEL_INDEX = {"npho": 0, "time": 1}
Metadata = Mapping[str, str | int | float]
W = TypeVar("W", bound="RootTreeFile")


class RootTreeFile:
    """Tree `predictions` (or `tree`) written batch by batch with `extend`; `close()` adds the
    one-entry `metadata` tree and moves `<path>.partial` to `path`, `abort()` drops it."""

    def __init__(self, path: str | Path, branch_types: Mapping[str, object],
                 metadata: Metadata, tree: str = "predictions") -> None:  # fmt: skip
        self.path = Path(path)
        self.metadata = dict(metadata)
        self.tree = tree
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(self.path.name + ".partial")
        self._file = uproot.recreate(self._tmp)
        self._file.mktree(tree, dict(branch_types))
        self.entries = 0

    def extend(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Append one basket; every array has the same length (nothing is written for 0)."""
        n = len(next(iter(arrays.values())))
        if n:
            self._file[self.tree].extend(dict(arrays))
            self.entries += n

    def close(self) -> Path:
        """Write the metadata tree and move the file to its final name."""
        meta = {
            k: ak.Array([v]) if isinstance(v, str) else np.asarray([v])
            for k, v in self.metadata.items()
        }
        self._file["metadata"] = meta
        self._file.close()
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop the partial file (after an error)."""
        self._file.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self: W) -> W:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class TableRootWriter(RootTreeFile):
    """One entry per row: scalar branches from (N,) arrays, fixed-size arrays from (N, K);
    the branch set and dtypes are those of `example` (e.g. the first batch)."""

    def __init__(self, path: str | Path, example: Mapping[str, np.ndarray],
                 metadata: Metadata | None = None, tree: str = "predictions") -> None:  # fmt: skip
        types = {k: np.dtype((v.dtype, v.shape[1:])) for k, v in example.items()}
        super().__init__(path, types, metadata or {}, tree)
        self.branches = tuple(types)

    def write(self, arrays: Mapping[str, np.ndarray]) -> None:
        """One batch: the same branches as the example."""
        if set(arrays) != set(self.branches):
            raise ValueError(f"{self.path}: batch has branches {sorted(arrays)}, "
                             f"the tree {sorted(self.branches)}")  # fmt: skip
        self.extend({k: arrays[k] for k in self.branches})


class PredictionRootWriter(RootTreeFile):
    """Append batches with `write(...)`; `close()` adds the metadata tree and renames the file."""

    def __init__(
        self,
        path: str | Path,
        layout: str,
        channels: Sequence[str] = ("npho", "time"),
        metadata: Mapping[str, str | int | float] | None = None,
    ) -> None:
        if layout not in ("event", "sensor"):
            raise ValueError(f"layout {layout!r} is not one of event, sensor")
        unknown = set(channels) - set(CHANNEL_INDEX)
        if unknown or not channels:
            raise ValueError(f"channels {list(channels)} must be a non-empty subset of npho, time")
        self.layout, self.channels = layout, tuple(channels)
        meta = {"layout": layout, "predict_channels": ",".join(self.channels), **(metadata or {})}
        super().__init__(path, self._branch_types(), meta)
        self._face = sensor_table().face.astype(np.int8)

    def _branch_types(self) -> dict[str, object]:
        per_sensor = np.dtype((np.float32, (N_SENSORS,)))
        if self.layout == "event":
            types: dict[str, object] = {"event_idx": "int64", "run": "int64", "event": "int64"}
            types |= {"run_id": "int64", "event_id": "int64"}  # the earlier tool's names of both
            types |= {"mask": np.dtype((np.bool_, (N_SENSORS,)))}
            types |= {"invalid": np.dtype((np.bool_, (N_SENSORS,)))}
            types |= {"masked_npho": per_sensor, "masked_time": per_sensor}
            for ch in self.channels:
                types |= {
                    f"truth_{ch}": per_sensor,
                    f"pred_{ch}": per_sensor,
                    f"err_{ch}": per_sensor,
                }
            return types
        types = {"event_idx": "int64", "run": "int64", "event": "int64", "sensor_id": "int32"}
        types["face"] = "int8"
        for ch in self.channels:
            types |= {f"truth_{ch}": "float32", f"pred_{ch}": "float32", f"error_{ch}": "float32"}
        return types

    def write(
        self,
        truth: np.ndarray,
        pred: np.ndarray,
        mask: np.ndarray,
        event_idx: np.ndarray,
        run: np.ndarray | None = None,
        event: np.ndarray | None = None,
        invalid: np.ndarray | None = None,
        masked: np.ndarray | None = None,
    ) -> None:
        """One batch: (B, 4760, 2) truth and prediction, (B, 4760) bool mask, (B,) ids; the
        channels not predicted are not written. Event layout: `masked` (B, 4760, 2) is the
        normalized model input after masking (NaN when not given)."""
        truth = np.asarray(truth, np.float32)
        pred = np.asarray(pred, np.float32)
        mask = np.asarray(mask, bool)
        b = len(truth)
        ids = {
            "event_idx": np.asarray(event_idx, np.int64),
            "run": np.full(b, -1, np.int64) if run is None else np.asarray(run, np.int64),
            "event": np.full(b, -1, np.int64) if event is None else np.asarray(event, np.int64),
        }
        if self.layout == "event":
            arrays = ids | {"run_id": ids["run"], "event_id": ids["event"], "mask": mask}
            arrays["invalid"] = (
                np.zeros_like(mask) if invalid is None else np.asarray(invalid, bool)
            )
            inputs = np.full_like(truth, np.nan) if masked is None else np.asarray(masked)
            inputs = inputs.astype(np.float32, copy=False)
            arrays |= {"masked_npho": inputs[..., 0], "masked_time": inputs[..., 1]}
            for ch in self.channels:
                c = CHANNEL_INDEX[ch]
                arrays |= {f"truth_{ch}": truth[..., c], f"pred_{ch}": pred[..., c]}
                arrays[f"err_{ch}"] = pred[..., c] - truth[..., c]
        else:
            ev, sensor = np.nonzero(mask)  # (M,) each: the masked sensors of the batch
            arrays = {k: v[ev] for k, v in ids.items()}
            arrays |= {"sensor_id": sensor.astype(np.int32), "face": self._face[sensor]}
            for ch in self.channels:
                c = CHANNEL_INDEX[ch]
                t, p = truth[ev, sensor, c], pred[ev, sensor, c]
                arrays |= {f"truth_{ch}": t, f"pred_{ch}": p, f"error_{ch}": p - t}
        self.extend(arrays)


def read_metadata(path: str | Path) -> dict[str, object]:
    """The metadata tree of a predictions file as a dict of python values."""
    with uproot.open(path) as f:
        arrays = f["metadata"].arrays(library="ak")
    return {name: ak.to_list(arrays[name])[0] for name in arrays.fields}
