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

from typing import TYPE_CHECKING, Any

import numpy as np

from xecdata.geometry import N_SENSORS

if TYPE_CHECKING:
    import torch

BLOCK_ROWS = 16  # events per decode block: 16 x 4760 x 2 x 4 B = 0.6 MB of float32


class CodeDecoder:
    """uint16 codes (..., 4760, 2) -> float32 normalized values (module docstring)."""

    def __init__(self, npho: Any, time: Any, n_sensors: int = N_SENSORS):
        chans = (npho, time)
        self.step32 = np.array([c.step for c in chans], np.float32)  # (2,)
        self.off32 = np.array([c.offset - c.step for c in chans], np.float32)
        self.sentinel32 = np.array([c.sentinel for c in chans], np.float32)
        self.step = np.tile(self.step32, n_sensors)  # (2S,) row pattern, channel fastest
        self.off = np.tile(self.off32, n_sensors)
        self.sentinel = np.tile(self.sentinel32, n_sensors)
        self.collisions = self._collisions()
        self._work: dict[int, np.ndarray] = {}

    def _collisions(self) -> list[tuple[int, int, np.float32]]:
        """(channel, code, replacement) for codes >= 1 whose value equals the sentinel."""
        codes = np.arange(1, 65536, dtype=np.float32)
        out = []
        for ch in range(2):
            values = codes * self.step32[ch] + self.off32[ch]
            s = self.sentinel32[ch]
            for c in np.flatnonzero(values == s) + 1:
                out.append((ch, int(c), np.nextafter(s, np.float32(np.inf))))
        return out

    def decode_into(self, raw: np.ndarray, out: np.ndarray) -> np.ndarray:
        """raw uint16 (n, S, 2) -> out float32 (n, S, 2); blocked so each block stays in cache."""
        n = raw.shape[0]
        r2, o2 = raw.reshape(n, -1), out.reshape(n, -1)  # (n, 2S) views
        mask = self._mask(min(n, BLOCK_ROWS), r2.shape[1])
        for a in range(0, n, BLOCK_ROWS):
            b = min(a + BLOCK_ROWS, n)
            self._block(r2[a:b], o2[a:b], mask[: b - a])
        return out

    def _mask(self, rows: int, width: int) -> np.ndarray:
        buf = self._work.get(width)
        if buf is None or buf.shape[0] < rows:
            buf = self._work[width] = np.empty((max(rows, BLOCK_ROWS), width), np.bool_)
        return buf

    def _block(self, r: np.ndarray, o: np.ndarray, mask: np.ndarray) -> None:
        np.copyto(o, r, casting="unsafe")
        np.multiply(o, self.step, out=o)
        np.add(o, self.off, out=o)
        np.equal(r, 0, out=mask)
        np.copyto(o, self.sentinel, where=mask)
        for ch, code, value in self.collisions:  # empty for the built-in schemes
            np.equal(r, code, out=mask)
            mask[:, 1 - ch :: 2] = False
            np.copyto(o, value, where=mask)

    def decode_torch(self, raw: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Device twin of decode_into: raw int16/uint16 (n, S, 2) -> out float32 (n, S, 2)."""
        import torch

        dev = raw.device
        c = raw.view(torch.int16).to(torch.int32).bitwise_and_(0xFFFF)  # the unsigned code
        out.copy_(c)
        out.mul_(torch.as_tensor(self.step32, device=dev))
        out.add_(torch.as_tensor(self.off32, device=dev))
        sentinel = torch.as_tensor(self.sentinel32, device=dev).expand_as(out)
        out.copy_(torch.where(c == 0, sentinel, out))
        for ch, code, value in self.collisions:
            out[..., ch].masked_fill_(c[..., ch] == code, float(value))
        return out
