"""The prefetching engine shared by the streaming backends (cpu, pinned, dali, root).

A background thread walks an EpochPlan batch by batch. For batch j it needs the segments
[s0, s1) decoded (`EpochPlan.batch_segments`); it frees the ring slots of segments before s0
(no later batch needs them), hands new segments to the decode pool while slots are free (so
decoding runs ahead of the consumer, bounded by the ring), waits for [s0, s1), then calls
`assemble(j, out_slot, seg_slot)` and queues the result. Decoding is parallel; assembly is in
plan order, so the output never depends on thread timing.

Output slots: `n_out` batch buffers are reused round robin. The engine writes batch j into slot
j % n_out only after the consumer asked for batch j - n_out + 1, i.e. gave batch j - n_out
back: a yielded Batch is valid until the consumer draws the next one (clone it to keep it).
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from xecdata.loaders.sampler import EpochPlan

_END = object()
_POLL_S = 0.05


class Prefetcher:
    """Runs one epoch (from batch `start`) of `plan` through a ring of `n_slots` chunk slots."""

    def __init__(
        self,
        plan: EpochPlan,
        start: int,
        n_slots: int,
        load: Callable[[int, int], None],
        assemble: Callable[[int, int, np.ndarray], None],
        *,
        threads: int,
        n_out: int,
        release: Callable[[int], None] | None = None,
    ):
        need = plan.live_segments()
        if n_slots < need:
            raise ValueError(f"ring of {n_slots} chunk slots < {need} needed by one batch")
        self.plan, self.start, self.n_slots = plan, start, n_slots
        self._load, self._assemble, self._release = load, assemble, release
        self._pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="xec-decode")
        self._n_out = n_out
        self._out_free = threading.Semaphore(n_out)
        self._queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="xec-assemble", daemon=True)
        self._thread.start()

    # ---- engine thread -------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._walk()
            self._queue.put(_END)
        except BaseException as err:  # handed to the consumer, raised there
            self._queue.put(err)

    def _walk(self) -> None:
        plan = self.plan
        seg_slot = np.full(plan.n_segments, -1, dtype=np.int64)
        free = deque(range(self.n_slots))
        futures: dict[int, Future] = {}
        first_seg = plan.batch_segments(self.start)[0] if self.start < plan.n_batches else 0
        next_seg, oldest = first_seg, first_seg
        for j in range(self.start, plan.n_batches):
            s0, s1 = plan.batch_segments(j)
            while oldest < s0:  # no batch from j on needs these segments
                if oldest in futures:
                    futures.pop(oldest).result()
                    free.append(int(seg_slot[oldest]))
                oldest += 1
            while next_seg < plan.n_segments and free:
                seg_slot[next_seg] = slot = free.popleft()
                futures[next_seg] = self._pool.submit(self._load, next_seg, slot)
                next_seg += 1
            for s in range(s0, s1):
                futures[s].result()
            if not self._acquire_out():
                return
            self._assemble(j, j % self._n_out, seg_slot)
            self._queue.put(j)
        for f in futures.values():
            f.result()

    def _acquire_out(self) -> bool:
        while not self._out_free.acquire(timeout=_POLL_S):
            if self._stop.is_set():
                return False
        return not self._stop.is_set()

    # ---- consumer side -------------------------------------------------------------------
    def __iter__(self) -> Iterator[int]:
        """Yields batch numbers j in order; the batch sits in output slot j % n_out."""
        try:
            while True:
                item = self._queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                try:
                    yield item
                finally:
                    # the consumer asked for the next batch (or stopped): it is done with this
                    # one, as far as its host side knows; release marks it on its stream
                    if self._release is not None:
                        self._release(item % self._n_out)
                    self._out_free.release()
        finally:
            self.close()

    def close(self) -> None:
        """Stop the engine and wait for in-flight decodes (they write into the ring)."""
        self._stop.set()
        self._thread.join()
        self._pool.shutdown(wait=True, cancel_futures=True)
