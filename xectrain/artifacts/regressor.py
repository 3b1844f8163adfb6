"""Regressor artifacts of a run folder: prediction CSVs and resolution PDFs, and regenerating
the PDFs from the CSVs alone (`xec plots RUN_DIR`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from .csvio import csv_path, read_predictions_csv, task_arrays, write_predictions_csv
from .resolution import plot_angle, plot_energy, plot_position, plot_timing

PLOTTED_TASKS: tuple[str, ...] = ("angle", "energy", "timing", "uvwFI")


def plot_path(out_dir: str | Path, task: str, run_name: str) -> Path:
    """`resolution_{task}_{run}.pdf` inside `out_dir`."""
    return Path(out_dir) / f"resolution_{task}_{run_name}.pdf"


def plot_task(
    task: str,
    true: np.ndarray,
    pred: np.ndarray,
    path: Path,
    context: Mapping[str, np.ndarray] | None = None,
) -> tuple[Path, dict[str, float]]:
    """Resolution PDF of one task; `context` may hold truth of other tasks of the same events
    (uvwFI for the energy profiles, energy for timing). Returns the path and fit results."""
    context = context or {}
    if task == "angle":
        return plot_angle(true, pred, path), {}
    if task == "energy":
        out, fit = plot_energy(true, pred, path, uvw=context.get("uvwFI"))
        return out, ({} if fit is None else {"calo_a": fit.a, "calo_b": fit.b, "calo_c": fit.c})
    if task == "timing":
        energy = context.get("energy")
        return plot_timing(true, pred, path, None if energy is None else energy[:, 0]), {}
    if task == "uvwFI":
        return plot_position(true, pred, path), {}
    raise ValueError(f"no resolution plot for task {task!r}; plotted: {', '.join(PLOTTED_TASKS)}")


def write_regressor_artifacts(
    out_dir: str | Path,
    run_name: str,
    results: Mapping[str, tuple[np.ndarray, np.ndarray]],
    ids: Mapping[str, np.ndarray] | None = None,
) -> dict[str, Path]:
    """Write `predictions_{task}_{run}.csv` for every task in `results` ({task: (true, pred)},
    same events in the same order) and the resolution PDF of each plotted task."""
    written: dict[str, Path] = {}
    truths = {task: np.asarray(tp[0]).reshape(len(tp[0]), -1) for task, tp in results.items()}
    for task, (true, pred) in results.items():
        written[f"csv_{task}"] = write_predictions_csv(
            csv_path(out_dir, task, run_name), task, true, pred, ids
        )
        if task in PLOTTED_TASKS:
            path, _ = plot_task(
                task, truths[task], np.asarray(pred), plot_path(out_dir, task, run_name), truths
            )
            written[f"plot_{task}"] = path
    return written


def find_prediction_csvs(run_dir: str | Path) -> dict[str, tuple[str, Path]]:
    """{task: (run name, path)} of the prediction CSVs in a run folder."""
    found: dict[str, tuple[str, Path]] = {}
    for path in sorted(Path(run_dir).glob("predictions_*.csv")):
        task, _ = read_predictions_csv(path)
        prefix = f"predictions_{task}_"
        run = path.stem[len(prefix) :] if path.stem.startswith(prefix) else path.stem
        found[task] = (run, path)
    return found


def regenerate_plots(
    run_dir: str | Path,
    tasks: Iterable[str] | None = None,
    out_dir: str | Path | None = None,
    suffix: str = "",
) -> dict[str, Path]:
    """Redraw the resolution PDFs of a run folder from its prediction CSVs, into `out_dir`
    (default: the run folder) as resolution_<task>_<run><suffix>.pdf."""
    found = find_prediction_csvs(run_dir)
    if not found:
        raise FileNotFoundError(f"{run_dir}: no predictions_*.csv; run `xec validate` first")
    wanted = list(tasks) if tasks else [t for t in PLOTTED_TASKS if t in found]
    missing = [t for t in wanted if t not in found]
    if missing:
        raise FileNotFoundError(
            f"{run_dir}: no predictions CSV for {', '.join(missing)}; found {', '.join(found)}"
        )
    columns = {task: read_predictions_csv(path)[1] for task, (_, path) in found.items()}
    written = {}
    for task in wanted:
        run, _ = found[task]
        true, pred = task_arrays(columns[task], task)
        context = _aligned_truths(columns, task)
        out = plot_path(out_dir or run_dir, task, run + suffix)
        path, _ = plot_task(task, true, pred, out, context)
        written[task] = path
    return written


def _aligned_truths(
    columns: Mapping[str, Mapping[str, np.ndarray]], task: str
) -> dict[str, np.ndarray]:
    """Truth of the other tasks for the events of `task`, matched by event_index."""
    key = columns[task]["event_index"]
    out = {}
    for other, cols in columns.items():
        if other == task:
            continue
        order = {int(k): i for i, k in enumerate(cols["event_index"])}
        rows = [order.get(int(k), -1) for k in key]
        if min(rows, default=-1) < 0:
            continue  # not the same events: skip the cross-task profiles
        out[other] = task_arrays(cols, other)[0][rows]
    return out
