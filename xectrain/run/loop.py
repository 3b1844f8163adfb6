"""The one training loop of the regressor, the MAE and the inpainter.

Read top to bottom: `train_epoch` draws batches, runs forward + backward under autocast with
gradient accumulation (no DDP all-reduce on accumulation steps), and every `grad_accum_steps`
batches `optimizer_step` sets the scheduled learning rate, clips, steps (skipping non-finite
steps on the device), zeroes gradients and updates the EMA. Losses stay on the device and are
read back once per `log_every` optimizer steps: the hot path never waits for the GPU.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from xecdata.protocols import BatchLoader
from xecmodel.kind import ModelKind
from xectrain.config import RunConfig
from xectrain.engine.distributed import World, all_reduce_sum
from xectrain.engine.precision import amp_context
from xectrain.engine.steps import StepOps
from xectrain.run.ema import ModelEMA
from xectrain.run.schedule import LRSchedule, set_lr


@dataclass
class Trainer:
    """Everything the loop mutates; checkpoints save and restore exactly this."""

    cfg: RunConfig
    world: World
    ops: StepOps
    model: nn.Module  # what runs forward: maybe DDP- and/or compile-wrapped
    raw: ModelKind  # the plain model of any kind (state dicts, loss)
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    ema: ModelEMA | None = None
    scaler: torch.amp.GradScaler | None = None
    epoch: int = 0  # next epoch to run (0-based)
    step: int = 0  # optimizer steps taken
    best: float = math.inf
    skipped: torch.Tensor = field(default_factory=lambda: torch.zeros(()))  # non-finite steps
    history: list[tuple[int, float]] = field(default_factory=list)  # (step, loss) at log points
    best_worst: list[Any] = field(default_factory=list)  # worst events of the best validation

    @property
    def device(self) -> torch.device:
        return self.world.device

    @property
    def eval_model(self) -> ModelKind:
        """The model validation uses: the EMA copy when there is one."""
        return cast(ModelKind, self.ema.module) if self.ema is not None else self.raw


def autocast(tr: Trainer) -> contextlib.AbstractContextManager[Any]:
    """The run's autocast (training.amp) on its device."""
    return amp_context(tr.device, tr.cfg.training.amp)


def _no_sync(tr: Trainer, sync: bool) -> contextlib.AbstractContextManager[Any]:
    """Skip DDP's gradient all-reduce on accumulation steps (only the last one syncs)."""
    ddp = getattr(tr.model, "_orig_mod", tr.model)  # torch.compile wraps the DDP module
    if sync or not isinstance(ddp, DistributedDataParallel):
        return contextlib.nullcontext()
    return ddp.no_sync()


def optimizer_step(tr: Trainer) -> None:
    """One optimizer step on the accumulated gradients, skipped on the device if non-finite."""
    cfg = tr.cfg.training
    set_lr(tr.optimizer, tr.schedule.lr(tr.step))
    if tr.scaler is not None:
        tr.scaler.unscale_(tr.optimizer)
    params = [p for p in tr.raw.parameters() if p.grad is not None]
    max_norm = cfg.grad_clip if cfg.grad_clip is not None else math.inf
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm, error_if_nonfinite=False)
    bad = (~torch.isfinite(norm)).float()  # 0-dim, stays on the device
    if tr.scaler is not None:
        tr.scaler.step(tr.optimizer)
        tr.scaler.update()
    else:
        tr.optimizer.found_inf = bad  # type: ignore[attr-defined]  # fused AdamW skips on device
        tr.optimizer.step()
    tr.optimizer.zero_grad(set_to_none=True)
    tr.skipped = tr.skipped.to(bad.device) + bad
    if tr.ema is not None:
        tr.ema.update(tr.raw, skip=bad)
    tr.step += 1


def _accumulate(sums: dict[str, torch.Tensor], parts: dict[str, torch.Tensor]) -> None:
    for key, value in parts.items():
        sums[key] = sums[key] + value if key in sums else value.clone()


def _means(sums: dict[str, torch.Tensor], count: int) -> dict[str, float]:
    """One host sync for all running sums."""
    if not sums:
        return {}
    keys = list(sums)
    values = torch.stack([sums[k].float() for k in keys]).tolist()
    return {k: v / max(count, 1) for k, v in zip(keys, values, strict=True)}


@dataclass
class EpochStats:
    """Means of the named loss parts over the epoch (all ranks), events, time, data wait."""

    metrics: dict[str, float]
    events: int
    seconds: float
    wait_seconds: float
    batches: int = 0  # this rank's


