"""What the per-chunk crc32c costs: decode and loader throughput with and without the check,
in the same process, on the same store (interleaved repeats, best of each).

    decode   every chunk of the sensor tensor, bytes already in memory: decode only vs check +
             decode (one thread; the codec's and the checksum's CPU cost alone)
    loader   the cpu backend over the training split (threads as given): as shipped vs with the
             check switched off (`ChunkArray.payload` patched to strip the 4 bytes unchecked)

Used by benchmarks/loader.py (`--only checksum` runs just this part).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from xecdata.loaders.bench import loader_rate
from xecdata.store import open_store
from xecdata.store.chunks import ChunkArray
from xecdata.store.codecs import CHECKSUM_BYTES


@contextmanager
def unchecked() -> Iterator[None]:
    """Every ChunkArray strips the checksum without checking it (for the comparison only)."""
    checked = ChunkArray.payload

    def strip(self: ChunkArray, data: memoryview, chunk: int) -> memoryview:
        return data[:-CHECKSUM_BYTES] if self.checksum else data

    ChunkArray.payload = strip  # type: ignore[method-assign]
    try:
        yield
    finally:
        ChunkArray.payload = checked  # type: ignore[method-assign]


def decode_rates(arr: ChunkArray, repeats: int) -> dict[str, float]:
    """Events/s of decode-only and check+decode over every chunk held in memory."""
    stored = [_stored(arr, c) for c in range(arr.n_chunks)]
    out = np.empty((arr.chunk_events, *arr.tail), arr.dtype)
    best = {"decode_only": 0.0, "check_and_decode": 0.0}
    for _ in range(repeats):
        for name in best:
            t0 = time.perf_counter()
            for c, data in enumerate(stored):
                if name == "decode_only":
                    _decode(arr, data[:-CHECKSUM_BYTES], out)
                else:
                    arr.decode_into(data, c, out)
            rate = arr.n_events / (time.perf_counter() - t0)
            best[name] = max(best[name], rate)
    return best


def _stored(arr: ChunkArray, chunk: int) -> memoryview:
    """A chunk's bytes as stored (payload + checksum), in memory."""
    path, offset, nbytes = arr.locate(chunk)
    with open(path, "rb") as f:
        f.seek(offset)
        return memoryview(bytearray(f.read(nbytes)))


def _decode(arr: ChunkArray, data: memoryview, out: np.ndarray) -> None:
    if arr.codec is None:
        out.reshape(-1).view(np.uint8)[:] = np.frombuffer(data, np.uint8)
    else:
        arr.codec.decode(data, out=out)


def checksum_cost(store: Path, threads: int, batch_size: int, repeats: int) -> dict[str, Any]:
    """Decode and loader throughput with and without the checksum check (module doc)."""
    st = open_store(store)
    arr = st.sensor_array("new@1")
    if not arr.checksum:
        raise ValueError(f"store {store} has no checksums to measure")
    decode = decode_rates(arr, repeats)
    loader = {"checked": 0.0, "unchecked": 0.0}
    for _ in range(repeats):
        loader["checked"] = max(loader["checked"], _loader(store, threads, batch_size))
        with unchecked():
            loader["unchecked"] = max(loader["unchecked"], _loader(store, threads, batch_size))
    return {
        "store": store.name,
        "profile": st.metadata["codec"]["name"],
        "decode_events_per_s": {k: round(v, 1) for k, v in decode.items()},
        "decode_ratio_checked": round(decode["check_and_decode"] / decode["decode_only"], 4),
        "loader": {"backend": "cpu", "threads": threads, "batch_size": batch_size}
        | {f"{k}_events_per_s": round(v, 1) for k, v in loader.items()},
        "loader_ratio_checked": round(loader["checked"] / loader["unchecked"], 4),
    }


def _loader(store: Path, threads: int, batch_size: int) -> float:
    r = loader_rate(store, backend="cpu", threads=threads, batch_size=batch_size)
    return float(r["events_per_s"])
