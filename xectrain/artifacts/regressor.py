"""Regressor artifacts of a run folder: prediction CSVs, the validation ROOT file and
resolution PDFs, and regenerating the PDFs from the CSVs alone (`xec plots RUN_DIR`).

Every file of one validation ends in `_<name>.<ext>`; training names the set of a best epoch
`<run>_ep<N>` and copies it to the plain `<run>` names (see xectrain.run.outputs)."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from xecdata.tasks import CLASSIFICATION, TASKS, get_task

from .csvio import (
    csv_path,
    csv_task,
    id_columns,
    read_predictions_csv,
    task_arrays,
    task_columns,
    write_predictions_csv,
)
from .resolution import plot_angle, plot_energy, plot_position, plot_scalar, plot_timing
from .rootio import Metadata, TableRootWriter

# plot kinds whose truth other plots profile against: energy vs position, timing vs energy
CONTEXT_PLOTS: tuple[str, ...] = ("position", "energy")
ROOT_CHUNK = 65_536  # events per basket of the validation ROOT file
EPOCH_SUFFIX = re.compile(r"_ep(\d+)$")  # `<run>_ep<N>`: the artifact set of best epoch N


def plot_path(out_dir: str | Path, task: str, run_name: str) -> Path:
    """`resolution_{task}_{run}.pdf` inside `out_dir`."""
    return Path(out_dir) / f"resolution_{task}_{run_name}.pdf"


def plotted_tasks() -> tuple[str, ...]:
    """Tasks of the catalogue that have a resolution plot."""
    return tuple(t.name for t in TASKS.values() if t.plot is not None)


def plot_context(truths: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """{plot kind: (N, C) truth} of the tasks in `truths` ({task: truth}) whose plot kind is
    one that other plots profile against (CONTEXT_PLOTS)."""
    kinds = {t: get_task(t).plot for t in truths if t in TASKS}
    return {k: truths[t] for t, k in kinds.items() if k in CONTEXT_PLOTS}


def plot_task(
    task: str,
    true: np.ndarray,
    pred: np.ndarray,
    path: Path,
    context: Mapping[str, np.ndarray] | None = None,
    ref: str = "true",
) -> tuple[Path, dict[str, float]]:
    """Resolution PDF of one task, laid out by its plot kind; `context` may hold truth of the
    same events by plot kind (`plot_context`: position for the energy profiles, energy for
    timing); `ref` names the reference in the labels (true, or reco on real data). Returns the
    path and fit results."""
    context, info = context or {}, get_task(task)
    if info.plot == "angle":
        return plot_angle(true, pred, path, ref), {}
    if info.plot == "energy":
        out, fit = plot_energy(true, pred, path, uvw=context.get("position"), ref=ref)
        return out, ({} if fit is None else {"calo_a": fit.a, "calo_b": fit.b, "calo_c": fit.c})
    if info.plot == "timing":
        energy = context.get("energy")
        return plot_timing(true, pred, path, None if energy is None else energy[:, 0], ref), {}
    if info.plot == "position":
        return plot_position(true, pred, path, ref), {}
    if info.plot == "scalar":
        return plot_scalar(true, pred, path, task, info.units, ref), {}
    raise ValueError(f"no resolution plot for task {task!r}; plotted: "
                     f"{', '.join(plotted_tasks())}")  # fmt: skip


def root_path(out_dir: str | Path, run_name: str) -> Path:
    """`validation_results_{run}.root` inside `out_dir`."""
    return Path(out_dir) / f"validation_results_{run_name}.root"


def _root_rows(
    results: Mapping[str, tuple[np.ndarray, np.ndarray]],
    ids: Mapping[str, np.ndarray] | None,
    start: int,
    stop: int,
    extra: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Branches of events [start, stop): ids (int64), then per task the CSV columns (float32)
    and, for a classification task, the class probabilities `prob_<task>` (stop - start,
    classes), e.g. prob_n_gamma; then the
    `extra` per-event arrays under their own names (store truth / reco branches)."""
    part = {k: np.asarray(v)[start:stop] for k, v in (ids or {}).items()}
    rows = id_columns(part, stop - start)
    for name, values in (extra or {}).items():
        v = np.asarray(values)[start:stop]
        rows[name] = v.astype(np.int64 if v.dtype.kind in "iu" else np.float32)
    for task, (true, pred) in results.items():
        true, pred = np.asarray(true)[start:stop], np.asarray(pred)[start:stop]
        cols = task_columns(task, true, pred)
        rows |= {k: v.astype(np.float32) for k, v in cols.items()}
        if get_task(task).kind == CLASSIFICATION and pred.reshape(len(pred), -1).shape[1] > 1:
            rows[f"prob_{task}"] = pred.reshape(len(pred), -1).astype(np.float32)
    return rows


