"""Validation passes: the regressor (predictions and metrics in physical units, worst events)
and the MAE / inpainter (masked reconstruction metrics, ROOT predictions streamed per batch).

Validation masks are drawn from a fixed seed inside a forked RNG, so every epoch is scored on
the same masks and training's random stream is untouched (resumed runs stay exact).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xecdata.protocols import BatchSource, BatchView, ColumnSource
from xecdata.schemes import Scheme
from xecdata.tasks import TASKS, task_of_branch
from xecmodel.faces import sentinel_fill
from xecmodel.kind import ReconstructionKind
from xecmodel.masking import already_invalid
from xecmodel.regressor import XECRegressor
from xectrain.artifacts import EventRecord, PredictionRootWriter
from xectrain.engine.distributed import all_reduce_sum, concat_gathered, gather_to_main
from xectrain.engine.steps import StepOps
from xectrain.evaluation.metrics import task_metrics
from xectrain.evaluation.recon_metrics import MaskedErrorAccumulator

NS_PER_S = 1e9
VAL_SEED_OFFSET = 7919  # validation masks: seed + this, independent of the training stream
ID_TARGETS = ("run", "event")
Autocast = Callable[[], AbstractContextManager[Any]]  # a fresh autocast context per batch


@dataclass
class RegressorEval:
    """Validation of the regressor: metrics (val/...), per-task (true, pred), ids, worst events."""

    metrics: dict[str, float]
    results: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    ids: dict[str, np.ndarray] = field(default_factory=dict)
    worst: list[EventRecord] = field(default_factory=list)
    # where the events came from: a store path, the column source of ROOT inputs, or None
    # (an in-memory loader)
    store: str | Path | ColumnSource | None = None


def _reduce_means(sums: dict[str, torch.Tensor], events: int, device: torch.device) -> dict:
    """Event-weighted means of per-batch means over all ranks."""
    keys = sorted(sums)
    packed = torch.stack([sums[k].float().to(device) for k in keys] + [torch.tensor(
        float(events), device=device)])  # fmt: skip
    all_reduce_sum(packed)
    values = packed.tolist()
    return {f"val/{k}": v / max(values[-1], 1.0) for k, v in zip(keys, values, strict=False)}


def _add(sums: dict[str, torch.Tensor], parts: dict[str, torch.Tensor], weight: int) -> None:
    for k, v in parts.items():
        v = v.detach().float() * weight
        sums[k] = sums[k] + v if k in sums else v


class _Worst:
    """The k highest-loss events seen so far, with their sensors kept on the host."""

    def __init__(self, k: int) -> None:
        self.k, self.heap, self.counter = k, [], itertools.count()  # type: ignore[var-annotated]

    def offer(self, losses: torch.Tensor, batch: BatchView, keep: dict[str, Any]) -> None:
        if self.k == 0:
            return
        top = torch.topk(losses, min(self.k, len(losses)))
        for value, i in zip(top.values.tolist(), top.indices.tolist(), strict=True):
            if len(self.heap) == self.k and value <= self.heap[0][0]:
                continue
            sensors = batch.sensors[i].float().cpu().clone()  # the loader reuses its buffer
            extra = _batch_truth(batch, i, keep["truth"])
            item = (value, next(self.counter), sensors, keep | {"i": i, "extra": extra})
            (heapq.heapreplace if len(self.heap) == self.k else heapq.heappush)(self.heap, item)

    def records(self, scheme: Scheme) -> list[EventRecord]:
        out = []
        for loss, _, sensors, info in sorted(self.heap, key=lambda t: -t[0]):
            npho, time = scheme.denormalize(sensors.numpy())
            i = info["i"]
            out.append(EventRecord(
                npho, time * NS_PER_S, int(info["run"][i]), int(info["event"][i]), float(loss),
                {t: v[i] for t, v in info["truth"].items()} | info["extra"],
                {t: v[i] for t, v in info["pred"].items()}, int(info["index"][i]),
            ))  # fmt: skip
        return out


def merge_worst(parts: list[list[EventRecord]], k: int) -> list[EventRecord]:
    """The k highest-loss records of all ranks' lists (each rank's own k worst), worst first."""
    return sorted((r for part in parts for r in part), key=lambda r: -r.loss)[:k]


def _batch_truth(batch: BatchView, i: int, have: dict[str, Any]) -> dict[str, np.ndarray]:
    """Truth of event i for the tasks not trained whose branch the loader still delivered."""
    return {task: host_copy(batch.targets[info.branch][i]) for task, info in TASKS.items()
            if task not in have and info.branch in batch.targets}  # fmt: skip


def add_store_truth(records: list[EventRecord], store: str | Path | ColumnSource | None) -> None:
    """Complete the truth of a few displayed events with every truth array of the store that
    the loader did not deliver (tasks not trained, other truth branches), read by event index:
    the loader carries only the trained tasks' targets, so these few reads are done here."""
    if store is None or not records:
        return
    st = _columns_source(store)
    for name, kind in st.arrays.items():
        task = task_of_branch(name)  # a task's truth shows under the task's name
        key = task.name if task is not None and task.branch == name else name
        for rec in records:
            if kind == "truth" and key not in rec.truth and rec.index >= 0:
                rec.truth[key] = st.read_array(name, rec.index, rec.index + 1)[0]


