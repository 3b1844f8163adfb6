"""Decode the store's 16-bit sensor codes into normalized float32, on the host or the device.

The store keeps each channel as uint16 codes: code 0 is the scheme's sentinel, code c >= 1
means offset + (c - 1) * step (see `xecdata.store.precision`). Loaders move codes (half the
bytes of float32) through their rings and over PCIe, gather a batch's rows of codes, and decode
only the batch, in one pass per block of rows that stays in cache:

    value = float32(c) * float32(step) + float32(offset - step)     (two IEEE roundings)

The numpy (host) and torch (device) twins run exactly these two float32 operations, so every
backend yields bit-identical batches, equal to the store's own lookup table (built by the same
rule, `ChannelCode.lut`); codes whose value would equal the sentinel are moved one float32 up,
as the table does, so a sentinel always means "invalid".
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from xecdata.geometry import N_SENSORS

if TYPE_CHECKING:
    import torch

numba: Any
try:  # the fused host kernel; without numba the numpy block path below does the same
    import numba
except ImportError:  # pragma: no cover - numba is a dependency; kept for exotic platforms
    numba = None

BLOCK_ROWS = 16  # events per decode block: 16 x 4760 x 2 x 4 B = 0.6 MB of float32 (L2)


class CodeDecoder:
    """uint16 codes (..., 4760, 2) -> float32 normalized values (module docstring)."""

    def __init__(self, npho: Any, time: Any, n_sensors: int = N_SENSORS):
        chans = (npho, time)
        self.step32 = np.array([c.step for c in chans], np.float32)  # (2,)
        self.off32 = np.array([c.offset - c.step for c in chans], np.float32)
        self.sentinel32 = np.array([c.sentinel for c in chans], np.float32)
        self.above32 = np.nextafter(self.sentinel32, np.float32(np.inf))
        self.step = np.tile(self.step32, n_sensors)  # (2S,) row pattern, channel fastest
        self.off = np.tile(self.off32, n_sensors)
        self.sentinel = np.tile(self.sentinel32, n_sensors)
        self.above = np.tile(self.above32, n_sensors)
        self._sentinel_bits = self.sentinel.view(np.int32)
        self.collisions = self._collisions()
        self._local = threading.local()

    def _collisions(self) -> list[tuple[int, int]]:
        """(channel, code) pairs, code >= 1, whose value equals the channel's sentinel."""
        codes = np.arange(1, 65536, dtype=np.float32)
        out = []
        for ch in range(2):
            values = codes * self.step32[ch] + self.off32[ch]
            out += [(ch, int(c) + 1) for c in np.flatnonzero(values == self.sentinel32[ch])]
        return out

    def decode_into(self, raw: np.ndarray, out: np.ndarray) -> np.ndarray:
        """raw uint16 (n, S, 2) -> out float32 (n, S, 2); blocked so each block stays in cache.

        Thread-safe (per-thread scratch): threads may decode disjoint rows of one batch.
        """
        n = raw.shape[0]
        r2, o2 = raw.reshape(n, -1), out.reshape(n, -1)  # (n, 2S) views
        for a in range(0, n, BLOCK_ROWS):
            b = min(a + BLOCK_ROWS, n)
            self._block(r2[a:b], o2[a:b])
        return out

    def gather_decode_into(
        self, ring: np.ndarray, rows: np.ndarray, out: np.ndarray, work: np.ndarray
    ) -> np.ndarray:
        """out (n, S, 2) float32 <- decoded ring[rows] (ring (R, S, 2) uint16), in one pass.

        numba fuses the gather and the decode (one read of the codes, one write of the
        floats); without it the rows go block by block through `work` (BLOCK_ROWS, S, 2).
        """
        n = len(rows)
        if not (ring.flags.c_contiguous and out.flags.c_contiguous):
            raise ValueError("gather_decode_into: ring and out must be C-contiguous")
        if _KERNEL is not None:
            r2, o2 = ring.reshape(len(ring), -1), out.reshape(n, -1)  # (R, 2S), (n, 2S)
            _KERNEL(r2, rows, o2, self.step, self.off, self.sentinel, self.above)
            return out
        for a in range(0, n, BLOCK_ROWS):
            b = min(a + BLOCK_ROWS, n)
            np.take(ring, rows[a:b], axis=0, out=work[: b - a])
            self.decode_into(work[: b - a], out[a:b])
        return out

    def scatter_decode_into(
        self, src: np.ndarray, rows: np.ndarray, dst: np.ndarray, out: np.ndarray
    ) -> None:
        """out[dst[i]] = decoded src[rows[i]]: one chunk's rows (src (C, S, 2) uint16, e.g. a
        read-only view of a mapped shard) scattered into their batch positions."""
        if not out.flags.c_contiguous:
            raise ValueError("scatter_decode_into: out must be C-contiguous")
        if _SCATTER is not None:
            _SCATTER(src.reshape(len(src), -1), rows, dst, out.reshape(len(out), -1),
                     self.step, self.off, self.sentinel, self.above)  # fmt: skip
            return
        block = np.empty((len(rows), *out.shape[1:]), np.float32)
        self.decode_into(np.ascontiguousarray(src[rows]), block)
        out[dst] = block

    def _scratch(self, rows: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        s = getattr(self._local, "s", None)
        if s is None or s[0].shape[1] != width:
            s = self._local.s = (
                np.empty((BLOCK_ROWS, width), np.int32),
                np.empty((BLOCK_ROWS, width), np.bool_),
            )
        return s[0][:rows], s[1][:rows]

    def _block(self, r: np.ndarray, o: np.ndarray) -> None:
        """One block: the affine map, the rare sentinel collisions, then code 0 -> sentinel
        as a branch-free bit blend (a masked copy with ~30 % of lanes set is 4x slower)."""
        keep, hit = self._scratch(*r.shape)
        np.copyto(o, r, casting="unsafe")
        np.multiply(o, self.step, out=o)
        np.add(o, self.off, out=o)
        if self.collisions:  # valid codes landing on the sentinel move one float32 up
            np.equal(o, self.sentinel, out=hit)
            if hit.any():
                np.copyto(o, self.above, where=hit)
        np.negative(r, out=keep, dtype=np.int32)
        np.right_shift(keep, 31, out=keep)  # all ones where code >= 1, zero where code == 0
        bits = o.view(np.int32)
        np.bitwise_xor(bits, self._sentinel_bits, out=bits)
        np.bitwise_and(bits, keep, out=bits)
        np.bitwise_xor(bits, self._sentinel_bits, out=bits)  # code 0 -> sentinel bits

    def decode_torch(self, raw: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Device twin of decode_into: raw int16/uint16 (n, S, 2) -> out float32 (n, S, 2)."""
        import torch

        step, off, sentinel, above = self._constants(raw.device)  # (2,) each
        c = raw.view(torch.int16).to(torch.int32).bitwise_and_(0xFFFF)  # the unsigned code
        out.copy_(c)
        out.mul_(step)
        out.add_(off)
        if self.collisions:
            out.copy_(torch.where(out == sentinel, above, out))
        out.copy_(torch.where(c == 0, sentinel, out))
        return out

    def _constants(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        import torch

        cache = self.__dict__.setdefault("_device_constants", {})
        key = str(device)
        if key not in cache:
            arrays = (self.step32, self.off32, self.sentinel32, self.above32)
            cache[key] = tuple(torch.as_tensor(a, device=device) for a in arrays)
        return cache[key]


def _gather_decode(
    ring: np.ndarray,
    rows: np.ndarray,
    out: np.ndarray,
    step: np.ndarray,
    off: np.ndarray,
    sentinel: np.ndarray,
    above: np.ndarray,
) -> None:  # pragma: no cover - compiled by numba
    """out[i] = decode(ring[rows[i]]) row by row: the module's rule, element by element."""
    width = ring.shape[1]
    for i in range(len(rows)):
        src, dst = ring[rows[i]], out[i]
        for k in range(width):
            c = src[k]
            v = np.float32(c) * step[k] + off[k]
            v = above[k] if v == sentinel[k] else v
            dst[k] = sentinel[k] if c == 0 else v


def _scatter_decode(
    src: np.ndarray,
    rows: np.ndarray,
    dst: np.ndarray,
    out: np.ndarray,
    step: np.ndarray,
    off: np.ndarray,
    sentinel: np.ndarray,
    above: np.ndarray,
) -> None:  # pragma: no cover - compiled by numba
    """out[dst[i]] = decode(src[rows[i]]), the rule of _gather_decode."""
    width = src.shape[1]
    for i in range(len(rows)):
        s, d = src[rows[i]], out[dst[i]]
        for k in range(width):
            c = s[k]
            v = np.float32(c) * step[k] + off[k]
            v = above[k] if v == sentinel[k] else v
            d[k] = sentinel[k] if c == 0 else v


# nogil: threads decode disjoint rows of one batch in parallel; no fastmath: IEEE float32
# multiply then add, as numpy and torch do (a fused multiply-add would change the results)
_KERNEL = None if numba is None else numba.njit(nogil=True, cache=True)(_gather_decode)
_SCATTER = None if numba is None else numba.njit(nogil=True, cache=True)(_scatter_decode)
