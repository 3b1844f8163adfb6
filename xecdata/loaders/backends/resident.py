"""The `resident` backend: every chunk of the split decoded once onto the device.

The split's chunks are read once (in parallel) into a ring with one slot per chunk, kept as
16-bit codes (half the bytes of float32); every batch is then a gather plus a decode on the
device, in the sampler's order, so the batches equal the other backends'. Before anything is
allocated the needed bytes are checked against the device's free memory; a split that does
not fit is refused with both figures and the `pinned` backend (bounded memory) as the fix.
Works on a CPU device too (host RAM), which is how the tests run it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from xecdata.loaders.backends.cpu import HostGather, HostOut, HostRing, assemble_host
from xecdata.loaders.backends.pinned import (
    DeviceOut,
    DeviceRing,
    Staging,
    assemble_device,
    give_back,
    hand_over,
)
from xecdata.loaders.batch import Batch
from xecdata.loaders.sampler import EpochPlan, SplitLayout
from xecdata.loaders.source import ChunkSource

FIT_FRACTION = 0.9  # explicit `resident`: the ring may take this much of the free memory
# `auto` picks resident only below this share of the free memory, judged when the loader is
# opened, before the model, optimizer, EMA copy and activations exist: training's train and
# val loaders together then take at most ~58 % of the card, leaving the rest to the model
AUTO_FRACTION = 0.35


def resident_bytes(source: ChunkSource, layout: SplitLayout) -> int:
    """Device bytes of a ring holding every chunk of the split."""
    row = 4760 * 2 * np.dtype(source.raw_dtype).itemsize + 4
    for shape, dt in source.target_specs.values():
        row += int(np.prod(shape, dtype=np.int64)) * np.dtype(dt).itemsize
    return len(layout.chunk_ids) * source.chunk_events * row


def free_bytes(device: torch.device) -> int:
    """Free memory of `device`: CUDA's free bytes, or the host's MemAvailable."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def check_fits(source: ChunkSource, layout: SplitLayout, device: torch.device) -> None:
    """Raise MemoryError naming needed and free bytes when the split does not fit."""
    need, free = resident_bytes(source, layout), free_bytes(device)
    if need > FIT_FRACTION * free:
        raise MemoryError(
            f"backend 'resident': the split needs {need / 1e9:.2f} GB on {device} but only "
            f"{free / 1e9:.2f} GB are free; use backend='pinned' (or 'cpu'), which streams "
            "the split with bounded memory"
        )


class ResidentBackend:
    """Whole split on the device; batches are gathers (module docstring)."""

    name = "resident"

    def __init__(
        self,
        source: ChunkSource,
        layout: SplitLayout,
        *,
        batch_size: int,
        dtype: torch.dtype,
        threads: int,
        device: torch.device,
        n_out: int = 2,
    ):
        check_fits(source, layout, device)
        self.source, self.device, self.threads, self.n_out = source, device, threads, n_out
        self.chunk_ids = layout.chunk_ids
        slots, cuda = len(self.chunk_ids), device.type == "cuda"
        self.ring: Any = DeviceRing(slots, source, device) if cuda else HostRing(slots, source)
        self.out: Any = (
            DeviceOut(n_out, batch_size, source, dtype, device)
            if cuda
            else HostOut(n_out, batch_size, source, dtype)
        )
        self.gather = HostGather(source.raw_dtype, threads)
        self._filled = False

    def host_bytes(self) -> int:
        ring = self.ring.nbytes if isinstance(self.ring, HostRing) else 0
        return ring + (self.out.nbytes if isinstance(self.out, HostOut) else 0)

    def _fill(self) -> None:
        """Decode every chunk of the split into its slot (once)."""
        cuda, local = self.device.type == "cuda", threading.local()

        def read(k: int) -> None:
            chunk = int(self.chunk_ids[k])
            if not cuda:
                self.source.read(chunk, *self.ring.views(k))
                return
            if not hasattr(local, "staging"):  # one pinned staging slot per thread
                local.staging, local.stream = Staging(self.source), torch.cuda.Stream(self.device)
            st = local.staging
            self.source.read(chunk, st.np_sensors, st.np_targets, st.np_weights)
            st.upload(self.ring, k, local.stream)
            local.stream.synchronize()

        with ThreadPoolExecutor(max(1, self.threads)) as pool:
            list(pool.map(read, range(len(self.chunk_ids))))
        self._filled = True

    def batches(self, plan: EpochPlan, start: int = 0) -> Iterator[Batch]:
        if not self._filled:
            self._fill()
        seg_slot = np.searchsorted(self.chunk_ids, plan.seg_chunk)
        cuda = self.device.type == "cuda"
        for j in range(start, plan.n_batches):
            slot = j % self.n_out
            if cuda:
                assemble_device(plan, j, slot, seg_slot, self.ring, self.out, self.source.decoder)
                try:
                    yield hand_over(self.out, slot)
                finally:  # also when the consumer stops early: the slot's last reader
                    give_back(self.out, slot)
            else:
                assemble_host(
                    plan, j, slot, seg_slot, self.ring, self.out, self.source.decoder, self.gather
                )
                yield self.out.batch(slot)