@torch.no_grad()
def validate_regressor(
    model: XECRegressor, ops: StepOps, loader: BatchSource, n_batches: int,
    autocast: Autocast, scheme: Scheme, keep_worst: int = 5,
) -> RegressorEval:  # fmt: skip
    """Losses, physical predictions and metrics of `model` (the EMA copy) on the val split."""
    model.eval()
    device = next(model.parameters()).device
    sums: dict[str, torch.Tensor] = {}
    rows: dict[str, list[np.ndarray]] = {}
    worst, events = _Worst(keep_worst), 0
    for batch in itertools.islice(loader, n_batches):
        with autocast():
            outputs = model(batch.sensors)
        outputs = {k: v.float() for k, v in outputs.items()}
        targets = ops.task_targets(batch.targets)
        total, parts = model.loss(outputs, targets, None)
        _add(sums, {"total_loss": total} | {f"loss_{k}": v for k, v in parts.items()}, len(batch))
        events += len(batch)
        chunk = _batch_rows(model, outputs, targets, batch)
        for k, v in chunk.items():
            rows.setdefault(k, []).append(v)
        worst.offer(ops.per_event_loss(model, outputs, targets), batch, _worst_info(chunk))
    metrics = _reduce_means(sums, events, device)
    gathered = concat_gathered(gather_to_main({k: np.concatenate(v) for k, v in rows.items()}))
    worst_of_ranks = gather_to_main(worst.records(scheme))  # each rank's k worst, on rank 0
    out = RegressorEval(metrics)
    if not gathered:
        return out
    for task in ops.branches:
        true, pred = gathered[f"true_{task}"], gathered[f"pred_{task}"]
        out.results[task] = (true, pred)
        out.metrics |= {f"val/{k}": v for k, v in task_metrics(task, pred, true).items()}
    out.ids = {k: gathered[k] for k in ("event_index", *ID_TARGETS) if k in gathered}
    out.worst = merge_worst(worst_of_ranks, worst.k)  # the k worst of the whole split
    out.store = getattr(getattr(loader, "info", None), "store", None)
    add_store_truth(out.worst, out.store)
    return out


def _columns_source(store: str | Path | ColumnSource) -> ColumnSource:
    """The opened store at a path, or the loader's own column source (ROOT inputs: a
    RootColumns, which reads as a store does: arrays, read_array, read_rows)."""
    if isinstance(store, (str, Path)):
        from xecdata.store import open_store

        return open_store(store)
    return store


def store_columns(ev: RegressorEval) -> dict[str, np.ndarray]:
    """Every truth and reco array of the store at the validated events (event_index), for the
    validation ROOT file; empty without a store (in-memory loaders)."""
    index = ev.ids.get("event_index")
    if ev.store is None or index is None:
        return {}
    st = _columns_source(ev.store)
    names = [n for n, kind in st.arrays.items() if kind in ("truth", "reco")]
    return {name: st.read_rows(name, index) for name in names}


def host_copy(t: torch.Tensor) -> np.ndarray:
    """A numpy copy that owns its memory: loaders reuse their batch buffers, and on the CPU
    `.cpu().numpy()` would only be a view of them."""
    return np.array(t.detach().cpu().numpy(), copy=True)


def _batch_rows(
    model: XECRegressor,
    outputs: dict[str, torch.Tensor],
    targets: dict[str, torch.Tensor],
    batch: BatchView,
) -> dict[str, np.ndarray]:
    """Host copies of one batch: true_/pred_<task> (N, D) physical, event ids."""
    preds = model.outputs_to_physical(outputs)
    n = len(batch)
    rows = {"event_index": host_copy(batch.index)}
    for name in ID_TARGETS:
        rows[name] = host_copy(batch.targets[name]).reshape(n) if name in batch.targets else (
            np.full(n, -1, np.int64))  # fmt: skip
    for task, value in targets.items():
        rows[f"true_{task}"] = host_copy(value.float()).reshape(n, -1)
        rows[f"pred_{task}"] = host_copy(preds[task].float()).reshape(n, -1)
    return rows


