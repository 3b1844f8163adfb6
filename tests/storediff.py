"""Why two stores that should hold the same bytes do not: per differing chunk, whether the
decoded values differ (which events, which columns, the values) or only their encoding (the
chunk headers). Byte-equality tests put this in their assertion message, so a rare failure
explains itself even after the test's temporary stores are gone (pytest keeps the folders of
its last few runs only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xecdata.store.chunks import ChunkArray

from .rootfiles import array_bytes


def describe_differences(a: Path, b: Path, limit: int = 6) -> str:
    """One paragraph per array file that differs between stores `a` and `b`."""
    fa, fb = array_bytes(a), array_bytes(b)
    out = [f"array files differing between {a} and {b}:"]
    for rel in sorted(set(fa) | set(fb)):
        if fa.get(rel) == fb.get(rel):
            continue
        if rel not in fa or rel not in fb:
            out.append(f"  {rel}: only in {b if rel not in fa else a}")
        elif "/c/" not in rel:
            out.append(f"  {rel}: array metadata differs")
        else:
            out.extend(_shard_lines(a, b, rel, limit))
    return "\n".join(out)


def _shard_lines(a: Path, b: Path, rel: str, limit: int) -> list[str]:
    path, key = rel.split("/c/")
    shard = int(key.split("/")[0])
    arr_a, arr_b = ChunkArray(a, path), ChunkArray(b, path)
    lines = [f"  {rel} (shard {shard} of {path}):"]
    first = shard * arr_a.chunks_per_shard
    for chunk in range(first, min(first + arr_a.chunks_per_shard, arr_a.n_chunks)):
        enc_a, enc_b = arr_a.chunk_bytes(chunk), arr_b.chunk_bytes(chunk)
        if enc_a == enc_b:
            continue
        val_a, val_b = arr_a.scratch().copy(), arr_b.scratch().copy()
        arr_a.read_chunk(chunk, val_a)
        arr_b.read_chunk(chunk, val_b)
        e0 = chunk * arr_a.chunk_events
        head = f"    chunk {chunk} (events {e0}..{e0 + arr_a.chunk_len(chunk) - 1}): "
        head += f"encoded {len(enc_a)} vs {len(enc_b)} bytes, headers {enc_a[:16].hex()} vs "
        head += f"{enc_b[:16].hex()}"
        if val_a.tobytes() == val_b.tobytes():
            lines.append(head + "; SAME decoded values (only the encoding differs)")
            continue
        flat_a = val_a.reshape(len(val_a), -1)
        flat_b = val_b.reshape(len(val_b), -1)
        rows = np.flatnonzero((flat_a != flat_b).any(axis=1) | _nan_mismatch(flat_a, flat_b))
        cols = np.flatnonzero((flat_a[rows] != flat_b[rows]).any(axis=0))
        lines.append(
            head + f"; decoded VALUES differ in {len(rows)} events {(e0 + rows).tolist()}, "
            f"columns {cols.tolist()}"
        )
        for r in rows[:limit]:
            pair = f"{flat_a[r, cols].tolist()} vs {flat_b[r, cols].tolist()}"
            lines.append(f"      event {e0 + r}: {pair}")
    return lines


def _nan_mismatch(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if x.dtype.kind != "f":
        return np.zeros(len(x), bool)
    return (np.isnan(x) != np.isnan(y)).any(axis=1)
