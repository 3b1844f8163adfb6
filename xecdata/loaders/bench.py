"""Loader throughput measurements (used by `xec bench loader` and benchmarks/loader.py).

Rates are events/s over one epoch of the training split after the first batch (pipeline
start-up excluded), and GB/s of the store's uncompressed sensor bytes (4760 x 2 x 2 B codes
per event), the same bytes the memory-mapped bound reads, so the two compare directly.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from xecdata.geometry import N_SENSORS
from xecdata.loaders import open_loader

if TYPE_CHECKING:
    from xecdata.store import Store

CODE_BYTES = N_SENSORS * 2 * 2  # uncompressed stored bytes of one event's sensors


def loader_rate(
    store: str | Path | Store,
    *,
    backend: str,
    threads: int,
    batch_size: int = 1024,
    device: str = "cpu",
    scheme: str = "new@1",
    max_events: int | None = None,
    min_seconds: float = 1.0,
    **kw: Any,
) -> dict[str, Any]:
    """Events/s and GB/s of one backend: epochs (at least min_seconds, at most max_events)."""
    loader = open_loader(
        store, scheme=scheme, batch_size=batch_size, backend=backend, threads=threads,
        device=device, **kw,
    )  # fmt: skip
    it = iter(loader)
    next(it)  # start-up: thread pools, DALI workers, resident fill, numba load
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while True:  # the rest of the epoch, then whole epochs until min_seconds have passed
        for batch in it:
            n += len(batch)
            if max_events is not None and n >= max_events:
                break
        sync()
        dt = time.perf_counter() - t0
        if dt >= min_seconds or (max_events is not None and n >= max_events):
            break
        it = iter(loader)
    cpu = time.process_time() - c0
    it.close()
    rate = n / dt if dt > 0 else float("nan")
    return {
        "backend": loader.info.backend,
        "threads": threads,
        "batch_size": batch_size,
        "device": device,
        "events": n,
        "seconds": round(dt, 4),
        "events_per_s": round(rate, 1),
        "gb_per_s": round(rate * CODE_BYTES / 1e9, 4),
        "out_gb_per_s": round(
            rate * N_SENSORS * 2 * (2 if "bfloat16" in str(kw.get("dtype")) else 4) / 1e9, 4
        ),
        "cpu_s": round(cpu, 4),
        "events_per_cpu_s": round(n / cpu, 1) if cpu > 0 else None,
    }


def mmap_bound(
    store: Store,
    threads: int,
    scheme: str = "new@1",
    workdir: str | None = None,
    repeats: int = 3,
    decoded: bool = False,
    to_batch: str | None = None,
    batch_size: int = 1024,
) -> dict[str, Any]:
    """The machine's bound: the training events' sensor bytes, uncompressed in one flat file,
    read through a fresh memory map by `threads` threads copying chunk-sized blocks into a
    reused chunk buffer (it stays in cache: the bound costs reads only).

    References reported apart from the bound:
    decoded=True reads the float32 tensor instead (38080 B/event, what the loader delivers);
    to_batch="uint16" copies the codes, in file order, into a ring of 3 batch-sized buffers as
    a loader's output ring (batches do not fit in cache, so each event's bytes are also written
    to memory); to_batch="float32" converts them to float32 on the way (numpy casting, no
    decode rule, no shuffle): the least work of any loader that hands out float32 batches."""
    dtype = np.dtype(np.float32 if decoded else np.uint16)
    path = _flat_file(store, scheme, workdir, decoded)
    n = os.path.getsize(path) // (N_SENSORS * 2 * dtype.itemsize)
    block = int(store.chunk_events)
    if to_batch is None:
        ring = [np.empty((block, N_SENSORS, 2), dtype) for _ in range(threads)]
    else:
        ring = [np.empty((batch_size, N_SENSORS, 2), np.dtype(to_batch)) for _ in range(3)]
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        mm = np.memmap(path, dtype, "r", shape=(n, N_SENSORS, 2))
        t0, c0 = time.perf_counter(), time.process_time()
        _parallel_copy(mm, threads, block, ring, shared=to_batch is not None)
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
        del mm
    rate = n / best
    name = f"mmap_to_batch_{to_batch}" if to_batch else "mmap_float32" if decoded else "mmap"
    return {
        "backend": name,
        "threads": threads,
        "events": n,
        "seconds": round(best, 4),
        "events_per_s": round(rate, 1),
        "gb_per_s": round(rate * CODE_BYTES / 1e9, 4),
        "file_gb_per_s": round(rate * N_SENSORS * 2 * dtype.itemsize / 1e9, 4),
        "cpu_s": round(best_cpu, 4),
        "events_per_cpu_s": round(n / best_cpu, 1) if best_cpu > 0 else None,
    }


def _flat_file(store: Store, scheme: str, workdir: str | None, decoded: bool) -> str:
    """Write (once) the training events' codes (or decoded floats) to a flat file; page it in."""
    import hashlib

    from xecdata.store import raw_codes_reader

    key = f"{store.path}|{scheme}|{store.n_events}|{store.metadata.get('created')}|{decoded}"
    name = hashlib.sha256(key.encode()).hexdigest()[:16]
    path = Path(workdir or tempfile.gettempdir()) / f"xec-mmap-{name}.bin"
    if not path.exists():
        reader, ce = raw_codes_reader(store, scheme), int(store.chunk_events)
        buf = np.empty((ce, N_SENSORS, 2), reader.dtype)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            for a, b in store.split("train"):
                for c in range(a // ce, -(-b // ce)):
                    lo, hi = max(a, c * ce), min(b, (c + 1) * ce)
                    if decoded:
                        f.write(store.read_sensors(scheme, lo, hi).tobytes())
                    else:
                        reader.read_chunk_into(c, buf)
                        f.write(buf[lo - c * ce : hi - c * ce].tobytes())
        os.replace(tmp, path)
    with open(path, "rb") as f:  # warm the page cache, as the store's files are
        while f.read(1 << 24):
            pass
    return str(path)


def _parallel_copy(
    mm: np.ndarray, threads: int, block: int, ring: list[np.ndarray], shared: bool
) -> None:
    """Copy mm in `block`-event pieces. Not shared: thread i reuses ring[i]. Shared: the
    pieces fill the ring's buffers one after the other (each thread writes its own rows of
    them), like batches assembled into a loader's output slots."""
    parts = np.linspace(0, len(mm), threads + 1).astype(int)
    rows = len(ring[0])

    def work(i: int, a: int, b: int) -> None:
        s = a
        while s < b:
            e = min(s + block, b)
            if shared:  # event s goes to row s % rows of buffer (s // rows) % len(ring)
                k, r = divmod(s, rows)
                e = min(e, s + rows - r)
                dst = ring[k % len(ring)][r : r + e - s]
            else:
                dst = ring[i][: e - s]
            np.copyto(dst, mm[s:e], casting="unsafe")
            s = e

    pool = [
        threading.Thread(target=work, args=(i, a, b))
        for i, (a, b) in enumerate(itertools.pairwise(parts))
    ]
    for t in pool:
        t.start()
    for t in pool:
        t.join()


def h2d_bandwidth(nbytes: int = 256 << 20, repeats: int = 10) -> float:
    """Measured pinned host -> device copy bandwidth, GB/s (CUDA only)."""
    src = torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)
    dst = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
    dst.copy_(src, non_blocking=True)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        dst.copy_(src, non_blocking=True)
    torch.cuda.synchronize()
    return nbytes * repeats / (time.perf_counter() - t0) / 1e9


