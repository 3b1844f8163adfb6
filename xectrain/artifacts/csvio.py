"""Per-task prediction CSVs: `predictions_{task}_{run}.csv`, one row per validation event.

Columns: event_index (global store index), run, event, then true_<c> and pred_<c> for each
component c of the task, in physical units. Plots are regenerated from these files alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

# Component names of each task's CSV columns (units: degrees, GeV, ns, cm, unit vector, class).
TASK_COMPONENTS: dict[str, tuple[str, ...]] = {
    "angle": ("theta", "phi"),
    "energy": ("energy",),
    "timing": ("timing",),
    "uvwFI": ("u", "v", "w"),
    "angleVec": ("x", "y", "z"),
    "n_gamma": ("n_gamma",),
}
ID_COLUMNS: tuple[str, ...] = ("event_index", "run", "event")


def csv_path(run_dir: str | Path, task: str, run_name: str) -> Path:
    """Where the predictions of `task` are written inside a run folder."""
    return Path(run_dir) / f"predictions_{task}_{run_name}.csv"


def write_predictions_csv(
    path: str | Path,
    task: str,
    true: np.ndarray,
    pred: np.ndarray,
    ids: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """Write (N, C) truth and predictions of `task` (C = its components) with event ids."""
    comps = TASK_COMPONENTS[task]
    true = np.asarray(true, np.float64).reshape(len(true), -1)
    pred = np.asarray(pred, np.float64).reshape(len(pred), -1)
    if task == "n_gamma" and pred.shape[1] > 1:
        pred = pred.argmax(axis=1)[:, None].astype(np.float64)  # class scores -> class
    if true.shape[1] != len(comps) or pred.shape != true.shape:
        raise ValueError(
            f"{task}: expected (N, {len(comps)}) truth and predictions, "
            f"got {true.shape} and {pred.shape}"
        )
    n = len(true)
    ids = ids or {}
    id_cols = [np.asarray(ids.get(k, np.full(n, -1)), np.int64) for k in ID_COLUMNS]
    header = [*ID_COLUMNS, *(f"true_{c}" for c in comps), *(f"pred_{c}" for c in comps)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = np.concatenate([np.stack(id_cols, axis=1).astype(np.float64), true, pred], axis=1)
    fmt = ["%d"] * len(ID_COLUMNS) + ["%.9g"] * (2 * len(comps))
    np.savetxt(path, table, fmt=fmt, delimiter=",", header=",".join(header), comments="")
    return path


def read_predictions_csv(path: str | Path) -> tuple[str, dict[str, np.ndarray]]:
    """(task, columns) of a predictions CSV; the task is taken from the file's columns."""
    path = Path(path)
    with path.open() as fh:
        header = fh.readline().strip().split(",")
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    cols = {name: data[:, i] for i, name in enumerate(header)}
    comps = tuple(h[len("true_") :] for h in header if h.startswith("true_"))
    for task, names in TASK_COMPONENTS.items():
        if names == comps:
            return task, cols
    raise ValueError(f"{path}: columns {header} do not match any task's components")


def task_arrays(cols: Mapping[str, np.ndarray], task: str) -> tuple[np.ndarray, np.ndarray]:
    """(true, pred) as (N, C) arrays from CSV columns."""
    comps = TASK_COMPONENTS[task]
    true = np.stack([cols[f"true_{c}"] for c in comps], axis=1)
    pred = np.stack([cols[f"pred_{c}"] for c in comps], axis=1)
    return true, pred
