"""The configuration keys of the earlier tool (xec-ml-wl) and their xec equivalents.

One entry per key its reference documentation lists for the regressor (`train_config.yaml`),
MAE (`mae_config.yaml`) and inpainter (`inpainter_config.yaml`) configs, by the documented
dotted path (`*` stands for a task name). An entry either names the xec key it becomes, with
the value conversion, or says why nothing in xec corresponds. `migrate.py` applies the table;
`xec config migrate --keys` prints it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, get_args

from xecdata.tasks import REGRESSION
from xecmodel import LOSSES, TASKS
from xecmodel.recon import RECON_LOSSES

from .sections import KINDS, REWEIGHT_TASKS, TrainingConfig
from .typed import field_types


class NotMigrated(Exception):
    """A value of the earlier tool with no xec equivalent; the message says why."""


@dataclass(frozen=True)
class Context:
    """What a conversion may look at besides the value: the model kind, the task of a
    `tasks.*` / `reweighting.*` key, and the whole old configuration."""

    kind: str
    task: str | None
    old: dict[str, Any]
    store: str | None = None


# A conversion: (value, context) -> {xec dotted key: value}; raises NotMigrated.
Convert = Callable[[Any, Context], dict[str, Any]]


@dataclass(frozen=True)
class OldKey:
    """How one key of the earlier tool migrates."""

    new: str | None
    """The xec key it sets (`{task}` filled in); None: no xec equivalent (see note)."""
    note: str = ""
    """The value conversion when mapped, or why it is not migrated."""
    convert: Convert | None = None
    """Value conversion; None copies the value to `new`."""
    kinds: tuple[str, ...] = field(default=KINDS)
    """Model kinds the key applies to; in other kinds it is not migrated."""


RECON_KINDS = ("mae", "inpainter")


def _task_key(ctx: Context, name: str) -> str:
    return f"tasks.{ctx.task}.{name}"


def _loss(value: Any, ctx: Context) -> dict[str, Any]:
    if value not in LOSSES:
        raise NotMigrated(f"loss {value!r} does not exist in xec (losses: {', '.join(LOSSES)})")
    return {_task_key(ctx, "loss"): value}


def _old_loss(ctx: Context) -> str:
    task = (ctx.old.get("tasks") or {}).get(ctx.task) or {}
    return str(task.get("loss_fn") or TASKS[str(ctx.task)].default_loss)


def _loss_beta(value: Any, ctx: Context) -> dict[str, Any]:
    loss = _old_loss(ctx)
    if loss in ("smooth_l1", "relative_smooth_l1"):
        return {_task_key(ctx, "loss_kwargs"): {"beta": float(value)}}
    if loss == "huber":
        return {_task_key(ctx, "loss_kwargs"): {"delta": float(value)}}
    raise NotMigrated(f"loss {loss} has no beta (the earlier tool ignored it too)")


def _log_transform(value: Any, ctx: Context) -> dict[str, Any]:
    if TASKS[str(ctx.task)].kind != REGRESSION:
        if value:
            raise NotMigrated(f"{ctx.task} is not a regression task; it takes no transform")
        return {}
    return {_task_key(ctx, "transform"): "log" if value else "identity"}


def _bins(value: Any, ctx: Context) -> dict[str, Any]:
    task = str(ctx.task)
    if task not in REWEIGHT_TASKS:
        raise NotMigrated(f"xec reweights {', '.join(REWEIGHT_TASKS)} only")
    bins = [int(b) for b in (value if isinstance(value, list) else [value])]
    dim = TASKS[task].target_dim
    if len(bins) > dim:
        raise NotMigrated(f"{len(bins)} bin counts for the {dim} components of {task}")
    if len(bins) > 1:  # uvwFI: (u, v) counts, "the same for w": the last repeats
        bins += bins[-1:] * (dim - len(bins))
    return {f"reweighting.{task}.bins": bins}


def _reweight_enabled(value: Any, ctx: Context) -> dict[str, Any]:
    if str(ctx.task) not in REWEIGHT_TASKS:
        raise NotMigrated(f"xec reweights {', '.join(REWEIGHT_TASKS)} only")
    return {f"reweighting.{ctx.task}.enabled": bool(value)}


SCHEDULERS: tuple[str, ...] = get_args(field_types(TrainingConfig)["scheduler"])
_SCHEDULER_ALIASES = {"one_cycle": "onecycle", "none": "constant", "null": "constant"}


def _scheduler(value: Any, ctx: Context) -> dict[str, Any]:
    name = "constant" if value is None else str(value).lower()
    name = _SCHEDULER_ALIASES.get(name, name)
    if name not in SCHEDULERS:
        raise NotMigrated(f"schedule {value!r} does not exist in xec ({', '.join(SCHEDULERS)})")
    return {"training.scheduler": name}


def _grad_clip(value: Any, ctx: Context) -> dict[str, Any]:
    return {"training.grad_clip": None if not value else float(value)}


def _encoder_from(value: Any, ctx: Context) -> dict[str, Any]:
    return {"model.encoder_from": value or None}


def _recon_loss(value: Any, ctx: Context) -> dict[str, Any]:
    if value not in RECON_LOSSES:
        raise NotMigrated(f"loss {value!r} does not exist in xec ({', '.join(RECON_LOSSES)})")
    return {"recon.loss": value}


def _predict_channels(value: Any, ctx: Context) -> dict[str, Any]:
    channels = [value] if isinstance(value, str) else list(value or [])
    if channels == ["npho"]:
        return {"recon.predict_time": False}
    if sorted(channels) == ["npho", "time"]:
        return {"recon.predict_time": True}
    raise NotMigrated(f"channels {channels}: xec predicts [npho] or [npho, time]")


def _save_interval(value: Any, ctx: Context) -> dict[str, Any]:
    out: dict[str, Any] = {"checkpoint.predictions_every": int(value)}
    if ctx.kind == "mae":
        out["checkpoint.encoder_every"] = int(value)
    return out


ROOT_INPUT_REASON = (
    "xec trains from a Zarr store, not from ROOT files: ingest them with `xec ingest FILES "
    "-o STORE` (validation events are a held-out split of the store) and migrate with --store "
    "STORE, or train with --store STORE"
)


def _store(value: Any, ctx: Context) -> dict[str, Any]:
    if ctx.store is None:
        raise NotMigrated(ROOT_INPUT_REASON)
    return {"data.store": ctx.store}


def _same(new: str, note: str = "", kinds: tuple[str, ...] = KINDS) -> OldKey:
    return OldKey(new, note, kinds=kinds)


OLD_KEYS: dict[str, OldKey] = {
    # data
    "data.train_path": OldKey("data.store", "the store ingested from these files", _store),
    "data.val_path": OldKey("data.store", "validation: the store's val split", _store),
    "data.batch_size": _same("data.batch_size"),
    "training.batch_size": _same("data.batch_size", "batch size per process"),
    "data.chunksize": OldKey(
        None,
        "events per ROOT read; xec reads store chunks whose size is "
        "fixed at ingest (xec ingest --chunk-events)",
    ),
    "data.num_threads": _same("data.loader_threads", "threads decoding store chunks"),
    # normalization: the five values together select a scheme (see migrate.py)
    "normalization.npho_scale": OldKey("data.scheme", "with the other normalization values"),
    "normalization.npho_scale2": OldKey("data.scheme", "with the other normalization values"),
    "normalization.time_scale": OldKey("data.scheme", "with the other normalization values"),
    "normalization.time_shift": OldKey("data.scheme", "with the other normalization values"),
    "normalization.sentinel_value": OldKey("data.scheme", "with the other normalization values"),
    # model
    "model.outer_mode": _same("model.outer_mode"),
    "model.outer_fine_pool": _same("model.outer_fine_pool"),
    "model.mask_ratio": _same("model.mask_ratio", kinds=RECON_KINDS),
    "model.time_mask_ratio_scale": _same("model.time_mask_ratio_scale", kinds=RECON_KINDS),
    "model.freeze_encoder": _same("model.freeze_encoder"),
    # training
    "training.epochs": _same("training.epochs"),
    "training.lr": _same("training.lr"),
    "training.weight_decay": _same("training.weight_decay"),
    "training.warmup_epochs": _same("training.warmup_epochs"),
    "training.ema_decay": _same("training.ema_decay", "null disables EMA, as before"),
    "training.grad_clip": OldKey("training.grad_clip", "0 (off) becomes null", _grad_clip),
    "training.grad_accum_steps": _same("training.grad_accum_steps"),
    "training.lr_scheduler": OldKey("training.scheduler", "none becomes constant", _scheduler),
    "training.compile": _same("training.compile"),
    "training.mae_checkpoint": OldKey("model.encoder_from", "'' becomes null", _encoder_from),
    # MAE / inpainter reconstruction loss
    "training.loss_fn": OldKey("recon.loss", "", _recon_loss, RECON_KINDS),
    "training.npho_weight": _same("recon.npho_weight", kinds=RECON_KINDS),
    "training.time_weight": _same("recon.time_weight", kinds=RECON_KINDS),
    "training.auto_channel_weight": _same("recon.learn_channel_logvars", kinds=RECON_KINDS),
    "training.learn_channel_logvars": _same("recon.learn_channel_logvars", kinds=RECON_KINDS),
    "training.npho_threshold": _same("recon.npho_threshold", kinds=RECON_KINDS),
    "training.use_npho_time_weight": _same("recon.npho_time_weight", kinds=RECON_KINDS),
    "training.predict_channels": OldKey(
        "recon.predict_time", "[npho] becomes false", _predict_channels, RECON_KINDS
    ),
    "training.track_mae_rmse": OldKey(
        None, "xec always computes the validation MAE / RMSE per channel and face"
    ),
    "training.track_train_metrics": OldKey(
        None, "xec logs the per-face training losses always, and MAE / RMSE on validation only"
    ),
    # checkpoint
    "checkpoint.resume_from": _same("checkpoint.resume_from"),
    "checkpoint.refresh_lr": _same("checkpoint.refresh_lr"),
    "checkpoint.reset_epoch": _same("checkpoint.reset_epoch"),
    "checkpoint.new_mlflow_run": _same("checkpoint.new_mlflow_run"),
    "checkpoint.save_artifacts": _same("checkpoint.save_artifacts"),
    "checkpoint.save_predictions": _same(
        "checkpoint.save_artifacts", "the MAE / inpainter ROOT predictions", RECON_KINDS
    ),
    "checkpoint.save_root_predictions": _same(
        "checkpoint.save_artifacts", "the MAE / inpainter ROOT predictions", RECON_KINDS
    ),
    "checkpoint.save_interval": OldKey(
        "checkpoint.predictions_every",
        "also the MAE encoder interval; checkpoint_last is written every epoch (checkpoint.every)",
        _save_interval,
        RECON_KINDS,
    ),
    "checkpoint.onnx_filename": _same("checkpoint.onnx_filename", "export: checkpoint.export_onnx"),
    # regressor tasks and reweighting (* = a task of the catalogue: angle, energy, uvwFI, ...)
    "tasks.*.enabled": _same("tasks.{task}.enabled", kinds=("regressor",)),
    "tasks.*.loss_fn": OldKey("tasks.{task}.loss", "", _loss, ("regressor",)),
    "tasks.*.loss_beta": OldKey(
        "tasks.{task}.loss_kwargs", "beta of smooth_l1, delta of huber", _loss_beta, ("regressor",)
    ),
    "tasks.*.weight": _same("tasks.{task}.weight", kinds=("regressor",)),
    "tasks.*.log_transform": OldKey(
        "tasks.{task}.transform",
        "true becomes log, false identity (raw targets, as before)",
        _log_transform,
        ("regressor",),
    ),
    "reweighting.*.enabled": OldKey(
        "reweighting.{task}.enabled", "", _reweight_enabled, ("regressor",)
    ),
    "reweighting.*.nbins": OldKey("reweighting.{task}.bins", "[nbins]", _bins, ("regressor",)),
    "reweighting.*.nbins_2d": OldKey(
        "reweighting.{task}.bins", "uvwFI: [u, v] becomes [u, v, v]", _bins, ("regressor",)
    ),
}

NORMALIZATION_KEYS: tuple[str, ...] = tuple(
    k.split(".", 1)[1] for k in OLD_KEYS if k.startswith("normalization.")
)
# Sections where the earlier tool's docs place a key in more than one way (the MAE table lists
# its keys flat, the inpainter example puts loss settings under training): a key at the top
# level or under model / training is found by its last name when that name is unique.
_LEAVES: dict[str, list[str]] = {}
for _key in OLD_KEYS:
    if _key.split(".")[0] in ("data", "model", "training", "checkpoint"):
        _LEAVES.setdefault(_key.rsplit(".", 1)[1], []).append(_key)


def find_old_key(key: str) -> tuple[str, str | None] | None:
    """(table pattern, task) of a dotted key of the earlier tool, or None when unknown."""
    parts = key.split(".")
    if len(parts) == 3 and parts[0] in ("tasks", "reweighting"):
        pattern = f"{parts[0]}.*.{parts[2]}"
        return (pattern, parts[1]) if pattern in OLD_KEYS and parts[1] in TASKS else None
    if key in OLD_KEYS:
        return key, None
    if len(parts) == 1 or (len(parts) == 2 and parts[0] in ("model", "training")):
        matches = _LEAVES.get(parts[-1], [])
        if matches and len({OLD_KEYS[m].new for m in matches}) == 1:  # one meaning
            return matches[0], None
    return None


def apply_old_key(pattern: str, value: Any, ctx: Context) -> dict[str, Any]:
    """{xec key: value} for one old key; raises NotMigrated with the reason."""
    rule = OLD_KEYS[pattern]
    if ctx.kind not in rule.kinds:
        raise NotMigrated(f"applies to {' / '.join(rule.kinds)} configs, not to a {ctx.kind}")
    if rule.new is None:
        raise NotMigrated(rule.note)
    if rule.convert is not None:
        return rule.convert(value, ctx)
    return {rule.new.format(task=ctx.task): value}


def key_table() -> list[tuple[str, str, str]]:
    """(old key, xec key or '-', note) for every key of the table (`--keys`)."""
    return [(old, rule.new or "-", rule.note) for old, rule in OLD_KEYS.items()]