def data_wait(
    store: str | Path | Store,
    *,
    backend: str,
    threads: int,
    batch_size: int = 4096,
    ms_per_4096: float = 1.0,
    scheme: str = "new@1",
    **kw: Any,
) -> dict[str, Any]:
    """Fraction of time a synthetic GPU consumer (a kernel of fixed duration per batch,
    ms_per_4096 ms per 4096 events) waits for data: 1 - busy time / wall time."""
    step_ms = ms_per_4096 * batch_size / 4096
    cycles = _cycles_per_ms() * step_ms
    loader = open_loader(store, scheme=scheme, batch_size=batch_size, backend=backend,
                         threads=threads, device="cuda", **kw)  # fmt: skip
    it = iter(loader)
    next(it)
    torch.cuda.synchronize()
    n, t0 = 0, time.perf_counter()
    for batch in it:
        batch.sensors.sum()  # the step reads its batch (the stream waits for the data)
        torch.cuda._sleep(int(cycles))
        n += 1
    torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    it.close()
    busy = n * step_ms / 1e3
    return {
        "backend": backend,
        "batch_size": batch_size,
        "step_ms": step_ms,
        "batches": n,
        "wall_s": round(wall, 4),
        "wait_fraction": round(max(0.0, 1 - busy / wall), 4),
    }


