"""The `dali` backend: an NVIDIA DALI pipeline whose parallel external source decodes chunks.

DALI's Python workers (processes) call `ChunkCallback` with the sample index; sample k of an
epoch is segment start + k of the rank's EpochPlan, which each worker recomputes from the
sampler settings (a pure function), so the callback is stateless as DALI requires. The
pipeline (batch of one chunk) copies the outputs to the GPU when `device_id` is set; the loader
copies each output into its ring slot (host or device) and assembles batches exactly as the cpu
/ pinned backends do, so all backends yield identical batches. With `device_id=None` the
pipeline is CPU-only (how CI runs it).

One pipeline serves one pass over an epoch (built at the start of the pass, workers started
with `fork` on a CPU-only pipeline and with `spawn` once CUDA is in use, as DALI requires;
spawned workers import the package, a few seconds per epoch).
Host memory: DALI's prefetch queue (prefetch x one chunk, in shared memory) plus, on a CPU
device, the cpu backend's ring and outputs.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from xecdata.loaders.backends.cpu import HostGather, HostOut, HostRing, assemble_host
from xecdata.loaders.backends.pinned import (
    DeviceOut,
    DeviceRing,
    assemble_device,
    give_back,
    hand_over,
)
from xecdata.loaders.batch import Batch
from xecdata.loaders.engine import Prefetcher
from xecdata.loaders.sampler import EpochPlan, SamplerConfig, SplitLayout, plan_epoch
from xecdata.loaders.source import ChunkSource


class ChunkCallback:
    """Picklable DALI source: sample k -> (sensors int16 (n,4760,2), weights, *targets)."""

    def __init__(
        self,
        make_source: Callable[[], ChunkSource],
        layout: SplitLayout,
        cfg: SamplerConfig,
        epoch: int,
        start_seg: int,
    ):
        self.make_source, self.layout, self.cfg = make_source, layout, cfg
        self.epoch, self.start_seg = epoch, start_seg
        self._state: tuple[Any, ...] | None = None
        self._plans: dict[int, EpochPlan] = {}

    def _setup(self) -> tuple[Any, ...]:
        if self._state is None:  # once per worker process
            source = self.make_source()
            self._state = (source, HostRing(1, source))
        return self._state

    def _plan(self, epoch: int) -> EpochPlan:
        if epoch not in self._plans:
            self._plans = {epoch: plan_epoch(self.layout, self.cfg, epoch)}
        return self._plans[epoch]

    def __call__(self, info: Any) -> tuple[np.ndarray, ...]:
        """DALI's epoch k of this pipeline is the loader's epoch `epoch` + k (a pipeline is
        reset, not rebuilt, between consecutive epochs); the first starts at `start_seg`."""
        source, ring = self._setup()
        k = int(getattr(info, "epoch_idx", 0))
        plan = self._plan(self.epoch + k)
        seg = (self.start_seg if k == 0 else 0) + int(info.idx_in_epoch)
        if seg >= plan.n_segments:
            raise StopIteration
        sensors, targets, weights = ring.views(0)
        n = source.read(int(plan.seg_chunk[seg]), sensors, targets, weights)
        raw = sensors[:n].view(np.int16) if sensors.dtype == np.uint16 else sensors[:n]
        return (raw, weights[:n], *(targets[k][:n] for k in sorted(targets)))


def _copy_out(tensor: Any, dst: torch.Tensor, stream: Any = None) -> None:
    """DALI sample -> preallocated torch memory of the same shape (host ring: raw copy;
    device: on `stream`); the shapes are checked on both paths."""
    if tensor.shape() != list(dst.shape):
        raise ValueError(f"DALI sample of shape {tensor.shape()} for a slot of {list(dst.shape)}")
    if stream is None:
        tensor.copy_to_external(ctypes.c_void_p(dst.data_ptr()))
    else:
        from nvidia.dali.plugin.pytorch import feed_ndarray

        feed_ndarray(tensor, dst, cuda_stream=stream)


class DaliBackend:
    """Batches through a DALI pipeline (module docstring)."""

    name = "dali"

    def __init__(
        self,
        source: ChunkSource,
        make_source: Callable[[], ChunkSource],
        layout: SplitLayout,
        cfg: SamplerConfig,
        *,
        batch_size: int,
        dtype: torch.dtype,
        threads: int,
        ring: int,
        device: torch.device,
        n_out: int = 3,
        prefetch: int | None = None,
    ):
        self.source, self.make_source, self.layout, self.cfg = source, make_source, layout, cfg
        self.device, self.threads, self.extra_slots, self.n_out = device, threads, ring, n_out
        self.prefetch = prefetch or max(2, 2 * threads)
        self.batch_size, self.dtype = batch_size, dtype
        self.ring: Any = None
        cuda = device.type == "cuda"
        self.out: Any = (
            DeviceOut(n_out, batch_size, source, dtype, device)
            if cuda
            else HostOut(n_out, batch_size, source, dtype)
        )
        self.gather = HostGather(source.raw_dtype, threads)
        self._stream = torch.cuda.Stream(device) if cuda else None
        self._last_gather: Any = None
        self._pipe: Any = None  # a pipeline reset for epoch _pipe_epoch, kept between passes
        self._pipe_epoch = -1

    def host_bytes(self) -> int:
        ring = self.ring.nbytes if isinstance(self.ring, HostRing) else 0
        out = self.out.nbytes if isinstance(self.out, HostOut) else 0
        return ring + out + self.prefetch * _chunk_bytes(self.source)

    def _pipeline(self, plan: EpochPlan, start_seg: int) -> Any:
        from nvidia.dali import Pipeline, fn

        cuda = self.device.type == "cuda"
        n_targets = len(self.source.target_specs)
        callback = ChunkCallback(self.make_source, self.layout, self.cfg, plan.epoch, start_seg)
        pipe = Pipeline(
            batch_size=1,
            num_threads=1,
            device_id=self.device.index if cuda else None,  # open_loader gives an index
            py_num_workers=self.threads,
            py_start_method="spawn" if cuda or torch.cuda.is_initialized() else "fork",
            prefetch_queue_depth=self.prefetch,
        )
        with pipe:
            outs = fn.external_source(
                source=callback,
                num_outputs=2 + n_targets,
                parallel=True,
                batch=False,
                bytes_per_sample_hint=_chunk_bytes(self.source),
            )
            pipe.set_outputs(*[o.gpu() for o in outs] if cuda else outs)
        pipe.build()
        return pipe

    def _ensure_ring(self, plan: EpochPlan) -> Any:
        slots = plan.live_segments() + self.extra_slots
        if self.ring is None or self.ring.slots < slots:
            self.ring = None
            cuda = self.device.type == "cuda"
            self.ring = (
                DeviceRing(slots, self.source, self.device)
                if cuda
                else HostRing(slots, self.source)
            )
            if cuda:  # see PinnedBackend.batches: no upload into memory still being read
                torch.cuda.current_stream(self.device).synchronize()
        return self.ring

    def _load(self, pipe: Any, ring: Any) -> Callable[[int, int], None]:
        names = sorted(self.source.target_specs)

        def load(seg: int, slot: int) -> None:
            outs = pipe.run()  # the engine submits segments in order to one thread
            if self._stream is not None and self._last_gather is not None:
                self._stream.wait_event(self._last_gather)  # the slot's last reader is done
            sensors, targets, weights = ring.views(slot)
            # the pipeline's batch is one sample, the chunk: take the sample (n, ...) itself,
            # not the list as a tensor (1, n, ...), whose shape the device copy refuses
            raw = outs[0][0]
            n = raw.shape()[0]
            dst = torch.from_numpy(sensors) if isinstance(sensors, np.ndarray) else sensors
            _copy_out(raw, dst[:n], self._stream)
            w = torch.from_numpy(weights) if isinstance(weights, np.ndarray) else weights
            _copy_out(outs[1][0], w[:n], self._stream)
            for k, o in zip(names, outs[2:], strict=True):
                t = targets[k]
                _copy_out(
                    o[0],
                    (torch.from_numpy(t) if isinstance(t, np.ndarray) else t)[:n],
                    self._stream,
                )
            if self._stream is not None:  # the slot is complete (and DALI may reuse outs)
                self._stream.synchronize()

        return load

    def batches(self, plan: EpochPlan, start: int = 0) -> Iterator[Batch]:
        ring = self._ensure_ring(plan)
        start_seg = plan.batch_segments(start)[0]
        pipe, self._pipe = self._pipe, None
        if pipe is None or start != 0 or plan.epoch != self._pipe_epoch:
            del pipe
            pipe = self._pipeline(plan, start_seg)
        cuda = self.device.type == "cuda"
        if cuda:

            def assemble(j: int, slot: int, seg_slot: np.ndarray) -> None:
                assemble_device(plan, j, slot, seg_slot, ring, self.out, self.source.decoder)
                ev = torch.cuda.Event()
                ev.record(self.out.stream)
                self._last_gather = ev
        else:

            def assemble(j: int, slot: int, seg_slot: np.ndarray) -> None:
                assemble_host(
                    plan, j, slot, seg_slot, ring, self.out, self.source.decoder, self.gather
                )

        engine = Prefetcher(
            plan,
            start,
            ring.slots,
            self._load(pipe, ring),
            assemble,
            threads=1,
            n_out=self.n_out,
            release=(lambda s: give_back(self.out, s)) if cuda else None,
        )
        done = False
        try:
            for j in engine:
                slot = j % self.n_out
                yield hand_over(self.out, slot) if cuda else self.out.batch(slot)
            done = True
        finally:
            engine.close()
            if done and _end_epoch(pipe):  # keep it: the next epoch reuses its workers
                self._pipe, self._pipe_epoch = pipe, plan.epoch + 1
            del pipe


def _end_epoch(pipe: Any) -> bool:
    """Run the pipeline past its last sample and reset it for the next epoch."""
    try:
        pipe.run()
    except StopIteration:
        pipe.reset()
        return True
    return False


def _chunk_bytes(source: ChunkSource) -> int:
    row = 4760 * 2 * np.dtype(source.raw_dtype).itemsize + 4
    for shape, dt in source.target_specs.values():
        row += int(np.prod(shape, dtype=np.int64)) * np.dtype(dt).itemsize
    return source.chunk_events * row
