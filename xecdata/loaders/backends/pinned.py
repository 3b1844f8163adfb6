"""The `pinned` backend: the cpu backend's decode threads and schedule, with the ring on the GPU.

Each decode thread owns one pinned host staging slot: it decodes a chunk's codes into it,
copies it to the chunk's GPU ring slot on its own side stream (non-blocking; the copy first
waits for the last batch gather, so a freed slot is never overwritten while read) and returns
once the copy is done. Batches are gathered and decoded on the GPU on an assembly stream; the
consumer's stream waits only for its own batch's event, and the assembly of the output slot
it gives back waits for the event recorded when the consumer drew the next batch.

Host memory: threads x one chunk slot of pinned staging (codes + targets + weights) plus
n_out x batch_size int64 of pinned indices. GPU memory: the ring (slots as for cpu) and
n_out output batches.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from xecdata.geometry import N_SENSORS
from xecdata.loaders.batch import Batch
from xecdata.loaders.engine import Prefetcher
from xecdata.loaders.sampler import EpochPlan
from xecdata.loaders.source import ChunkSource

_TORCH = {np.dtype(np.uint16): torch.int16, np.dtype(np.float32): torch.float32}


def torch_dtype(dtype: np.dtype) -> torch.dtype:
    """Ring dtype on the device: codes travel as int16 (same bits), the rest as they are."""
    return _TORCH.get(np.dtype(dtype)) or torch.from_numpy(np.zeros(0, dtype)).dtype


class DeviceRing:
    """`slots` chunk slots on `device` (torch tensors)."""

    def __init__(self, slots: int, source: ChunkSource, device: torch.device):
        ce = source.chunk_events
        self.slots, self.chunk_events = slots, ce
        self.sensors = torch.empty(
            (slots * ce, N_SENSORS, 2), dtype=torch_dtype(source.raw_dtype), device=device
        )
        self.targets = {
            k: torch.empty((slots * ce, *shape), dtype=torch_dtype(dt), device=device)
            for k, (shape, dt) in source.target_specs.items()
        }
        self.weights = torch.empty(slots * ce, dtype=torch.float32, device=device)

    def views(self, slot: int) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        a, b = slot * self.chunk_events, (slot + 1) * self.chunk_events
        return self.sensors[a:b], {k: v[a:b] for k, v in self.targets.items()}, self.weights[a:b]


class Staging:
    """One chunk slot in pinned host memory (torch tensors with numpy views for the source)."""

    def __init__(self, source: ChunkSource):
        ring = DeviceRing(1, source, torch.device("cpu"))
        pin = torch.cuda.is_available()
        self.sensors = ring.sensors.pin_memory() if pin else ring.sensors
        self.targets = {k: v.pin_memory() if pin else v for k, v in ring.targets.items()}
        self.weights = ring.weights.pin_memory() if pin else ring.weights
        self.np_sensors = self.sensors.numpy().view(source.raw_dtype)
        self.np_targets = {k: v.numpy() for k, v in self.targets.items()}
        self.np_weights = self.weights.numpy()
        self.stream: Any = None  # the side stream of its uploads (set by its owner)

    @property
    def nbytes(self) -> int:
        ts = [self.sensors, self.weights, *self.targets.values()]
        return sum(t.numel() * t.element_size() for t in ts)

    def upload(self, ring: DeviceRing, slot: int, stream: torch.cuda.Stream) -> None:
        """Non-blocking copy of this staging slot into ring slot `slot` on `stream`."""
        sensors, targets, weights = ring.views(slot)
        with torch.cuda.stream(stream):
            sensors.copy_(self.sensors, non_blocking=True)
            for k, t in targets.items():
                t.copy_(self.targets[k], non_blocking=True)
            weights.copy_(self.weights, non_blocking=True)


class DeviceOut:
    """`n_out` output batches on the device, plus the assembly stream and its events."""

    def __init__(
        self,
        n_out: int,
        batch_size: int,
        source: ChunkSource,
        dtype: torch.dtype,
        device: torch.device,
    ):
        self.sensors = torch.empty((n_out, batch_size, N_SENSORS, 2), dtype=dtype, device=device)
        self.f32 = (
            self.sensors
            if dtype == torch.float32
            else torch.empty((batch_size, N_SENSORS, 2), dtype=torch.float32, device=device)
        )
        self.raw = torch.empty(
            (batch_size, N_SENSORS, 2), dtype=torch_dtype(source.raw_dtype), device=device
        )
        self.targets = {
            k: torch.empty((n_out, batch_size, *shape), dtype=torch_dtype(dt), device=device)
            for k, (shape, dt) in source.target_specs.items()
        }
        self.weights = torch.empty((n_out, batch_size), dtype=torch.float32, device=device)
        self.index = torch.empty((n_out, batch_size), dtype=torch.int64, device=device)
        pin = device.type == "cuda"
        self.flat_host = torch.empty((n_out, 2, batch_size), dtype=torch.int64, pin_memory=pin)
        self.flat = torch.empty((n_out, 2, batch_size), dtype=torch.int64, device=device)
        self.lengths = [0] * n_out
        cuda = device.type == "cuda"
        self.stream = torch.cuda.Stream(device) if cuda else None
        self.ready = [torch.cuda.Event() if cuda else None for _ in range(n_out)]
        self.given_back: list[torch.cuda.Event | None] = [None] * n_out

    def batch(self, slot: int) -> Batch:
        n = self.lengths[slot]
        targets = {k: v[slot, :n] for k, v in self.targets.items()}
        return Batch(self.sensors[slot, :n], targets, self.weights[slot, :n], self.index[slot, :n])


def assemble_device(
    plan: EpochPlan,
    j: int,
    slot: int,
    seg_slot: np.ndarray,
    ring: DeviceRing,
    out: DeviceOut,
    decoder: object | None,
) -> None:
    """Gather (and decode) batch j from the device ring into output slot `slot`."""
    seg, loc = plan.batch(j)
    n = len(seg)
    ev = out.ready[slot]
    if ev is not None:
        ev.synchronize()  # the pinned index staging of this slot is free again
    host = out.flat_host[slot].numpy()
    host[0, :n] = seg_slot[seg] * ring.chunk_events + loc
    host[1, :n] = plan.global_index(seg, loc)
    stream = out.stream  # None on a CPU device (the torch path is then testable without CUDA)
    ctx = torch.cuda.stream(stream) if stream is not None else _nullcontext()
    with ctx:
        given_back = out.given_back[slot]
        if given_back is not None and stream is not None:
            stream.wait_event(given_back)
        out.flat[slot].copy_(out.flat_host[slot], non_blocking=True)  # contiguous (2, B)
        flat = out.flat[slot, 0, :n]
        f32 = out.f32[slot, :n] if out.f32.dim() == 4 else out.f32[:n]
        if decoder is None:
            torch.index_select(ring.sensors, 0, flat, out=f32)
        else:
            torch.index_select(ring.sensors, 0, flat, out=out.raw[:n])
            decoder.decode_torch(out.raw[:n], f32)  # type: ignore[attr-defined]
        if f32.data_ptr() != out.sensors[slot].data_ptr():
            out.sensors[slot, :n].copy_(f32)
        for k, t in out.targets.items():
            torch.index_select(ring.targets[k], 0, flat, out=t[slot, :n])
        torch.index_select(ring.weights, 0, flat, out=out.weights[slot, :n])
        out.index[slot, :n].copy_(out.flat[slot, 1, :n])
        if ev is not None:
            ev.record(stream)
    out.lengths[slot] = n


class _nullcontext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def hand_over(out: DeviceOut, slot: int) -> Batch:
    """The batch in `slot`, with the consumer's current stream waiting for its event."""
    ev = out.ready[slot]
    if ev is not None:
        torch.cuda.current_stream(out.sensors.device).wait_event(ev)
    return out.batch(slot)


