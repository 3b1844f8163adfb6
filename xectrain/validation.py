"""Validation of one epoch for any model kind, with the EMA model (see evaluate.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xecdata.schemes import Scheme

from .artifacts import PredictionRootWriter
from .evaluate import RegressorEval, validate_reconstruction, validate_regressor
from .loop import Trainer, autocast


@dataclass
class Evaluation:
    """Metrics of a validation pass (val/...) and, for the regressor, its predictions."""

    metrics: dict[str, float]
    regressor: RegressorEval | None = None


def predictions_path(
    run_dir: Path, kind: str, epoch: int, rank: int = 0, world_size: int = 1
) -> Path:
    """`<kind>_predictions_epoch_NNN.root` in the run folder (epoch 1-based); under DDP each
    rank writes its share of the split to `<kind>_predictions_epoch_NNN_rank<r>of<W>.root`
    (together they hold every validation event exactly once)."""
    part = f"_rank{rank}of{world_size}" if world_size > 1 else ""
    return run_dir / f"{kind}_predictions_epoch_{epoch:03d}{part}.root"


def prediction_writer(
    kind: str,
    predict_time: bool,
    scheme: Scheme,
    geometry_id: str,
    epoch: int,
    path: Path,
    rank: int = 0,
    world_size: int = 1,
) -> PredictionRootWriter:
    """Streaming ROOT writer of MAE (per event) or inpainter (per masked sensor) predictions;
    without predict_time (npho-only mode) the file holds no truth / predicted time."""
    channels = ("npho", "time") if predict_time else ("npho",)
    meta: dict[str, str | int | float] = {
        "kind": kind,
        "units": "npho: photons, time: ns" + (", masked_*: normalized" if kind == "mae" else ""),
        "scheme_id": scheme.id,
        "scheme_hash": scheme.hash,
        "npho_scale": float(scheme.npho_scale),
        "time_scale": float(scheme.time_scale),
        "sentinel_time": float(scheme.time_sentinel),
        "sentinel_npho": float(scheme.npho_sentinel),
        "geometry_id": geometry_id,
        "epoch": epoch,
        "face_names": "inner,outer,us,ds,top,bottom",
        "rank": rank,
        "world_size": world_size,
    }
    layout = "event" if kind == "mae" else "sensor"
    return PredictionRootWriter(path, layout, channels, meta)


def run_validation(
    tr: Trainer, loaders: Any, scheme: Scheme, run_dir: Path, epoch: int, last: bool
) -> Evaluation:
    """Validate after `epoch` (0-based); MAE / inpainter predictions go to ROOT every
    checkpoint.predictions_every epochs and after the last (one file per rank under DDP)."""
    cfg = tr.cfg
    model = tr.eval_model
    loaders.val.set_epoch(0)  # the same events, in the same order, every time
    if cfg.model.kind == "regressor":
        ev = validate_regressor(model, tr.ops, loaders.val, loaders.n_val, lambda: autocast(tr),
                                scheme, cfg.checkpoint.worst_events)  # fmt: skip
        return Evaluation(ev.metrics, ev)
    write = cfg.checkpoint.save_artifacts and (
        (epoch + 1) % cfg.checkpoint.predictions_every == 0 or last
    )
    rank, world_size = tr.world.rank, tr.world.world_size
    path = predictions_path(run_dir, cfg.model.kind, epoch + 1, rank, world_size)
    writer = None
    if write:
        meta = (tr.raw.geometry_id, epoch + 1, path, rank, world_size)
        writer = prediction_writer(cfg.model.kind, cfg.recon.predict_time, scheme, *meta)
    try:
        metrics = validate_reconstruction(
            model, loaders.val, loaders.n_val, lambda: autocast(tr), cfg.training.seed, writer
        )
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is not None:
        writer.close()
    return Evaluation(metrics)
