"""The I/O side of a run: loaders, the run folder, checkpoint save / restore, artifacts."""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from xecdata.schemes import Scheme

from .artifacts import plot_worst_events, write_regressor_artifacts
from .artifacts.regressor import copy_set, prune_epoch_sets
from .checkpoint import (
    make_checkpoint,
    prune_snapshots,
    save_checkpoint,
    save_encoder,
    snapshot_path,
)
from .config import RunConfig, to_dict
from .distributed import World, broadcast_from_main
from .ema import ModelEMA
from .evaluate import store_columns
from .loop import Trainer
from .schedule import LRSchedule, build_schedule
from .tasks import StepOps
from .tracking import Tracker

LAST, BEST = "checkpoint_last.pth", "checkpoint_best.pth"
ID_TARGETS = ("run", "event")


@dataclass
class Loaders:
    """Training and validation loaders and the batches per epoch each will run (per rank)."""

    train: Any
    val: Any
    n_train: int
    n_val: int


def _cap(n: int, limit: int | None) -> int:
    return n if limit is None else min(n, limit)


def loader_options(cfg: RunConfig) -> tuple[Any, Any]:
    """(augment, reweight) configs of xecdata.loaders from the run config."""
    from xecdata.loaders import AugmentConfig, ReweightConfig

    augment = AugmentConfig(**dataclasses.asdict(cfg.training.augment))
    bins: dict[str, Any] = {}
    for task, rw in cfg.reweighting.items():
        if rw.enabled:
            name = "uvw" if task == "uvwFI" else task
            bins[name] = tuple(rw.bins) if name in ("angle", "uvw") else rw.bins[0]
    eps = [rw.eps for rw in cfg.reweighting.values() if rw.enabled]
    reweight = ReweightConfig(**bins, eps=eps[0]) if bins else None
    return augment, reweight


def open_loaders(cfg: RunConfig, world: World, ops: StepOps, scheme: Scheme) -> Loaders:
    """Open the train loader (shuffled, sharded, augmented, reweighted) and the val loader."""
    from xecdata.loaders import open_loader

    d = cfg.data
    augment, reweight = loader_options(cfg)
    common: dict[str, Any] = dict(
        scheme=scheme.id, device=world.device, backend=d.backend, seed=cfg.training.seed,
        rank=world.rank, world_size=world.world_size, threads=d.loader_threads,
    )  # fmt: skip
    train = open_loader(
        d.store, split=d.train_split, batch_size=d.batch_size, shuffle=True,
        targets=ops.targets(), reweight=reweight, augment=augment, drop_last=True, **common,
    )  # fmt: skip
    # validation: every event exactly once over the ranks (no padding repeats), unless the
    # split is smaller than the world (then a rank would have nothing: pad as training does)
    val_kw: dict[str, Any] = dict(
        split=d.val_split, batch_size=d.val_batch_size or d.batch_size, shuffle=False,
        drop_last=False, even_batches=False, **common,
    )  # fmt: skip
    val_targets = [*ops.targets(), *ID_TARGETS]
    try:
        val = open_loader(d.store, targets=val_targets, **val_kw)
    except KeyError:  # a store without run / event ids
        val_targets = ops.targets()
        val = open_loader(d.store, targets=val_targets, **val_kw)
    if val.layout.n_split < world.world_size:
        val = open_loader(d.store, targets=val_targets, **(val_kw | {"even_batches": True}))
    for split, loader in ((d.train_split, train), (d.val_split, val)):
        if len(loader) == 0:
            raise ValueError(
                f"store {d.store}: split {split!r} gives no batch of {d.batch_size} events per "
                "process; lower data.batch_size or re-ingest with more events in that split "
                "(xec ingest --val-fraction / --chunk-events)"
            )
    n_train, n_val = _cap(len(train), d.max_train_batches), _cap(len(val), d.max_val_batches)
    return Loaders(train, val, n_train, n_val)


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
    tr: Trainer, loader: Any, scheme: Scheme, run_id: str | None
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
    tr: Trainer, loader: Any, scheme: Scheme, run_dir: Path, run_id: str | None, improved: bool
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


def artifact_metadata(model: Any, epoch: int, split: str) -> dict[str, str | int | float]:
    """Provenance written into the validation ROOT file of a regressor."""
    return {"scheme_id": model.scheme_id, "scheme_hash": model.scheme_hash,
            "geometry_id": model.geometry_id, "epoch": epoch, "split": split}  # fmt: skip


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
        from .insight import write_insight_plots

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
    from .serve import export_checkpoint

    source = run_dir / BEST if (run_dir / BEST).is_file() else run_dir / LAST
    out = run_dir / (filename or f"{run_dir.name}.onnx")
    return export_checkpoint(source, out, exporter=exporter)
