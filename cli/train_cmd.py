"""`xec train regressor|mae|inpainter`: one command per model kind over xectrain.run.train."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from xecmodel import TASKS

from .names import split_names

if TYPE_CHECKING:
    from xectrain.run.fit import RunResult

COMMON_FLAGS = {  # flag -> config key it sets
    "epochs": "training.epochs",
    "lr": "training.lr",
    "batch_size": "data.batch_size",
    "store": "data.store",
    "resume_from": "checkpoint.resume_from",
    "run_name": "tracking.run_name",
}
KIND_TEXT = {
    "regressor": "the multi-task regressor (angle, energy, timing, position, ...)",
    "mae": "the masked autoencoder (self-supervised pretraining of the encoder)",
    "inpainter": "the dead-channel inpainter",
}
SWITCHES = {
    "refresh_lr": "checkpoint.refresh_lr",
    "reset_epoch": "checkpoint.reset_epoch",
    "new_mlflow_run": "checkpoint.new_mlflow_run",
}


def overrides_from_flags(flags: dict[str, object], tasks: str | None) -> list[str]:
    """The --set overrides the convenience flags stand for (they apply after --set)."""
    out = [f"{key}={flags[name]}" for name, key in COMMON_FLAGS.items() if flags[name] is not None]
    out += [f"{key}=true" for name, key in SWITCHES.items() if flags[name]]
    if tasks is not None:
        wanted = split_names(tasks) or []
        unknown = [t for t in wanted if t not in TASKS]
        if unknown:
            raise click.BadParameter(f"unknown task(s) {unknown}; choose from {', '.join(TASKS)}")
        out += [f"tasks.{t}.enabled={str(t in wanted).lower()}" for t in TASKS]
    return out


def _train(kind: str, config: Path | None, sets: tuple[str, ...], show_options: bool,
           dry_run: bool, tasks: str | None, flags: dict[str, object]) -> None:  # fmt: skip
    import yaml

    from xecdata.store import StoreError
    from xectrain.checkpoint import CheckpointError
    from xectrain.config import ConfigError, load_config, options_help, to_dict
    from xectrain.run.fit import train

    if show_options:
        click.echo(options_help(kind))
        return
    try:
        cfg = load_config(kind, config, [*sets, *overrides_from_flags(flags, tasks)])
        if dry_run:
            click.echo(yaml.safe_dump(to_dict(cfg), sort_keys=False), nl=False)
            return
        result = train(cfg)
    except (ConfigError, CheckpointError, StoreError, OSError, KeyError, ValueError) as err:
        raise click.ClickException(str(err)) from None
    if result.stopped_by is not None:
        _stopped(result)
    if not result.main:
        return  # other torchrun ranks: rank 0 reports
    click.echo(f"run folder: {result.run_dir}")
    click.echo(f"best {cfg.checkpoint.best_metric}: {result.best_metric:.6g}")
    if cfg.tracking.enabled:
        from xectrain.run.tracking_target import resolve_tracking

        target = resolve_tracking(cfg.tracking, kind)
        click.echo(f"MLflow run {result.mlflow_run_id} in {target.describe()}")
        click.echo(f"browse: {target.browse_hint()}")


def _kind_command(kind: str) -> click.Command:
    @click.command(name=kind)
    @click.option(
        "-c",
        "--config",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="YAML run configuration (see configs/).",
    )
    @click.option(
        "--set",
        "sets",
        multiple=True,
        metavar="KEY=VALUE",
        help="Override one config key, e.g. --set training.lr=1e-4 (repeatable).",
    )
    @click.option("--store", help="Zarr store to train on (data.store).")
    @click.option("--epochs", type=int, help="training.epochs")
    @click.option("--lr", type=float, help="training.lr")
    @click.option("--batch-size", type=int, help="data.batch_size (per process)")
    @click.option("--tasks", help="Regressor tasks to enable, comma-separated (others off).")
    @click.option(
        "--resume-from",
        type=click.Path(exists=True, dir_okay=False),
        help="Checkpoint to resume, or an MAE checkpoint to take the encoder from.",
    )
    @click.option("--refresh-lr", is_flag=True, help="On resume: new LR schedule for the rest.")
    @click.option("--reset-epoch", is_flag=True, help="On resume: weights only, epoch 1.")
    @click.option("--new-mlflow-run", is_flag=True, help="On resume: a new MLflow run.")
    @click.option("--run-name", help="Run name (artifact folder and MLflow run name).")
    @click.option(
        "--options",
        "show_options",
        is_flag=True,
        help="List every config key with its type, default and meaning, then exit.",
    )
    @click.option("--dry-run", is_flag=True, help="Print the resolved configuration and exit.")
    def command(config: Path | None, sets: tuple[str, ...], show_options: bool, dry_run: bool,
                tasks: str | None, **flags: object) -> None:  # fmt: skip
        obj = click.get_current_context().obj
        config = config or (obj.get("config") if isinstance(obj, dict) else None)
        _train(kind, config, sets, show_options, dry_run, tasks, flags)

    command.help = (
        f"Train {KIND_TEXT[kind]}. Settings: built-in defaults, then --config, then --set, "
        "then the flags. Under torchrun every process trains a shard (DDP); only rank 0 writes. "
        "SIGTERM / SIGUSR1 stop it after the current step with checkpoint_last written (exit "
        "status 75); --resume-from that file continues at that step."
    )
    return command


@click.group(invoke_without_command=True)
@click.option("-c", "--config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML run configuration (also accepted after the model kind).")  # fmt: skip
@click.pass_context
def train(ctx: click.Context, config: Path | None) -> None:
    """Train a model: regressor, mae (pretraining) or inpainter."""
    ctx.obj = {"config": config}
    if ctx.invoked_subcommand is not None:
        return
    if config is None:
        click.echo(ctx.get_help())
        return
    from xectrain.config import ConfigError, read_yaml
    from xectrain.config.keys import migrate_hint, old_style_keys

    try:
        tree = read_yaml(config)
    except ConfigError as err:
        raise click.ClickException(str(err)) from None
    earlier = old_style_keys(tree)
    if earlier:
        raise click.ClickException(migrate_hint(config, earlier))
    kind = (tree.get("model") or {}).get("kind") or "regressor|mae|inpainter"
    raise click.UsageError(f"name the model kind: xec train {kind} -c {config}")


for _kind in ("regressor", "mae", "inpainter"):
    train.add_command(_kind_command(_kind))


def _stopped(result: RunResult) -> None:
    """A run stopped by SIGTERM / SIGUSR1: say where it continues, exit with PREEMPTED_EXIT."""
    from xectrain.run.preempt import PREEMPTED_EXIT
    from xectrain.run.resume import LAST

    if result.main:
        click.echo(
            f"stopped by {result.stopped_by} after the current step; continue with: "
            f"xec train ... --resume-from {result.run_dir / LAST}",
            err=True,
        )
    sys.exit(PREEMPTED_EXIT)