def write_validation_root(
    path: str | Path,
    results: Mapping[str, tuple[np.ndarray, np.ndarray]],
    ids: Mapping[str, np.ndarray] | None = None,
    metadata: Metadata | None = None,
    extra: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """Event-by-event truth and predictions of every task in `results` as tree `predictions`
    (one entry per event, branches as in the CSVs, plus the `extra` per-event arrays: every
    truth / reco branch of the store, named as in the input files) and a one-entry `metadata`
    tree (tasks, units, and whatever `metadata` adds: scheme, geometry, epoch, ...). Written
    one basket of ROOT_CHUNK events at a time, so only one basket of branches exists at once."""
    n = len(next(iter(results.values()))[0]) if results else 0
    units = {t: "class" if get_task(t).kind == CLASSIFICATION else get_task(t).units
             for t in results}  # fmt: skip
    meta = {"kind": "regressor", "tasks": ",".join(results), "units": json.dumps(units),
            "n_events": n, **(metadata or {})}  # fmt: skip
    with TableRootWriter(path, _root_rows(results, ids, 0, min(n, 1), extra), meta) as writer:
        for start in range(0, n, ROOT_CHUNK):
            writer.write(_root_rows(results, ids, start, min(start + ROOT_CHUNK, n), extra))
    return Path(path)


def write_regressor_artifacts(
    out_dir: str | Path,
    run_name: str,
    results: Mapping[str, tuple[np.ndarray, np.ndarray]],
    ids: Mapping[str, np.ndarray] | None = None,
    metadata: Metadata | None = None,
    extra: Mapping[str, np.ndarray] | None = None,
) -> dict[str, Path]:
    """Write `predictions_{task}_{run}.csv` for every task in `results` ({task: (true, pred)},
    same events in the same order), `validation_results_{run}.root` with all of them and the
    `extra` per-event arrays (`metadata` goes into its metadata tree) and the resolution PDF
    of each plotted task."""
    written: dict[str, Path] = {"root": write_validation_root(
        root_path(out_dir, run_name), results, ids, metadata, extra)}  # fmt: skip
    truths = {task: np.asarray(tp[0]).reshape(len(tp[0]), -1) for task, tp in results.items()}
    context = plot_context(truths)
    for task, (true, pred) in results.items():
        written[f"csv_{task}"] = write_predictions_csv(
            csv_path(out_dir, task, run_name), task, true, pred, ids
        )
        if get_task(task).plot is not None:
            path, _ = plot_task(
                task, truths[task], np.asarray(pred), plot_path(out_dir, task, run_name), context
            )
            written[f"plot_{task}"] = path
    return written


def epoch_of(name: str) -> int | None:
    """N of an artifact set named `<run>_ep<N>`; None for a plain name."""
    m = EPOCH_SUFFIX.search(name)
    return int(m.group(1)) if m else None


def find_prediction_csvs(run_dir: str | Path) -> dict[str, tuple[str, Path]]:
    """{task: (run name, path)} of the prediction CSVs in a run folder: the plain-named file
    of each task (the best model's), else the one of the latest `_ep<N>` set."""
    found: dict[str, tuple[str, Path]] = {}
    rank: dict[str, float] = {}
    for path in sorted(Path(run_dir).glob("predictions_*.csv")):
        task = csv_task(path)
        prefix = f"predictions_{task}_"
        run = path.stem[len(prefix) :] if path.stem.startswith(prefix) else path.stem
        epoch = epoch_of(run)
        r = float("inf") if epoch is None else float(epoch)
        if r >= rank.get(task, -1.0):
            found[task], rank[task] = (run, path), r
    return found


def copy_set(written: Mapping[str, Path], name: str, to_name: str) -> dict[str, Path]:
    """Copy an artifact set named `name` (paths ending in `_<name>.<ext>`) to `to_name`; each
    copy is written under a temporary name and renamed, so readers never see half a file."""
    copies: dict[str, Path] = {}
    for key, path in written.items():
        stem = path.name[: -len(f"_{name}{path.suffix}")]
        target = path.with_name(f"{stem}_{to_name}{path.suffix}")
        tmp = target.with_name(target.name + ".partial")
        shutil.copyfile(path, tmp)
        os.replace(tmp, target)
        copies[key] = target
    return copies


def prune_epoch_sets(run_dir: str | Path, run_name: str, keep: int) -> list[Path]:
    """Delete the `<run>_ep<N>` artifact sets of a run folder but the `keep` most recently
    written (by file time, then N: a run resumed with reset_epoch counts epochs anew)."""
    pattern = re.compile(rf"^(predictions_.+|resolution_.+|validation_results)_"
                         rf"{re.escape(run_name)}_ep(\d+)\.(csv|pdf|root)$")  # fmt: skip
    sets: dict[int, list[Path]] = {}
    for path in Path(run_dir).iterdir():
        if m := pattern.match(path.name):
            sets.setdefault(int(m.group(2)), []).append(path)
    order = sorted(sets, key=lambda ep: (max(p.stat().st_mtime for p in sets[ep]), ep))
    doomed = [p for ep in order[: max(len(order) - max(keep, 0), 0)] for p in sets[ep]]
    for path in doomed:
        path.unlink()
    return doomed


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
    wanted = list(tasks) if tasks else [t for t in plotted_tasks() if t in found]
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
        context = plot_context(_aligned_truths(columns, task))
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
