"""The run folder and what a run leaves in it besides checkpoints: the best epoch's
regressor artifacts, and the end-of-run plots and ONNX export."""

from __future__ import annotations

import dataclasses
import time
import warnings
from pathlib import Path
from typing import Any

from xecdata.schemes import Scheme
from xectrain.artifacts import plot_worst_events, write_regressor_artifacts
from xectrain.artifacts.regressor import copy_set, prune_epoch_sets
from xectrain.config import RunConfig
from xectrain.engine.distributed import broadcast_from_main
from xectrain.evaluation.passes import store_columns
from xectrain.evaluation.writers import artifact_metadata
from xectrain.run.data import Loaders
from xectrain.run.loop import Trainer
from xectrain.run.resume import BEST, LAST
from xectrain.run.tracking import Tracker


def run_directory(
    cfg: RunConfig, resumed: dict[str, Any] | None, main: bool = True
) -> tuple[RunConfig, Path]:
    """Name the run (kept when resuming, else tracking.run_name or <kind>-<time>) and make
    its folder <checkpoint.dir>/<name>; the name is rank 0's on every rank."""
    name = cfg.tracking.run_name
    if name is None and resumed is not None:
        name = (resumed.get("config") or {}).get("tracking", {}).get("run_name")
    if name is None:
        name = f"{cfg.model.kind}-{time.strftime('%Y%m%d-%H%M%S')}"
    name = broadcast_from_main(name)
    cfg = dataclasses.replace(cfg, tracking=dataclasses.replace(cfg.tracking, run_name=name))
    run_dir = Path(cfg.checkpoint.dir) / name
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
    return cfg, run_dir


def write_best_artifacts(tr: Trainer, evaluation: Any, run_dir: Path, tracker: Tracker) -> None:
    """Regressor, on a new best (epoch N): prediction CSVs, validation_results ROOT file and
    resolution PDFs named `..._<run>_ep<N>.*`, copied to the plain `..._<run>.*` names, which
    are logged to MLflow (replacing the previous best's). The run folder thus holds the plain
    set (always the best model's, also after a crash) and the `_ep<N>` sets of the
    checkpoint.best_artifacts_keep latest bests (older ones are deleted; with 0 only the plain
    set is written). The worst events are kept for the end of the run."""
    if not tr.cfg.checkpoint.save_artifacts or evaluation.regressor is None:
        return
    ev, run, keep = evaluation.regressor, run_dir.name, tr.cfg.checkpoint.best_artifacts_keep
    meta = artifact_metadata(tr.raw, tr.epoch, tr.cfg.data.val_split)
    name = f"{run}_ep{tr.epoch}" if keep > 0 else run
    extra = store_columns(ev)
    written = write_regressor_artifacts(run_dir, name, ev.results, ev.ids, meta, extra)
    if keep > 0:
        written = copy_set(written, name, run)
    prune_epoch_sets(run_dir, run, keep)
    for path in written.values():
        tracker.log_artifact(path)
    tr.best_worst = ev.worst


def write_final_artifacts(
    tr: Trainer, loaders: Loaders, scheme: Scheme, run_dir: Path, tracker: Tracker
) -> None:
    """End of the run (rank 0): worst-event displays, saliency and face importance of the best
    model, the ONNX export of the best model (checkpoint.export_onnx), the resolved config;
    everything small in the run folder goes to MLflow."""
    if tr.cfg.checkpoint.save_artifacts and tr.cfg.model.kind == "regressor":
        from xectrain.run.insight import write_insight_plots

        paths = plot_worst_events(tr.best_worst, run_dir, run_dir.name)
        paths += write_insight_plots(tr, loaders, scheme, run_dir)
        for path in paths:
            tracker.log_artifact(path, "worst_events" if "worst_" in path.name else None)
    tracker.log_artifact(run_dir / "config.yaml")
    if tr.cfg.checkpoint.export_onnx:
        c = tr.cfg.checkpoint
        try:
            tracker.log_artifact(export_best_onnx(run_dir, c.onnx_exporter, c.onnx_filename))
        except Exception as err:  # the trained run stands; the export can be redone by hand
            warnings.warn(
                f"checkpoint.export_onnx failed ({type(err).__name__}: {err}); the run and its "
                f"checkpoints are complete. Export by hand: xec export onnx "
                f"{run_dir / BEST} -o {run_dir / (c.onnx_filename or run_dir.name + '.onnx')} "
                f"--exporter {'torchscript' if c.onnx_exporter == 'dynamo' else 'dynamo'}",
                stacklevel=1,
            )


def export_best_onnx(run_dir: Path, exporter: str = "dynamo", filename: str | None = None) -> Path:
    """<run dir>/<filename> (default <run name>.onnx) from checkpoint_best (its EMA weights),
    or from checkpoint_last when no validation ever improved (e.g. no best metric was computed)."""
    from xectrain.serving.checkpoints import export_checkpoint

    source = run_dir / BEST if (run_dir / BEST).is_file() else run_dir / LAST
    out = run_dir / (filename or f"{run_dir.name}.onnx")
    return export_checkpoint(source, out, exporter=exporter)
