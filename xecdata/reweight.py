"""Histogram sample reweighting: flatten the training distribution of each enabled task.

Per task, a histogram of the task's truth is filled over the training split, with bin ranges
taken from that split (min to max of the valid values; values outside, e.g. in validation,
fall in the edge bins). An event's factor for the task is 1 / (count of its bin + eps). With
several tasks enabled the factors multiply, and the product is divided by its mean over the
training split, so the training weights have mean exactly 1 (up to float rounding) whatever
the combination. With one task the weighted training histogram is flat over occupied bins.

The tasks, the truth they histogram and the default bins are the task catalogue's
(xecdata.tasks, `Task.reweight`): angle (emiAng, 20 x 20), energy (energyTruth, 30), timing
(timeTruth, 30), uvw (uvwTruth, 10 x 10 x 10; the task uvwFI). A task is named by its
reweighting key or its task name; bins are one count per truth component, and a shorter list
repeats its last count ((10, 8) for uvw is (10, 8, 8)). An event whose truth is invalid (NaN,
+-Inf or beyond the 9e9 marker) gets weight 0.

The fitted tables are tiny. `xec reweight STORE --task ...` (`write_reweighter`) fits them once
and writes them into the store, atomically, as `_xec/reweight/<key>.json` (key = hash of the
settings, the training ranges and the store's content id), under the store's lock. Readers
(`fit_reweighter`: the loaders, training's rank 0) only read that file, and fit in memory when
it is absent: no read path ever opens the store for writing, so read-only stores work and DDP
ranks never race on a write. Training fits on rank 0 and hands the tables to the other ranks.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xecdata.markers import valid_rows
from xecdata.tasks import TASKS, reweight_task

if TYPE_CHECKING:
    from xecdata.protocols import StoreView

CACHE_DIR = "_xec/reweight"  # inside the store, beside the other bookkeeping files
_READ_BLOCK = 1 << 20  # events per truth read while fitting
DEFAULT_EPS = 1e-6


def task_array(key: str) -> str:
    """The truth array a reweighting key histograms (the task's truth branch)."""
    return reweight_task(key).branch


class ReweightConfig:
    """Which tasks to flatten and with how many bins: one keyword per task, named by its
    reweighting key or task name, with a bin count or one count per truth component (None:
    off), e.g. ReweightConfig(angle=(20, 20), energy=30); `eps` is added to every count."""

    def __init__(self, eps: float = DEFAULT_EPS, **bins: int | Sequence[int] | None) -> None:
        self.eps = float(eps)
        self.bins: dict[str, tuple[int, ...]] = {}
        for name, value in bins.items():
            task = reweight_task(name)
            if value is not None:
                assert task.reweight is not None  # reweight_task only finds reweightable tasks
                self.bins[task.reweight.key] = tuple(int(b) for b in np.atleast_1d(value))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ReweightConfig):
            return NotImplemented
        return self.task_bins() == other.task_bins() and self.eps == other.eps

    def __repr__(self) -> str:
        return f"ReweightConfig({', '.join(f'{k}={v}' for k, v in self.to_dict().items())})"

    @classmethod
    def defaults(cls, *tasks: str) -> ReweightConfig:
        """The catalogue's default bins for the named tasks."""
        bins: dict[str, Any] = {t: _default_bins(t) for t in tasks}
        return cls(**bins)

    @classmethod
    def from_bins(
        cls, bins: dict[str, tuple[int, ...]], eps: float = DEFAULT_EPS
    ) -> ReweightConfig:
        """From task -> bin counts (an empty tuple: the task's default bins)."""
        config = cls(eps=eps, **{t: b or _default_bins(t) for t, b in bins.items()})
        config.task_bins()  # validates the counts
        return config

    def task_bins(self) -> dict[str, tuple[int, ...]]:
        """Enabled reweighting key -> bins per truth component, in catalogue order."""
        out: dict[str, tuple[int, ...]] = {}
        for task in TASKS.values():
            if task.reweight is None or task.reweight.key not in self.bins:
                continue
            key, given, want = task.reweight.key, self.bins[task.reweight.key], task.target_dim
            bins = given + given[-1:] * (want - len(given)) if given else given
            if len(bins) != want or min(bins) < 1:
                raise ValueError(f"reweight.{key}: need {want} positive bin count(s) (a shorter "
                                 f"list repeats its last), got {list(given)}")  # fmt: skip
            out[key] = bins
        if not out:
            keys = [t.reweight.key for t in TASKS.values() if t.reweight is not None]
            raise ValueError(f"reweight: no task enabled (set {', '.join(keys)})")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {**{k: list(v) for k, v in self.bins.items()}, "eps": self.eps}


