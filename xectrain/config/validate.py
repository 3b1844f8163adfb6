"""Consistency checks of a run configuration that types alone cannot express.

All problems are collected and raised together, each naming its key and the fix, so a user
fixes a config in one pass instead of one error per run (fail fast, before any data is read).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from xecdata.facemaps import FINE_SHAPE
from xecmodel import TASKS, TaskSpec

from .sections import RunConfig
from .typed import ConfigError

SCHEME_ID = re.compile(r"^[A-Za-z0-9_.-]+(@[0-9]+)?$")


def validate(cfg: RunConfig) -> None:
    """Raise ConfigError listing every inconsistent setting of `cfg`."""
    problems: list[str] = []
    for check in (_data, _model, _tasks, _training, _checkpoint, _tracking):
        check(cfg, problems.append)
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))


Report = Callable[[str], None]


def _positive(report: Report, key: str, value: float | None, allow_zero: bool = False) -> None:
    if value is None:
        return
    if value < 0 or (value == 0 and not allow_zero):
        report(f"{key}: must be {'>= 0' if allow_zero else '> 0'}, got {value}")


def _fraction(report: Report, key: str, value: float, low_open: bool = False) -> None:
    if not (0 < value < 1 if low_open else 0 <= value < 1):
        report(f"{key}: must lie in {'(0, 1)' if low_open else '[0, 1)'}, got {value}")


def _data(cfg: RunConfig, report: Report) -> None:
    d = cfg.data
    if not SCHEME_ID.match(d.scheme):
        report(f"data.scheme: {d.scheme!r} is not a scheme id; use name@version, e.g. new@1")
    for key in ("batch_size", "val_batch_size", "loader_threads"):
        _positive(report, f"data.{key}", getattr(d, key))
    for key in ("max_train_batches", "max_val_batches"):
        _positive(report, f"data.{key}", getattr(d, key))
    if d.train_split == d.val_split:
        report(f"data.val_split: equals data.train_split ({d.val_split!r}); use held-out events")


def _model(cfg: RunConfig, report: Report) -> None:
    m = cfg.model
    if len(m.outer_fine_pool) != 2 or any(p < 1 for p in m.outer_fine_pool):
        report(
            f"model.outer_fine_pool: give two positive integers (z, phi), not {m.outer_fine_pool}"
        )
    elif any(n % p for n, p in zip(FINE_SHAPE, m.outer_fine_pool, strict=True)):
        report(
            f"model.outer_fine_pool: {m.outer_fine_pool} must divide the fine outer grid "
            f"{list(FINE_SHAPE)} (e.g. [3, 3], [5, 4], [1, 1])"
        )
    _fraction(report, "model.drop_path", m.drop_path)
    _fraction(report, "model.readout_threshold", m.readout_threshold)
    if m.kind in ("mae", "inpainter"):
        _fraction(report, "model.mask_ratio", m.mask_ratio, low_open=True)
        _positive(report, "model.time_mask_ratio_scale", m.time_mask_ratio_scale)
        if m.time_mask_ratio_scale != 1.0 and m.mask_pool != "valid_npho":
            report(
                "model.time_mask_ratio_scale: only with model.mask_pool=valid_npho can masking "
                "prefer sensors with a valid time (with valid_time every candidate has one)"
            )
        _recon(cfg, report)
    if m.kind == "mae" and (m.encoder_from or m.freeze_encoder):
        report("model.encoder_from, model.freeze_encoder: an MAE trains its own encoder; unset")
    if m.freeze_encoder and not (m.encoder_from or cfg.checkpoint.resume_from):
        report(
            "model.freeze_encoder: true needs a trained encoder; set model.encoder_from to an "
            "MAE checkpoint or set model.freeze_encoder=false"
        )


def _recon(cfg: RunConfig, report: Report) -> None:
    r = cfg.recon
    for key in ("loss_beta", "npho_weight", "time_weight", "npho_threshold"):
        _positive(report, f"recon.{key}", getattr(r, key), allow_zero=key != "loss_beta")


def _tasks(cfg: RunConfig, report: Report) -> None:
    if cfg.model.kind == "regressor" and not cfg.enabled_tasks:
        report("tasks: no task is enabled; e.g. --set tasks.angle.enabled=true (or --tasks angle)")
    if cfg.model.kind != "regressor" and cfg.enabled_tasks:
        report(f"tasks: {cfg.enabled_tasks} enabled, but tasks apply to the regressor only")
    for name, task in cfg.tasks.items():
        try:  # xecmodel decides which losses, options and transforms serve which task
            TaskSpec(name, task.loss, dict(task.loss_kwargs), task.weight, task.transform)
        except ValueError as err:
            report(f"tasks.{name}: {err}")
    for name, rw in cfg.reweighting.items():
        if not rw.enabled:
            continue
        if cfg.model.kind != "regressor":
            report(f"reweighting.{name}.enabled: reweighting applies to the regressor only")
        elif name not in cfg.enabled_tasks:
            report(f"reweighting.{name}.enabled: task {name} is not enabled (tasks.{name}.enabled)")
        dim = TASKS[name].target_dim
        if not 1 <= len(rw.bins) <= dim or any(b < 1 for b in rw.bins):
            report(f"reweighting.{name}.bins: give 1 to {dim} positive bin counts (a shorter "
                   f"list repeats its last), got {rw.bins}")  # fmt: skip
        _positive(report, f"reweighting.{name}.eps", rw.eps)
    eps = {rw.eps for rw in cfg.reweighting.values() if rw.enabled}
    if len(eps) > 1:
        report(f"reweighting.*.eps: enabled tasks must share one eps (one reweighter), got {eps}")


def _training(cfg: RunConfig, report: Report) -> None:
    t = cfg.training
    for key in ("epochs", "lr", "grad_accum_steps", "log_every", "val_every", "restart_epochs"):
        _positive(report, f"training.{key}", getattr(t, key))
    for key in ("min_lr", "weight_decay", "warmup_epochs", "ema_warmup_steps"):
        _positive(report, f"training.{key}", getattr(t, key), allow_zero=True)
    _positive(report, "training.grad_clip", t.grad_clip)
    if t.min_lr > t.lr:
        report(f"training.min_lr: {t.min_lr} is above training.lr {t.lr}")
    if t.ema_decay is not None:
        _fraction(report, "training.ema_decay", t.ema_decay)
    if t.restart_mult < 1:
        report(f"training.restart_mult: must be >= 1, got {t.restart_mult}")
    _fraction(report, "training.onecycle_pct_start", t.onecycle_pct_start, low_open=True)
    if len(t.betas) != 2 or not all(0 <= b < 1 for b in t.betas):
        report(f"training.betas: give two numbers in [0, 1), got {t.betas}")
    a = t.augment
    _fraction(report, "training.augment.channel_dropout", a.channel_dropout)
    _fraction(report, "training.augment.energy_scale", a.energy_scale)
    _positive(report, "training.augment.npho_noise", a.npho_noise, allow_zero=True)
    _positive(report, "training.augment.time_jitter_ps", a.time_jitter_ps, allow_zero=True)


def _checkpoint(cfg: RunConfig, report: Report) -> None:
    c = cfg.checkpoint
    _positive(report, "checkpoint.every", c.every)
    _positive(report, "checkpoint.keep", c.keep, allow_zero=True)
    _positive(report, "checkpoint.best_artifacts_keep", c.best_artifacts_keep, allow_zero=True)
    _positive(report, "checkpoint.predictions_every", c.predictions_every)
    _positive(report, "checkpoint.encoder_every", c.encoder_every, allow_zero=True)
    _positive(report, "checkpoint.worst_events", c.worst_events, allow_zero=True)
    if not c.best_metric.startswith("val/"):
        report(f"checkpoint.best_metric: {c.best_metric!r} must be a validation metric (val/...)")
    for flag in ("refresh_lr", "reset_epoch", "new_mlflow_run"):
        if getattr(c, flag) and not c.resume_from:
            report(f"checkpoint.{flag}: only applies when resuming; set checkpoint.resume_from")
    if c.refresh_lr and c.reset_epoch:
        report("checkpoint.refresh_lr: reset_epoch already starts a fresh schedule; set only one")


def _tracking(cfg: RunConfig, report: Report) -> None:
    tr = cfg.tracking
    for key in ("uri", "experiment", "artifact_location"):
        if getattr(tr, key) == "":
            report(f"tracking.{key}: empty; give a value or null (environment, then default)")
    if tr.run_name is not None and (not tr.run_name or "/" in tr.run_name):
        report(f"tracking.run_name: {tr.run_name!r} must be a non-empty name without '/'")
