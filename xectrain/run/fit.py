"""A training run from start to end: setup, resume, the epoch loop, checkpoints, tracking.

    train(cfg)  ->  RunResult

setup (device, seed, scheme, loaders, model, optimizer) -> optional resume or encoder transfer
-> for each epoch: train_epoch, validate with the EMA model, checkpoint (last, best), log to
MLflow, artifacts on a new best -> final artifacts (worst events, saliency, face importance).
Only rank 0 writes; every rank runs the same number of batches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from torch.nn.parallel import DistributedDataParallel

from xecdata.protocols import BatchLoader
from xecdata.schemes import Scheme, UnknownSchemeError, get_scheme, parse_scheme_id
from xecmodel.kind import ModelKind
from xecmodel.regressor import XECRegressor
from xectrain.checkpoint import checkpoint_role, load_checkpoint
from xectrain.config import RunConfig, save_config, to_dict
from xectrain.engine.distributed import (
    World,
    barrier,
    set_deterministic,
    setup_world,
    teardown_world,
)
from xectrain.engine.steps import StepOps, build_model, collect_targets
from xectrain.run.data import Loaders, open_loaders
from xectrain.run.earlier_names import link_earlier_artifacts
from xectrain.run.ema import ModelEMA
from xectrain.run.loop import Trainer, train_epoch
from xectrain.run.optim import build_optimizer
from xectrain.run.outputs import run_directory, write_best_artifacts, write_final_artifacts
from xectrain.run.resume import restore_trainer, save_epoch_checkpoints
from xectrain.run.schedule import build_schedule
from xectrain.run.tracking import Tracker, system_metrics
from xectrain.run.validation import run_validation


@dataclass
class RunResult:
    """What a finished run leaves: folder, name, best metric, last metrics, MLflow run id."""

    run_dir: Path
    run_name: str
    best_metric: float
    metrics: dict[str, float] = field(default_factory=dict)
    mlflow_run_id: str | None = None
    history: list[tuple[int, float]] = field(default_factory=list)
    main: bool = True  # rank 0 (the process that wrote everything)


def train(cfg: RunConfig, loaders: Loaders | None = None) -> RunResult:
    """Train as configured (single process, or one rank of a torchrun job). `loaders` replaces
    the store loaders (tests, benchmarks); it must follow the xecdata.loaders contract."""
    world = setup_world(cfg.training.device)
    try:
        return _train(cfg, world, loaders)
    finally:
        teardown_world()


def resolve_scheme(cfg: RunConfig) -> Scheme:
    """The scheme of the run; `new` resolves to the latest version and is recorded as such.

    A scheme this installation does not define (a user scheme ingested from a YAML/JSON file)
    is taken from the definition the store recorded, so `--set data.scheme=<user id>` works
    without loading the file again.
    """
    try:
        return get_scheme(cfg.data.scheme)
    except UnknownSchemeError as exc:
        if not Path(cfg.data.store).exists():
            raise
        from xecdata.store import open_store

        store = open_store(cfg.data.store)
        name, version = parse_scheme_id(cfg.data.scheme)
        held = [parse_scheme_id(s) for s in store.schemes]
        versions = [v for n, v in held if n == name and (version is None or v == version)]
        if not versions:
            raise UnknownSchemeError(
                f"{exc}; store {cfg.data.store} holds {', '.join(store.schemes) or 'none'}: "
                "set data.scheme to one of those"
            ) from exc
        return store.scheme(f"{name}@{max(v for v in versions if v is not None)}")


def _resume_source(cfg: RunConfig, scheme: Scheme) -> tuple[dict[str, Any] | None, str | None]:
    """The checkpoint named by checkpoint.resume_from and what it is for (resume / encoder)."""
    path = cfg.checkpoint.resume_from
    if not path:
        return None, None
    ckpt = load_checkpoint(path, scheme={"id": scheme.id, "hash": scheme.hash})
    return ckpt, checkpoint_role(ckpt, cfg.model.kind, path)


def _encoder_source(cfg: RunConfig, scheme: Scheme) -> dict[str, Any] | None:
    """The checkpoint named by model.encoder_from, read before the loaders open (fail fast)."""
    if not cfg.model.encoder_from:
        return None
    return load_checkpoint(cfg.model.encoder_from, scheme={"id": scheme.id, "hash": scheme.hash})


def _prepare_model(
    cfg: RunConfig, scheme: Scheme, ops: StepOps, loader: BatchLoader, ckpt: dict | None,
    role: str | None,
    enc: dict | None = None,
) -> ModelKind:  # fmt: skip
    """Build the model; fit target transforms or take weights / encoder from checkpoints."""
    model: ModelKind = build_model(cfg, scheme)
    if role == "resume":
        assert ckpt is not None
        model.load_state_dict(ckpt["model"])
        return model
    if cfg.model.kind == "regressor":
        targets = collect_targets(loader, ops, cfg.training.transform_fit_batches)
        cast(XECRegressor, model).fit_transforms(targets)
    sources = [(ckpt, str(cfg.checkpoint.resume_from))] if role == "encoder" else []
    if enc is not None:
        sources.append((enc, str(cfg.model.encoder_from)))
    for source, _ in sources:
        assert source is not None
        weights = source.get("encoder") or (source.get("ema") or {}).get("model") or source["model"]
        model.load_encoder_state(weights)
    if cfg.model.freeze_encoder and cfg.model.kind == "regressor":
        model.encoder.requires_grad_(False)
    return model


def _make_trainer(
    cfg: RunConfig, world: World, ops: StepOps, model: ModelKind, steps_per_epoch: int
) -> Trainer:
    """Move the model to its device, wrap it (DDP, compile) and create the optimizer state."""
    t = cfg.training
    raw = cast(ModelKind, model.to(world.device))
    optimizer = build_optimizer(raw, t)
    schedule = build_schedule(t, steps_per_epoch)
    ema = ModelEMA(raw, t.ema_decay, t.ema_warmup_steps) if t.ema_decay is not None else None
    fp16 = t.amp == "fp16" and world.device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if fp16 else None
    wrapped: torch.nn.Module = raw
    if world.distributed:
        ids = [world.device.index] if world.device.type == "cuda" else None
        wrapped = DistributedDataParallel(raw, device_ids=ids)
    if t.compile:
        wrapped = torch.compile(wrapped)  # type: ignore[assignment]
    tr = Trainer(cfg, world, ops, wrapped, raw, optimizer, schedule, ema, scaler)
    tr.skipped = torch.zeros((), device=world.device)  # counted on the device, no sync
    return tr


def _train(cfg: RunConfig, world: World, loaders: Loaders | None) -> RunResult:
    torch.manual_seed(cfg.training.seed)  # identical initial weights on every rank
    if cfg.training.deterministic:
        set_deterministic(True)
    scheme = resolve_scheme(cfg)
    ckpt, role = _resume_source(cfg, scheme)
    enc = _encoder_source(cfg, scheme)
    cfg, run_dir = run_directory(cfg, ckpt if role == "resume" else None, world.main)
    ops = StepOps(cfg)
    loaders = loaders or open_loaders(cfg, world, ops, scheme)
    model = _prepare_model(cfg, scheme, ops, loaders.train, ckpt, role, enc)
    steps = math.ceil(loaders.n_train / cfg.training.grad_accum_steps)
    tr = _make_trainer(cfg, world, ops, model, steps)
    resume_run_id = None
    if role == "resume":
        assert ckpt is not None
        resume_run_id = restore_trainer(tr, ckpt, steps)
    tracker = Tracker(cfg.tracking, world.rank, cfg.model.kind)
    params = to_dict(cfg) | {"scheme_hash": scheme.hash, "world_size": world.world_size}
    run_id = tracker.start(run_dir.name, params, resume_run_id, tags={"kind": cfg.model.kind})
    if world.main:
        save_config(cfg, run_dir / "config.yaml")
    try:
        metrics = _epochs(tr, loaders, scheme, run_dir, tracker, run_id)
        if world.main:
            write_final_artifacts(tr, loaders, scheme, run_dir, tracker)
            link_earlier_artifacts(run_dir, cfg.model.kind)
    except BaseException as err:
        tracker.end("KILLED" if isinstance(err, KeyboardInterrupt) else "FAILED")
        raise
    tracker.end()
    barrier()
    return RunResult(run_dir, run_dir.name, tr.best, metrics, run_id, tr.history, world.main)


def _epochs(
    tr: Trainer,
    loaders: Loaders,
    scheme: Scheme,
    run_dir: Path,
    tracker: Tracker,
    run_id: str | None,
) -> dict[str, float]:
    """The epoch loop: train, validate, checkpoint, log. Returns the last epoch's metrics."""
    cfg = tr.cfg
    metrics: dict[str, float] = {}
    while tr.epoch < cfg.training.epochs:
        epoch = tr.epoch
        loaders.train.set_epoch(epoch)
        stats = train_epoch(tr, loaders.train, loaders.n_train)
        metrics = dict(stats.metrics)
        if cfg.tracking.system_metrics:
            metrics |= system_metrics(
                stats.events, stats.seconds, stats.wait_seconds, tr.device, stats.batches
            )
        last = epoch + 1 == cfg.training.epochs
        evaluation = None
        if (epoch + 1) % cfg.training.val_every == 0 or last:
            evaluation = run_validation(tr, loaders, scheme, run_dir, epoch, last)
            metrics |= evaluation.metrics
        tr.epoch = epoch + 1
        improved = _update_best(tr, metrics)
        if tr.world.main:
            save_epoch_checkpoints(tr, loaders.train, scheme, run_dir, run_id, improved)
            if improved and evaluation is not None:
                write_best_artifacts(tr, evaluation, run_dir, tracker)
            link_earlier_artifacts(run_dir, cfg.model.kind)  # the documented names too
        tracker.log_metrics(metrics, step=tr.epoch)
        barrier()
    return metrics


def _update_best(tr: Trainer, metrics: dict[str, float]) -> bool:
    """Record a new best of checkpoint.best_metric (lower is better)."""
    name = tr.cfg.checkpoint.best_metric
    value = metrics.get(name)
    if value is None:
        return False
    if not math.isfinite(value) or value >= tr.best:
        return False
    tr.best = value
    return True