def _default_bins(name: str) -> tuple[int, ...]:
    task = reweight_task(name)
    assert task.reweight is not None
    return task.reweight.bins


@dataclass(frozen=True)
class TaskTable:
    """One task's histogram: per-component range and the per-bin factor 1 / (count + eps)."""

    lo: np.ndarray  # (D,) float64
    hi: np.ndarray  # (D,) float64
    factor: np.ndarray  # (*bins) float64
    counts: np.ndarray  # (*bins) int64, training counts (kept for checks and plots)

    def bin_index(self, x: np.ndarray) -> np.ndarray:
        """Truth (n, D) -> flat bin index (n,) int64, clipped into the edge bins."""
        bins = np.array(self.factor.shape)
        width = np.where(self.hi > self.lo, self.hi - self.lo, 1.0)
        idx = np.floor((x - self.lo) / width * bins)
        idx = np.clip(np.nan_to_num(idx), 0, bins - 1).astype(np.int64)
        return np.ravel_multi_index(tuple(idx.T), tuple(bins))


class Reweighter:
    """Per-event weights from fitted task tables (see the module docstring)."""

    def __init__(self, config: ReweightConfig, tables: dict[str, TaskTable], norm: float):
        self.config, self.tables, self.norm = config, tables, float(norm)

    @property
    def arrays(self) -> tuple[str, ...]:
        """Truth arrays the weights are computed from."""
        return tuple(task_array(t) for t in self.tables)

    def raw_factor(self, truth: dict[str, np.ndarray]) -> np.ndarray:
        """Unnormalized product of task factors (n,) float64; 0 where any truth is invalid."""
        out: np.ndarray | None = None
        for task, table in self.tables.items():
            x = _as_2d(truth[task_array(task)])
            f = table.factor.ravel()[table.bin_index(x)] * valid_rows(x)
            out = f if out is None else out * f
        assert out is not None
        return out

    def weights(self, truth: dict[str, np.ndarray]) -> np.ndarray:
        """Weights (n,) float32 with mean 1 over the training split."""
        return (self.raw_factor(truth) / self.norm).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        tables = {
            t: {k: np.asarray(getattr(v, k)).tolist() for k in ("lo", "hi", "factor", "counts")}
            for t, v in self.tables.items()
        }
        return {"config": self.config.to_dict(), "norm": self.norm, "tables": tables}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Reweighter:
        cfg = d["config"]
        values: dict[str, Any] = {
            k: (tuple(v) if isinstance(v, list) else v) for k, v in cfg.items()
        }
        config = ReweightConfig(**values)
        tables = {
            t: TaskTable(
                np.asarray(v["lo"], np.float64),
                np.asarray(v["hi"], np.float64),
                np.asarray(v["factor"], np.float64),
                np.asarray(v["counts"], np.int64),
            )
            for t, v in d["tables"].items()
        }
        return cls(config, tables, d["norm"])


