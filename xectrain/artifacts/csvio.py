"""Per-task prediction CSVs: `predictions_{task}_{run}.csv`, one row per validation event.

Columns: event_index (global store index), run, event, then true_<c> and pred_<c> for each
component c of the task (the task catalogue's components, xecdata.tasks), in physical
units. Plots are regenerated from these files alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from xecdata.tasks import CLASSIFICATION, TASKS, get_task

ID_COLUMNS: tuple[str, ...] = ("event_index", "run", "event")


def csv_path(run_dir: str | Path, task: str, run_name: str) -> Path:
    """Where the predictions of `task` are written inside a run folder."""
    return Path(run_dir) / f"predictions_{task}_{run_name}.csv"


def _rows(x: np.ndarray, width: int) -> np.ndarray:
    """(N, ...) -> (N, K) float64; no events -> (0, width)."""
    x = np.asarray(x, np.float64)
    return x.reshape(len(x), -1) if x.size else x.reshape(0, width)


def task_columns(task: str, true: np.ndarray, pred: np.ndarray) -> dict[str, np.ndarray]:
    """{true_<c>, pred_<c>: (N,) float64} of `task` from (N, C) truth and predictions; the
    column names of the CSVs and of the validation ROOT file (class scores -> class)."""
    info = get_task(task)
    comps = info.components
    true, pred = _rows(true, len(comps)), _rows(pred, len(comps))
    if info.kind == CLASSIFICATION and pred.shape[1] > 1:
        pred = pred.argmax(axis=1)[:, None].astype(np.float64)  # class scores -> class
    if true.shape[1] != len(comps) or pred.shape != true.shape:
        raise ValueError(
            f"{task}: expected (N, {len(comps)}) truth and predictions, "
            f"got {true.shape} and {pred.shape}"
        )
    return {f"true_{c}": true[:, i] for i, c in enumerate(comps)} | {
        f"pred_{c}": pred[:, i] for i, c in enumerate(comps)
    }


def id_columns(ids: Mapping[str, np.ndarray] | None, n: int) -> dict[str, np.ndarray]:
    """event_index, run, event as (n,) int64; -1 where the ids are unknown."""
    ids = ids or {}
    return {k: np.asarray(ids.get(k, np.full(n, -1)), np.int64).reshape(n) for k in ID_COLUMNS}


def write_predictions_csv(
    path: str | Path,
    task: str,
    true: np.ndarray,
    pred: np.ndarray,
    ids: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """Write (N, C) truth and predictions of `task` (C = its components) with event ids."""
    columns = task_columns(task, true, pred)
    id_cols = id_columns(ids, len(true))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = np.stack([*(c.astype(np.float64) for c in id_cols.values()), *columns.values()], 1)
    fmt = ["%d"] * len(id_cols) + ["%.9g"] * len(columns)
    header = ",".join([*id_cols, *columns])
    np.savetxt(path, table, fmt=fmt, delimiter=",", header=header, comments="")
    return path


def csv_task(path: str | Path) -> str:
    """The task of a predictions CSV, from the components of its header."""
    with Path(path).open() as fh:
        header = fh.readline().strip().split(",")
    comps = tuple(h[len("true_") :] for h in header if h.startswith("true_"))
    for task in TASKS.values():
        if task.components == comps:
            return task.name
    raise ValueError(f"{path}: columns {header} do not match any task's components")


def read_predictions_csv(path: str | Path) -> tuple[str, dict[str, np.ndarray]]:
    """(task, columns) of a predictions CSV; the task is taken from the file's columns."""
    task = csv_task(path)
    with Path(path).open() as fh:
        header = fh.readline().strip().split(",")
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    return task, {name: data[:, i] for i, name in enumerate(header)}


def task_arrays(cols: Mapping[str, np.ndarray], task: str) -> tuple[np.ndarray, np.ndarray]:
    """(true, pred) as (N, C) arrays from CSV columns."""
    comps = get_task(task).components
    true = np.stack([cols[f"true_{c}"] for c in comps], axis=1)
    pred = np.stack([cols[f"pred_{c}"] for c in comps], axis=1)
    return true, pred