class WaitClock:
    """Time an epoch waits for data.

    On the CPU: host time spent inside next(loader). On CUDA the host runs ahead of the GPU
    and also blocks in next() when the loader's output slots are all in use, which is
    back-pressure from a busy GPU, not waiting for data; so there the wait is measured on the
    GPU: the time the compute stream stalls between the end of one step's work and the start
    of the next, which is the wait for the batch event the loader hands over. Timing events
    are read only where the loop syncs anyway (progress logs, the end of the epoch).
    """

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.host = 0.0
        self.gpu = 0.0
        self._pairs: list[tuple[Any, Any]] = []
        self._end: Any = None

    def timed(self, batches: Iterator[Any]) -> Iterator[Any]:
        """Yield batches, timing the wait for each."""
        while True:
            if self.cuda:
                self._end = torch.cuda.Event(enable_timing=True)
                self._end.record()
            t0 = time.perf_counter()
            batch = next(batches, None)
            self.host += time.perf_counter() - t0
            if batch is None:
                return
            if self.cuda:
                start = torch.cuda.Event(enable_timing=True)
                start.record()  # after the loader made this stream wait for the batch
                self._pairs.append((self._end, start))
            yield batch

    def seconds(self) -> float:
        """The wait so far; on CUDA call it after a sync (every recorded event completed)."""
        if not self.cuda:
            return self.host
        self.gpu += sum(end.elapsed_time(start) for end, start in self._pairs) / 1000.0
        self._pairs.clear()
        return self.gpu


def train_epoch(tr: Trainer, loader: BatchLoader, n_batches: int) -> EpochStats:
    """Run `n_batches` batches of the current epoch (the loader is positioned by the caller)."""
    cfg = tr.cfg.training
    tr.model.train()
    accum = cfg.grad_accum_steps
    sums: dict[str, torch.Tensor] = {}
    events, batches, clock, start = 0, 0, WaitClock(tr.device), time.perf_counter()
    bar = tqdm(
        total=n_batches, desc=f"epoch {tr.epoch + 1}", disable=not tr.world.main, leave=False
    )
    for i, batch in enumerate(clock.timed(itertools.islice(loader, n_batches))):
        group_start = (i // accum) * accum
        group = min(accum, n_batches - group_start)  # the last group may be short
        last_of_group = i + 1 == group_start + group
        with _no_sync(tr, last_of_group):
            with autocast(tr):
                loss, parts = tr.ops.loss(tr.model, tr.raw, batch)
            scaled = loss / group
            (tr.scaler.scale(scaled) if tr.scaler is not None else scaled).backward()
        _accumulate(sums, parts)
        events, batches = events + len(batch), batches + 1
        bar.update(1)
        if last_of_group:
            optimizer_step(tr)
            if tr.step % cfg.log_every == 0:
                _log_progress(tr, bar, sums, i + 1, events, clock, start)
    bar.close()
    return _epoch_stats(tr, sums, batches, events, clock, start)


def _log_progress(
    tr: Trainer, bar: Any, sums: dict[str, torch.Tensor], batches: int, events: int,
    clock: WaitClock, start: float,
) -> None:  # fmt: skip
    """The loop's only host sync: running loss, events/s and data-wait fraction."""
    means = _means({"total_loss": sums["total_loss"]}, batches)
    if clock.cuda:
        torch.cuda.current_stream(tr.device).synchronize()  # the timing events are done
    wait = clock.seconds()
    tr.history.append((tr.step, means["total_loss"]))
    elapsed = max(time.perf_counter() - start, 1e-9)
    bar.set_postfix(
        loss=f"{means['total_loss']:.4g}",
        ev_s=f"{events * tr.world.world_size / elapsed:.0f}",
        wait=f"{100 * wait / elapsed:.0f}%",
    )


def _epoch_stats(
    tr: Trainer, sums: dict[str, torch.Tensor], batches: int, events: int, clock: WaitClock,
    start: float,
) -> EpochStats:  # fmt: skip
    """Means over all ranks (every rank runs the same number of batches)."""
    keys = sorted(sums)
    packed = torch.stack([sums[k].float() for k in keys] + [tr.skipped.float().to(tr.device)])
    all_reduce_sum(packed)
    values = packed.tolist()  # syncs: every timing event of the epoch has completed
    if clock.cuda:
        torch.cuda.current_stream(tr.device).synchronize()
    wait = clock.seconds()
    n = batches * tr.world.world_size
    metrics = {f"train/{k}": v / max(n, 1) for k, v in zip(keys, values, strict=False)}
    metrics["train/skipped_steps"] = values[-1] / tr.world.world_size
    metrics["train/lr"] = tr.schedule.lr(max(tr.step - 1, 0))
    seconds = time.perf_counter() - start
    return EpochStats(metrics, events * tr.world.world_size, seconds, wait, batches)
