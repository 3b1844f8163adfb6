"""Checkpoints of a training run, saved and restored in one place: what a trainer writes at
an epoch end (last, best, snapshots, MAE encoders) and how it continues from one."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from xecdata.protocols import BatchLoader
from xecdata.schemes import Scheme
from xectrain.checkpoint import (
    make_checkpoint,
    prune_snapshots,
    save_checkpoint,
    save_encoder,
    snapshot_path,
)
from xectrain.config import to_dict
from xectrain.run.ema import ModelEMA
from xectrain.run.loop import Trainer
from xectrain.run.schedule import LRSchedule, build_schedule

LAST, BEST = "checkpoint_last.pth", "checkpoint_best.pth"


def rng_state() -> dict[str, Any]:
    """Torch RNG states (CPU and every CUDA device): masking, dropout and drop-path draw here."""
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def trainer_checkpoint(
    tr: Trainer, loader: BatchLoader, scheme: Scheme, run_id: str | None
) -> dict[str, Any]:
    """Everything to resume this run exactly, or to serve its model."""
    tasks = tr.raw.model_config.get("tasks")
    return make_checkpoint(
        tr.cfg.model.kind, tr.raw.state_dict(), model_config=tr.raw.model_config,
        ema=tr.ema.state_dict() if tr.ema is not None else None,
        optimizer=tr.optimizer.state_dict(), scheduler=tr.schedule.state_dict(),
        scaler=tr.scaler.state_dict() if tr.scaler is not None else None,
        epoch=tr.epoch, step=tr.step, loader=loader.state_dict(), rng=rng_state(),
        best_metric=tr.best, best_metric_name=tr.cfg.checkpoint.best_metric,
        skipped_steps=float(tr.skipped), config=to_dict(tr.cfg),
        scheme={"id": scheme.id, "hash": scheme.hash}, transforms=tasks, mlflow_run_id=run_id,
    )  # fmt: skip


def save_epoch_checkpoints(
    tr: Trainer,
    loader: BatchLoader,
    scheme: Scheme,
    run_dir: Path,
    run_id: str | None,
    improved: bool,
) -> None:
    """checkpoint_last every checkpoint.every epochs and at the end, checkpoint_best on a new
    best (plus the MAE encoder), and the last checkpoint.keep per-epoch snapshots. An MAE also
    writes its (EMA) encoder as mae_encoder_epoch_NNN.pth every checkpoint.encoder_every epochs
    and at the end, to fine-tune from (mae_encoder_best.pth: the best one)."""
    c = tr.cfg.checkpoint
    last = tr.epoch >= tr.cfg.training.epochs
    encoder_due = tr.cfg.model.kind == "mae" and c.encoder_every > 0
    encoder_due = encoder_due and (last or tr.epoch % c.encoder_every == 0)
    if not (improved or last or tr.epoch % c.every == 0 or c.keep or encoder_due):
        return
    ckpt = trainer_checkpoint(tr, loader, scheme, run_id)
    if last or tr.epoch % c.every == 0:
        save_checkpoint(run_dir / LAST, ckpt)
    if encoder_due:
        save_encoder(run_dir / f"mae_encoder_epoch_{tr.epoch:03d}.pth", ckpt)
    if improved:
        save_checkpoint(run_dir / BEST, ckpt)
        if tr.cfg.model.kind == "mae":
            save_encoder(run_dir / "mae_encoder_best.pth", ckpt)
    if c.keep:
        save_checkpoint(snapshot_path(run_dir, tr.epoch), ckpt)
        prune_snapshots(run_dir, c.keep)


def restore_trainer(tr: Trainer, ckpt: dict[str, Any], steps_per_epoch: int) -> str | None:
    """Continue from a checkpoint of the same kind (weights are already in tr.raw); returns
    the MLflow run id to continue, or None for a new MLflow run."""
    c = tr.cfg.checkpoint
    if tr.ema is not None:
        if ckpt.get("ema"):
            tr.ema.load_state_dict(ckpt["ema"])
        else:  # no EMA in the checkpoint: start the average from the loaded weights
            tr.ema = ModelEMA(tr.raw, tr.ema.decay, tr.ema.warmup_steps)
    run_id = None if c.new_mlflow_run else ckpt.get("mlflow_run_id")
    if c.reset_epoch:
        return run_id  # weights only: fresh optimizer, schedule and epoch counter
    tr.optimizer.load_state_dict(ckpt["optimizer"])
    if tr.scaler is not None and ckpt.get("scaler"):
        tr.scaler.load_state_dict(ckpt["scaler"])
    tr.epoch, tr.step = int(ckpt["epoch"]), int(ckpt["step"])
    best = ckpt.get("best_metric")
    tr.best = float(best) if best is not None else math.inf
    tr.skipped = torch.tensor(float(ckpt.get("skipped_steps", 0.0)), device=tr.device)
    remaining = tr.cfg.training.epochs - tr.epoch
    if c.refresh_lr and remaining > 0:
        tr.schedule = build_schedule(tr.cfg.training, steps_per_epoch, tr.step, remaining)
    else:
        tr.schedule = LRSchedule.from_state_dict(ckpt["scheduler"])
    if ckpt.get("rng"):
        set_rng_state(ckpt["rng"])
    return run_id