def give_back(out: DeviceOut, slot: int) -> None:
    """The consumer drew the next batch: mark (on its stream) when it is done with `slot`."""
    if out.stream is None:
        return
    ev = torch.cuda.Event()
    ev.record(torch.cuda.current_stream(out.sensors.device))
    out.given_back[slot] = ev


class PinnedBackend:
    """Streaming backend with pinned staging and a GPU ring (module docstring)."""

    name = "pinned"

    def __init__(
        self,
        source: ChunkSource,
        *,
        batch_size: int,
        dtype: torch.dtype,
        threads: int,
        ring: int,
        device: torch.device,
        n_out: int = 3,
    ):
        if device.type != "cuda":
            raise ValueError("backend 'pinned' needs device='cuda'; use backend='cpu' on a CPU")
        self.source, self.device, self.threads = source, device, threads
        self.extra_slots, self.n_out = ring, n_out
        self.ring: DeviceRing | None = None
        self.out = DeviceOut(n_out, batch_size, source, dtype, device)
        self._lock = threading.Lock()
        self._stagings: list[Staging] = []  # every staging slot made (bounded by threads)
        self._free: list[Staging] = []
        self._last_gather: torch.cuda.Event | None = None

    def host_bytes(self) -> int:
        return sum(s.nbytes for s in self._stagings) + self.out.flat_host.numel() * 8

    def _staging(self) -> Staging:
        """A free staging slot (at most one per decode thread is ever created)."""
        with self._lock:
            if self._free:
                return self._free.pop()
            st = Staging(self.source)
            st.stream = torch.cuda.Stream(self.device)
            self._stagings.append(st)
            return st

    def _load(self, plan: EpochPlan, ring: DeviceRing) -> Callable[[int, int], None]:
        def load(seg: int, slot: int) -> None:
            st = self._staging()
            try:
                chunk = int(plan.seg_chunk[seg])
                self.source.read(chunk, st.np_sensors, st.np_targets, st.np_weights)
                if self._last_gather is not None:
                    st.stream.wait_event(self._last_gather)  # the slot's last reader is done
                st.upload(ring, slot, st.stream)
                st.stream.synchronize()
            finally:
                with self._lock:
                    self._free.append(st)

        return load

    def batches(self, plan: EpochPlan, start: int = 0) -> Iterator[Batch]:
        slots = plan.live_segments() + self.extra_slots
        if self.ring is None or self.ring.slots < slots:
            self.ring = None
            self.ring = DeviceRing(slots, self.source, self.device)
            # the side streams' uploads must not write memory that kernels still queued on
            # the consumer's stream read before the allocator handed it to the ring
            torch.cuda.current_stream(self.device).synchronize()
        ring, out = self.ring, self.out

        def assemble(j: int, slot: int, seg_slot: np.ndarray) -> None:
            assemble_device(plan, j, slot, seg_slot, ring, out, self.source.decoder)
            ev = torch.cuda.Event()
            ev.record(out.stream)
            self._last_gather = ev

        engine = Prefetcher(
            plan,
            start,
            ring.slots,
            self._load(plan, ring),
            assemble,
            threads=self.threads,
            n_out=self.n_out,
            release=lambda slot: give_back(out, slot),
        )
        for j in engine:
            yield hand_over(out, j % self.n_out)
