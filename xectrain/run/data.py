"""The data side of a training run: the train and validation loaders from the run config."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xecdata.protocols import BatchLoader
from xecdata.reweight import ReweightConfig, Reweighter
from xecdata.schemes import Scheme
from xectrain.config import ConfigError, RunConfig
from xectrain.engine.distributed import World, broadcast_from_main
from xectrain.engine.steps import StepOps
from xectrain.evaluation.passes import ID_TARGETS


@dataclass
class Loaders:
    """Training and validation loaders and the batches per epoch each will run (per rank)."""

    train: BatchLoader
    val: BatchLoader
    n_train: int
    n_val: int


def _cap(n: int, limit: int | None) -> int:
    return n if limit is None else min(n, limit)


def loader_options(cfg: RunConfig) -> tuple[Any, Any]:
    """(augment, reweight) configs of xecdata.loaders from the run config."""
    from xecdata.loaders import AugmentConfig, ReweightConfig

    augment = AugmentConfig(**dataclasses.asdict(cfg.training.augment))
    bins = {task: tuple(rw.bins) for task, rw in cfg.reweighting.items() if rw.enabled}
    eps = [rw.eps for rw in cfg.reweighting.values() if rw.enabled]
    reweight = ReweightConfig(eps=eps[0], **bins) if bins else None
    return augment, reweight


def shared_reweighter(store: str | Path, config: ReweightConfig, world: World) -> Reweighter | None:
    """The reweighting tables, got once by rank 0 (the store's cache written by `xec reweight`,
    else fitted in memory) and handed to every rank: no rank writes the store, and the ranks
    cannot differ."""
    from xecdata.reweight import (
        Reweighter,
        cached_reweighter,
        fit_reweighter,
        reweight_command,
        training_ranges,
    )
    from xecdata.store import open_store

    tables = None
    if world.main:
        st = open_store(store)
        ranges = training_ranges(st)
        rw = cached_reweighter(st, config, ranges)
        if rw is None:
            rw = fit_reweighter(st, config, ranges)
            print(f"notice: reweighting fitted on the training split of {st.path}; cache it for "
                  f"later runs with `{reweight_command(st, config)}`", file=sys.stderr)  # fmt: skip
        tables = rw.to_dict()
    return Reweighter.from_dict(broadcast_from_main(tables))


def _no_batch(cfg: RunConfig, split: str) -> ConfigError:
    d = cfg.data
    return ConfigError(
        f"store {d.store}: split {split!r} gives no batch of {d.batch_size} events per "
        "process; lower data.batch_size or re-ingest with more events in that split "
        "(xec ingest --val-fraction / --chunk-events)"
    )


def _check_splits_hold_a_batch(cfg: RunConfig, world: World) -> None:
    """Training drops a last partial batch, so its split needs a whole batch per process;
    validation needs one event."""
    from xecdata.store import open_store

    st, d = open_store(cfg.data.store), cfg.data
    for split, need in ((d.train_split, d.batch_size * world.world_size), (d.val_split, 1)):
        if int(np.diff(st.split(split)).sum()) < need:
            raise _no_batch(cfg, split)


def open_loaders(cfg: RunConfig, world: World, ops: StepOps, scheme: Scheme) -> Loaders:
    """Open the train loader (shuffled, sharded, augmented, reweighted) and the val loader."""
    from xecdata.loaders import open_loader

    d = cfg.data
    _check_splits_hold_a_batch(cfg, world)  # before the loaders allocate batch-sized buffers
    augment, reweight = loader_options(cfg)
    if reweight is not None:
        reweight = shared_reweighter(d.store, reweight, world)
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
            raise _no_batch(cfg, split)
    n_train, n_val = _cap(len(train), d.max_train_batches), _cap(len(val), d.max_val_batches)
    return Loaders(train, val, n_train, n_val)
