"""The `cpu` backend: decode threads fill a host ring of chunk slots; batches are gathered
from the ring into preallocated output buffers (see `engine` for the schedule).

Host memory is bounded by the buffers, whatever the dataset size:

    ring:    slots x chunk_events x (4760 x 2 x 2 B codes + targets + 4 B weight)
             (no codes for an uncompressed store: the slots view the mapped shard files)
    outputs: n_out x batch_size x (4760 x 2 x itemsize(dtype) + targets + 12 B)

with slots = (events a batch may need decoded, i.e. two shuffle windows, in chunks) + `ring`
extra slots of read-ahead. `host_bytes()` reports the exact figure; nothing else grows with
the epoch (per-batch work allocates only a few index arrays of batch_size entries).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from xecdata.geometry import N_SENSORS
from xecdata.loaders.batch import Batch
from xecdata.loaders.engine import Prefetcher
from xecdata.loaders.sampler import EpochPlan
from xecdata.loaders.source import ChunkSource
from xecdata.store.decoder import BLOCK_ROWS

Alloc = Callable[[tuple[int, ...], np.dtype], np.ndarray]


def host_empty(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    return np.empty(shape, dtype)


class HostRing:
    """`slots` chunk slots of sensors (raw codes or float32), targets and weights.

    With `zero_copy` (an uncompressed store) a slot's sensors are a read-only view of the
    chunk in its mapped shard file (`mapped[slot]`) and no sensor buffer is allocated.
    """

    def __init__(
        self, slots: int, source: ChunkSource, alloc: Alloc = host_empty, zero_copy: bool = False
    ):
        ce = source.chunk_events
        self.slots, self.chunk_events, self.zero_copy = slots, ce, zero_copy
        rows = 0 if zero_copy else slots * ce
        self.sensors = alloc((rows, N_SENSORS, 2), source.raw_dtype)
        self.mapped: list[np.ndarray | None] = [None] * slots
        self.targets = {
            name: alloc((slots * ce, *shape), dtype)
            for name, (shape, dtype) in source.target_specs.items()
        }
        self.weights = alloc((slots * ce,), np.dtype(np.float32))

    def views(self, slot: int) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
        a, b = slot * self.chunk_events, (slot + 1) * self.chunk_events
        return self.sensors[a:b], {k: v[a:b] for k, v in self.targets.items()}, self.weights[a:b]

    @property
    def nbytes(self) -> int:
        arrays = [self.sensors, self.weights, *self.targets.values()]
        return sum(a.nbytes for a in arrays)


class HostOut:
    """`n_out` output batches as torch tensors on the host (numpy views for the gathers)."""

    def __init__(self, n_out: int, batch_size: int, source: ChunkSource, dtype: torch.dtype):
        shape = (n_out, batch_size, N_SENSORS, 2)
        self.sensors = torch.empty(shape, dtype=dtype)
        self.f32 = self.sensors.numpy() if dtype == torch.float32 else None
        self.scratch = np.empty(shape[1:], np.float32) if self.f32 is None else None
        self.targets = {
            name: torch.from_numpy(np.empty((n_out, batch_size, *shape_), dtype_))
            for name, (shape_, dtype_) in source.target_specs.items()
        }
        self.weights = torch.empty((n_out, batch_size), dtype=torch.float32)
        self.index = torch.empty((n_out, batch_size), dtype=torch.int64)
        self.lengths = [0] * n_out

    def batch(self, slot: int) -> Batch:
        n = self.lengths[slot]
        targets = {k: v[slot, :n] for k, v in self.targets.items()}
        return Batch(self.sensors[slot, :n], targets, self.weights[slot, :n], self.index[slot, :n])

    @property
    def nbytes(self) -> int:
        tensors = [self.sensors, self.weights, self.index, *self.targets.values()]
        extra = self.scratch.nbytes if self.scratch is not None else 0
        return sum(t.numel() * t.element_size() for t in tensors) + extra


class HostGather:
    """Gathers a batch's rows from the ring and decodes them, split over `parts` threads.

    Each thread takes a contiguous range of the batch's rows with its own block buffer, so the
    result does not depend on the split; the rows of one block stay in cache between the
    gather and the decode.
    """

    def __init__(self, raw_dtype: np.dtype, parts: int):
        self.work = [np.empty((BLOCK_ROWS, N_SENSORS, 2), raw_dtype) for _ in range(parts)]
        self.pool = ThreadPoolExecutor(parts - 1, "xec-gather") if parts > 1 else None

    @property
    def nbytes(self) -> int:
        return sum(w.nbytes for w in self.work)

    def scatter(
        self,
        ring: HostRing,
        slot_of: np.ndarray,
        loc: np.ndarray,
        out: np.ndarray,
        decoder: Any,
    ) -> None:
        """Zero-copy ring: rows grouped by slot, each group decoded from its mapped chunk
        into its batch positions; the groups are shared out over the threads."""
        order = np.argsort(slot_of, kind="stable")
        cuts = np.flatnonzero(np.diff(slot_of[order])) + 1
        groups = np.split(order, cuts)  # batch positions, one array per slot
        shares: list[list[np.ndarray]] = [[] for _ in self.work]
        for g in sorted(groups, key=len, reverse=True):  # largest first, to the lightest share
            min(shares, key=lambda sh: sum(map(len, sh))).append(g)

        def run(share: list[np.ndarray]) -> None:
            for pos in share:
                src = ring.mapped[int(slot_of[pos[0]])]
                decoder.scatter_decode_into(src, loc[pos], pos, out)

        futures = [self.pool.submit(run, sh) for sh in shares[1:] if sh and self.pool]
        run(shares[0])
        for f in futures:
            f.result()

    def __call__(
        self, ring: HostRing, flat: np.ndarray, out: np.ndarray, decoder: object | None
    ) -> None:
        """out (n, 4760, 2) float32 <- ring rows `flat` (decoded when there is a decoder)."""
        n, parts = len(flat), len(self.work)
        step = -(-n // (parts * BLOCK_ROWS)) * BLOCK_ROWS
        cuts = [min(i * step, n) for i in range(parts + 1)]
        futures = [
            self.pool.submit(self._part, ring, flat, out, decoder, cuts[i], cuts[i + 1], i)
            for i in range(1, parts)
            if self.pool is not None and cuts[i] < cuts[i + 1]
        ]
        self._part(ring, flat, out, decoder, cuts[0], cuts[1], 0)
        for f in futures:
            f.result()

    def _part(
        self,
        ring: HostRing,
        flat: np.ndarray,
        out: np.ndarray,
        decoder: object | None,
        lo: int,
        hi: int,
        k: int,
    ) -> None:
        if decoder is None:
            np.take(ring.sensors, flat[lo:hi], axis=0, out=out[lo:hi])
            return
        decoder.gather_decode_into(  # type: ignore[attr-defined]
            ring.sensors, flat[lo:hi], out[lo:hi], self.work[k]
        )


def assemble_host(
    plan: EpochPlan,
    j: int,
    slot: int,
    seg_slot: np.ndarray,
    ring: HostRing,
    out: HostOut,
    decoder: object | None,
    gather: HostGather,
) -> None:
    """Gather (and decode) batch j of `plan` from the host ring into output slot `slot`."""
    seg, loc = plan.batch(j)
    n = len(seg)
    flat = seg_slot[seg] * ring.chunk_events + loc
    scratch = out.scratch
    target = out.f32[slot, :n] if out.f32 is not None else scratch[:n]  # type: ignore[index]
    if ring.zero_copy:
        gather.scatter(ring, seg_slot[seg], loc, target, decoder)
    else:
        gather(ring, flat, target, decoder)
    if out.f32 is None:
        out.sensors[slot, :n].copy_(torch.from_numpy(target))
    for name, t in out.targets.items():
        np.take(ring.targets[name], flat, axis=0, out=t.numpy()[slot, :n])
    np.take(ring.weights, flat, out=out.weights.numpy()[slot, :n])
    out.index.numpy()[slot, :n] = plan.global_index(seg, loc)
    out.lengths[slot] = n


class CpuBackend:
    """Streaming backend on the host (module docstring)."""

    name = "cpu"

    def __init__(
        self,
        source: ChunkSource,
        *,
        batch_size: int,
        dtype: torch.dtype = torch.float32,
        threads: int = 2,
        ring: int = 2,
        n_out: int = 3,
        device: torch.device | None = None,
    ):
        self.source, self.batch_size, self.dtype = source, batch_size, dtype
        self.threads, self.extra_slots, self.n_out = threads, ring, n_out
        self.device = device or torch.device("cpu")
        self.ring: HostRing | None = None
        self.out = HostOut(n_out, batch_size, source, dtype)
        self.gather = HostGather(source.raw_dtype, threads)

    def _ensure_ring(self, plan: EpochPlan) -> HostRing:
        slots = plan.live_segments() + self.extra_slots
        if self.ring is None or self.ring.slots < slots:  # once, or at an epoch start
            self.ring = None
            zero_copy = bool(getattr(self.source, "zero_copy", False))
            self.ring = HostRing(slots, self.source, zero_copy=zero_copy)
        return self.ring

    def host_bytes(self) -> int:
        """Bytes of every host buffer this backend holds (the bound of the module doc)."""
        return (self.ring.nbytes if self.ring else 0) + self.out.nbytes + self.gather.nbytes

    def _load(self, plan: EpochPlan, ring: HostRing) -> Callable[[int, int], None]:
        def load(seg: int, slot: int) -> None:
            sensors, targets, weights = ring.views(slot)
            chunk = int(plan.seg_chunk[seg])
            if ring.zero_copy:
                ring.mapped[slot] = self.source.view(chunk)[0]  # type: ignore[attr-defined]
                self.source.read_aux(chunk, targets, weights)  # type: ignore[attr-defined]
            else:
                self.source.read(chunk, sensors, targets, weights)

        return load

    def batches(self, plan: EpochPlan, start: int = 0) -> Iterator[Batch]:
        """Batches start..end of the plan, in plan order."""
        ring = self._ensure_ring(plan)
        engine = Prefetcher(
            plan,
            start,
            ring.slots,
            self._load(plan, ring),
            lambda j, slot, seg_slot: assemble_host(
                plan, j, slot, seg_slot, ring, self.out, self.source.decoder, self.gather
            ),
            threads=self.threads,
            n_out=self.n_out,
        )
        for j in engine:
            batch = self.out.batch(j % self.n_out)
            yield batch if self.device.type == "cpu" else _to_device(batch, self.device)


def _to_device(batch: Batch, device: torch.device) -> Batch:
    """Fallback for the cpu backend on an accelerator: copy the batch over (pinned is faster)."""
    return Batch(
        batch.sensors.to(device),
        {k: v.to(device) for k, v in batch.targets.items()},
        batch.weights.to(device),
        batch.index.to(device),
    )