def _worst_info(rows: dict[str, np.ndarray]) -> dict[str, Any]:
    truth = {k[5:]: v for k, v in rows.items() if k.startswith("true_")}
    pred = {k[5:]: v for k, v in rows.items() if k.startswith("pred_")}
    ids = {k: rows[k] for k in ("run", "event")} | {"index": rows["event_index"]}
    return ids | {"truth": truth, "pred": pred}


@contextlib.contextmanager
def fixed_rng(seed: int, device: torch.device) -> Iterator[None]:
    """Run a block with its own seeded RNG, restoring the caller's stream afterwards."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type=device.type):
        torch.manual_seed(seed)
        yield


@torch.no_grad()
def validate_reconstruction(
    model: ReconstructionKind, loader: BatchSource, n_batches: int, autocast: Autocast, seed: int,
    writer: PredictionRootWriter | None = None,
) -> dict[str, float]:  # fmt: skip
    """MAE / inpainter: model loss parts (normalized units) and MAE / RMSE of the masked
    sensors in photons and ns, per channel and face; predictions streamed to `writer`."""
    model.eval()
    device = next(model.parameters()).device
    scheme: Scheme = model.scheme
    acc = MaskedErrorAccumulator(channels=recon_channels(model))
    sums: dict[str, torch.Tensor] = {}
    events = 0
    with fixed_rng(seed + VAL_SEED_OFFSET, device):
        for batch in itertools.islice(loader, n_batches):
            with autocast():
                loss, pred, mask = model(batch.sensors)
            _add(sums, dict(model.last_losses) | {"total_loss": loss}, len(batch))
            events += len(batch)
            _score_batch(model, scheme, batch, pred.float(), mask, acc, writer)
    metrics = _reduce_means(sums, events, device)
    _reduce_accumulator(acc, device)
    return metrics | {f"val/{k}": v for k, v in acc.compute().items()}


def recon_channels(model: ReconstructionKind) -> tuple[str, ...]:
    """Channels an MAE / inpainter predicts: ("npho",) in npho-only mode."""
    return ("npho", "time") if model.predict_time else ("npho",)


def _reduce_accumulator(acc: MaskedErrorAccumulator, device: torch.device) -> None:
    """Sum the accumulator's counters over ranks (in place)."""
    flat = np.concatenate([acc.sums.ravel(), [acc.n_masked, acc.n_valid]])
    packed = all_reduce_sum(torch.tensor(flat, dtype=torch.float64, device=device)).cpu().numpy()
    acc.sums = packed[:-2].reshape(acc.sums.shape)
    acc.n_masked, acc.n_valid = int(packed[-2]), int(packed[-1])


def _score_batch(
    model: ReconstructionKind, scheme: Scheme, batch: BatchView, pred: torch.Tensor,
    mask: torch.Tensor,
    acc: MaskedErrorAccumulator, writer: PredictionRootWriter | None,
) -> None:  # fmt: skip
    """Physical-unit errors of one batch into the accumulator (and the ROOT writer)."""
    x = batch.sensors.float()
    if pred.shape[-1] == 1:  # npho only: the time channel stays a sentinel (NaN after inverse)
        pred = torch.cat([pred, torch.full_like(pred, scheme.time_sentinel)], dim=-1)
    t_npho, t_time = scheme.denormalize(x.cpu().numpy())
    p_npho, p_time = scheme.denormalize(pred.cpu().numpy())
    truth = np.stack([t_npho, t_time * NS_PER_S], axis=-1)  # (B, 4760, 2) photons, ns
    guess = np.stack([p_npho, p_time * NS_PER_S], axis=-1)
    invalid = already_invalid(x, scheme, model.mask_pool).cpu().numpy()
    m = mask.cpu().numpy() & ~invalid
    time_ok = np.isfinite(truth[..., 1]) & np.isfinite(guess[..., 1])
    acc.update(guess, truth, m, time_valid=time_ok, valid=~invalid)
    if writer is not None:
        ids = {k: batch.targets[k].cpu().numpy() for k in ID_TARGETS if k in batch.targets}
        masked = sentinel_fill(x, mask, scheme).cpu().numpy()  # what the encoder saw
        writer.write(truth, guess, m, batch.index.cpu().numpy(), invalid=invalid, masked=masked,
                     **ids)  # fmt: skip
