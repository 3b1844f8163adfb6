"""Raw sensor values -> stored codes of one scheme, and exact streaming statistics of codes.

`SchemeEncoder` normalizes with the scheme (`Scheme.normalize_into`) and codes both channels
(precision.ChannelCode) block by block, 16 events at a time, so all intermediate passes stay in
the CPU cache. `CodeStats` accumulates per sensor and channel the count of valid values and the
sums of codes and of squared codes as unsigned integers: exact, so the statistics do not depend
on how events are grouped into units or on the order the sums are combined, and a store written
in one go has the same statistics as one built by `--append`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xecdata.geometry import N_SENSORS
from xecdata.schemes import Scheme
from xecdata.store.precision import ChannelCode

BLOCK_EVENTS = 16  # 16 x 4760 x 2 float32 = 0.6 MB working set


def storage_dtype(codes: tuple[ChannelCode, ChannelCode]) -> str:
    """uint16 when both channels are coded, float32 (lossless) otherwise."""
    return "uint16" if all(c.encoding == "uint16" for c in codes) else "float32"


class SchemeEncoder:
    """Encodes (n, 4760) raw npho and time into (n, 4760, 2) stored values of one scheme."""

    def __init__(self, scheme: Scheme, codes: tuple[ChannelCode, ChannelCode]) -> None:
        self.scheme = scheme
        self.dtype = np.dtype(storage_dtype(codes))
        # a float32 store keeps both channels lossless, whatever each channel could afford
        self.codes = (
            codes
            if self.dtype == np.uint16
            else tuple(ChannelCode("float32", 0.0, 0.0, c.sentinel) for c in codes)
        )
        self.clipped = np.zeros(2, dtype=np.int64)
        self._x = np.empty((BLOCK_EVENTS, N_SENSORS, 2), np.float32)
        self._work = np.empty((BLOCK_EVENTS, N_SENSORS), np.float32)

    def encode(self, npho: np.ndarray, time: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Write the stored values of n events into out[:n] (n, 4760, 2); returns out[:n]."""
        n = len(npho)
        for s in range(0, n, BLOCK_EVENTS):
            e = min(s + BLOCK_EVENTS, n)
            x = self._x[: e - s]
            self.scheme.normalize_into(npho[s:e], time[s:e], x)
            if self.dtype == np.float32:
                out[s:e] = x
                continue
            for ch, code in enumerate(self.codes):
                self.clipped[ch] += code.encode(x[..., ch], out[s:e, :, ch], self._work[: e - s])
        return out[:n]


class CodeStats:
    """Per-sensor, per-channel sums of stored values (exact for uint16 codes)."""

    def __init__(self, dtype: np.dtype) -> None:
        self.integer = np.dtype(dtype) == np.uint16
        acc = np.uint64 if self.integer else np.float64
        self.events = 0
        self.count = np.zeros((N_SENSORS, 2), np.int64)
        self.s1 = np.zeros((N_SENSORS, 2), acc)
        self.s2 = np.zeros((N_SENSORS, 2), acc)

    def add(self, values: np.ndarray, sentinels: tuple[float, float]) -> None:
        """Accumulate (n, 4760, 2) stored values (codes: 0 = sentinel)."""
        self.events += len(values)
        for s in range(0, len(values), BLOCK_EVENTS):
            block = values[s : s + BLOCK_EVENTS]
            if self.integer:
                self.count += np.count_nonzero(block, axis=0)
                self.s1 += block.sum(axis=0, dtype=np.uint64)
                wide = block.astype(np.uint32)
                np.multiply(wide, wide, out=wide)  # 65535^2 < 2^32: exact
                self.s2 += wide.sum(axis=0, dtype=np.uint64)
            else:
                valid = block != np.asarray(sentinels, np.float32)
                v = np.where(valid, block, 0.0).astype(np.float64)
                self.count += valid.sum(axis=0)
                self.s1 += v.sum(axis=0)
                self.s2 += (v * v).sum(axis=0)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"events": np.int64(self.events), "count": self.count, "s1": self.s1, "s2": self.s2}


def merge_stats(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum unit statistics (Python integers for codes: no overflow, no rounding)."""
    total: dict[str, Any] = {"events": 0}
    for p in parts:
        total["events"] += int(p["events"])
        for key in ("count", "s1", "s2"):
            arr = p[key].astype(object) if p[key].dtype.kind in "iu" else p[key]
            total[key] = arr if key not in total else total[key] + arr
    return total


def finish_stats(total: dict[str, Any], codes: tuple[ChannelCode, ChannelCode]) -> np.ndarray:
    """(3, 4760, 2) float64 [mean, std, valid fraction] of the normalized values.

    Sensors never valid get NaN mean and std.
    """
    out = np.full((3, N_SENSORS, 2), np.nan)
    if "count" not in total:
        out[2] = 0.0
        return out
    count, s1, s2 = total["count"], total["s1"], total["s2"]
    out[2] = (count.astype(np.float64) / max(total["events"], 1)).astype(np.float64)
    for ch, code in enumerate(codes):
        n = count[:, ch]
        ok = n.astype(np.int64) > 0
        n_ok = n[ok]
        var_num = n_ok * s2[ok, ch] - s1[ok, ch] * s1[ok, ch]  # exact for integer sums
        mean = (s1[ok, ch] / n_ok).astype(np.float64)
        var = (var_num / (n_ok * n_ok)).astype(np.float64)
        if code.encoding == "uint16":
            mean = code.offset + code.step * (mean - 1.0)
            var = var * code.step**2
        out[0, ok, ch] = mean
        out[1, ok, ch] = np.sqrt(np.maximum(var, 0.0))
    return out