def _cycles_per_ms() -> float:
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda._sleep(1_000_000)
    start.record()
    torch.cuda._sleep(10_000_000)
    stop.record()
    torch.cuda.synchronize()
    return 10_000_000 / start.elapsed_time(stop)


def run_store_benchmark(
    store: str | Path | Store,
    *,
    backends: tuple[str, ...] = ("cpu", "resident", "dali", "root"),
    threads: tuple[int, ...] = (1, 2),
    batch_size: int = 1024,
    device: str = "cpu",
    scheme: str | None = None,
    root_events: int | None = 8192,
) -> dict[str, Any]:
    """One store: the mmap bound and each backend (x threads), all in one run."""
    from xecdata.store import open_store

    st = open_store(store) if isinstance(store, (str, Path)) else store
    sid = scheme or st.schemes[0]
    out: dict[str, Any] = {"store": str(st.path), "profile": st.metadata["codec"]["name"],
                           "scheme": sid, "device": device, "runs": []}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:  # the flat files go when measured
        out["mmap"] = [mmap_bound(st, t, sid, workdir=tmp) for t in threads]
        if out["profile"] == "none":  # output-side references (module doc of mmap_bound)
            out["mmap_float32"] = [mmap_bound(st, t, sid, tmp, decoded=True) for t in threads]
            out["mmap_to_batch"] = [
                mmap_bound(st, t, sid, tmp, to_batch=dt, batch_size=batch_size)
                for dt in ("uint16", "float32")
                for t in threads
            ]
    for backend in backends:
        for t in threads[-1:] if backend in ("root", "resident") else threads:
            limit = root_events if backend == "root" else None
            run = loader_rate(st, backend=backend, threads=t, batch_size=batch_size,
                              device=device, scheme=sid, max_events=limit)  # fmt: skip
            out["runs"].append(run)
    if device.startswith("cuda"):
        out["h2d_gb_per_s"] = round(h2d_bandwidth(), 3)
        out["data_wait"] = [data_wait(st, backend=b, threads=threads[-1], scheme=sid)
                            for b in backends if b in ("pinned", "dali", "resident")]  # fmt: skip
    best = max(r["events_per_s"] for r in out["mmap"])
    for r in out["runs"]:
        r["fraction_of_mmap"] = round(r["events_per_s"] / best, 4)
    return out


def format_report(result: dict[str, Any]) -> str:
    """Plain-text table of run_store_benchmark's result."""
    lines = [f"store {result['store']} (profile {result['profile']}, {result['scheme']})"]
    for r in result["mmap"]:
        lines.append(f"  mmap bound     threads {r['threads']}: {r['events_per_s']:>12,.0f} ev/s"
                     f"  {r['gb_per_s']:7.3f} GB/s")  # fmt: skip
    for r in result["runs"]:
        lines.append(f"  {r['backend']:<14} threads {r['threads']}: {r['events_per_s']:>12,.0f} "
                     f"ev/s  {r['gb_per_s']:7.3f} GB/s  {100 * r['fraction_of_mmap']:5.1f} % of "
                     "mmap")  # fmt: skip
    for r in result.get("mmap_float32", []):
        lines.append(f"  mmap float32   threads {r['threads']}: {r['events_per_s']:>12,.0f} ev/s"
                     f"  {r['file_gb_per_s']:7.3f} GB/s of float32 (output reference)")  # fmt: skip
    best = max(r["events_per_s"] for r in result["mmap"])
    for r in result.get("mmap_to_batch", []):
        rate = r["events_per_s"]
        lines.append(f"  {r['backend'][5:]:<16} threads {r['threads']}: {rate:>12,.0f} ev/s  "
                     f"{100 * rate / best:5.1f} % of mmap (reference)")  # fmt: skip
    if "h2d_gb_per_s" in result:
        lines.append(f"  pinned H2D bound: {result['h2d_gb_per_s']} GB/s")
    for w in result.get("data_wait", []):
        lines.append(f"  data wait ({w['backend']}, {w['step_ms']} ms/batch): "
                     f"{100 * w['wait_fraction']:.1f} %")  # fmt: skip
    return "\n".join(lines)