def _as_2d(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(len(x), -1)


def fit(config: ReweightConfig, blocks: Callable[[], Iterator[dict]]) -> Reweighter:
    """Fit from a zero-argument callable returning an iterator of truth dicts (three passes:
    ranges, histograms, normalization), so arrays larger than memory can be streamed."""
    bins = config.task_bins()
    names = {t: task_array(t) for t in bins}
    lo = {t: np.full(len(b), np.inf) for t, b in bins.items()}
    hi = {t: np.full(len(b), -np.inf) for t, b in bins.items()}
    for block in blocks():
        for t in bins:
            x = _as_2d(block[names[t]])
            x = x[valid_rows(x)]
            if len(x):
                lo[t], hi[t] = np.minimum(lo[t], x.min(0)), np.maximum(hi[t], x.max(0))
    counts = {t: np.zeros(b, np.int64) for t, b in bins.items()}
    for block in blocks():
        for t in bins:
            x = _as_2d(block[names[t]])
            x = x[valid_rows(x)]
            probe = TaskTable(lo[t], hi[t], counts[t], counts[t])
            counts[t] += np.bincount(probe.bin_index(x), minlength=counts[t].size).reshape(bins[t])
    for t in bins:
        if not np.isfinite(lo[t]).all():
            raise ValueError(f"reweight.{t}: no valid {names[t]} value in the training split")
    tables = {t: TaskTable(lo[t], hi[t], 1.0 / (counts[t] + config.eps), counts[t]) for t in bins}
    rw = Reweighter(config, tables, 1.0)
    total, n = 0.0, 0
    for block in blocks():
        f = rw.raw_factor(block)
        total, n = total + float(f.sum()), n + len(f)
    if total <= 0:
        raise ValueError("reweight: every training event has invalid truth")
    return Reweighter(config, tables, total / n)


def _split_blocks(store: StoreView, names: tuple[str, ...], ranges: np.ndarray) -> Iterator[dict]:
    for a, b in ranges:
        for s in range(int(a), int(b), _READ_BLOCK):
            e = min(s + _READ_BLOCK, int(b))
            yield {name: np.asarray(store.read_array(name, s, e)) for name in names}


def cache_key(store: StoreView, config: ReweightConfig, ranges: np.ndarray) -> str:
    """Hash of the settings (bins as `task_bins` spells them, eps), the training ranges and
    the store's content id."""
    bins = {task: list(b) for task, b in config.task_bins().items()}
    payload = {
        "config": {"bins": bins, "eps": config.eps},
        "ranges": np.asarray(ranges, np.int64).tolist(),
        "store": store_content_id(store),
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def store_content_id(store: StoreView) -> str:
    """A string that changes when the store's content does: its recorded id, else a hash of its
    metadata without the parts that do not change events (history, tools, time stamps)."""
    meta = getattr(store, "metadata", {}) or {}
    for key in ("content_id", "store_id", "id"):
        if key in meta:
            return str(meta[key])
    content = {k: v for k, v in meta.items() if k not in ("history", "tools", "created")}
    text = json.dumps(content, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def training_ranges(store: StoreView) -> np.ndarray:
    """(R, 2) int64 event ranges of the store's training split: what the fit histograms."""
    return np.asarray(store.split("train"), np.int64).reshape(-1, 2)


def cache_file(store: StoreView, config: ReweightConfig, ranges: np.ndarray) -> Path:
    """Where `xec reweight` keeps the tables of these settings in the store."""
    return Path(store.path) / CACHE_DIR / f"{cache_key(store, config, ranges)}.json"


def cached_reweighter(
    store: StoreView, config: ReweightConfig, ranges: np.ndarray
) -> Reweighter | None:
    """The tables `xec reweight` cached in the store for these settings, None if absent."""
    try:
        return Reweighter.from_dict(json.loads(cache_file(store, config, ranges).read_text()))
    except FileNotFoundError:
        return None


def fit_reweighter(store: StoreView, config: ReweightConfig, ranges: np.ndarray) -> Reweighter:
    """The cached tables of the store's training `ranges` ((R, 2) event ranges), else a fit in
    memory; never writes (module docstring)."""
    cached = cached_reweighter(store, config, ranges)
    if cached is not None:
        return cached
    names = tuple(task_array(t) for t in config.task_bins())
    return fit(config, lambda: _split_blocks(store, names, ranges))


def write_reweighter(store: StoreView, config: ReweightConfig) -> tuple[Reweighter, Path, bool]:
    """Fit on the training split (unless cached) and write the tables into the store
    atomically: (reweighter, cache file, newly written). The caller holds the store's lock."""
    from xecdata.store.format import atomic_write_bytes

    ranges = training_ranges(store)
    path = cache_file(store, config, ranges)
    cached = cached_reweighter(store, config, ranges)
    if cached is not None:
        return cached, path, False
    rw = fit_reweighter(store, config, ranges)
    atomic_write_bytes(path, json.dumps(rw.to_dict()).encode(), fsync=True)
    return rw, path, True


def reweight_command(store: StoreView, config: ReweightConfig) -> str:
    """The `xec reweight` command that caches the tables of `config` in `store`."""
    args = ["xec", "reweight", str(store.path)]
    for task, bins in config.task_bins().items():
        args += ["--task", f"{task}={','.join(map(str, bins))}"]
    if config.eps != DEFAULT_EPS:
        args += ["--eps", repr(config.eps)]
    return shlex.join(args)
