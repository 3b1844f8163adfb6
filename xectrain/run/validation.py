"""Validation of one epoch for any model kind, with the EMA model (see evaluate.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

from xecdata.schemes import Scheme
from xecmodel.kind import ReconstructionKind
from xecmodel.regressor import XECRegressor
from xectrain.evaluation.passes import RegressorEval, validate_reconstruction, validate_regressor
from xectrain.evaluation.writers import prediction_writer, predictions_path
from xectrain.run.data import Loaders
from xectrain.run.loop import Trainer, autocast


@dataclass
class Evaluation:
    """Metrics of a validation pass (val/...) and, for the regressor, its predictions."""

    metrics: dict[str, float]
    regressor: RegressorEval | None = None


def run_validation(
    tr: Trainer, loaders: Loaders, scheme: Scheme, run_dir: Path, epoch: int, last: bool
) -> Evaluation:
    """Validate after `epoch` (0-based); MAE / inpainter predictions go to ROOT every
    checkpoint.predictions_every epochs and after the last (one file per rank under DDP)."""
    cfg = tr.cfg
    model = tr.eval_model
    loaders.val.set_epoch(0)  # the same events, in the same order, every time
    if model.task_names:  # per-event task outputs (the kind's declaration), else filled sensors
        ev = validate_regressor(cast(XECRegressor, model), tr.ops, loaders.val, loaders.n_val,
                                lambda: autocast(tr), scheme,
                                cfg.checkpoint.worst_events)  # fmt: skip
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
            cast(ReconstructionKind, model),
            loaders.val,
            loaders.n_val,
            lambda: autocast(tr),
            cfg.training.seed,
            writer,
        )
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is not None:
        writer.close()
    return Evaluation(metrics)
