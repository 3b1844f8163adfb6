"""Raw sensor values -> stored codes of one scheme, with exact streaming statistics.

`SchemeEncoder` works on blocks of 16 events so that every pass stays in the CPU cache:
normalize with the scheme (`Scheme.normalize_into`), then code both channels at once on the
interleaved (16, 9520) view with per-column constants:

    w = x * (1 / step) + (1.5 - offset / step)      float32; code = floor(w) in [1, 65535]
    code = 0 where x == sentinel                    (bit-exact sentinel)

i.e. round-half-up of (x - offset) / step + 1, the quantizer of `precision` (error <= half a
step plus float32 rounding, recorded as max_abs_error). Values outside a channel's range are
clipped to its end codes and counted; the common case (nothing to clip) is detected with one
min and one max reduction and skips the clip pass.

`CodeStats` accumulates, per sensor and channel, the number of valid values and the sums of
codes and of squared codes as unsigned integers (block sums in float64 are exact: 16 * 65535^2
< 2^53). Exact sums make the statistics independent of how events are grouped into units and
of the order in which they are combined, so `--append` reproduces a one-go ingest exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xecdata.geometry import N_SENSORS
from xecdata.schemes import Scheme
from xecdata.store.precision import MAX_CODE, ChannelCode

BLOCK_EVENTS = 16  # 16 x 4760 x 2 float32 = 0.6 MB working set
WIDTH = 2 * N_SENSORS  # one event, channels interleaved


def storage_dtype(codes: tuple[ChannelCode, ChannelCode]) -> str:
    """uint16 when both channels are coded, float32 (lossless) otherwise."""
    return "uint16" if all(c.encoding == "uint16" for c in codes) else "float32"


class CodeStats:
    """Per-sensor, per-channel sums of stored values (exact for uint16 codes)."""

    def __init__(self, dtype: np.dtype | str) -> None:
        self.integer = np.dtype(dtype) == np.uint16
        acc = np.uint64 if self.integer else np.float64
        self.events = 0
        self.count = np.zeros(WIDTH, np.int64)
        self.s1 = np.zeros(WIDTH, acc)
        self.s2 = np.zeros(WIDTH, acc)
        self._f64 = np.empty((BLOCK_EVENTS, WIDTH), np.float64)

    def add_block(self, values: np.ndarray, invalid_per_column: np.ndarray) -> None:
        """One block: values (b, 9520) stored values (sentinels coded 0, or zeroed for float32
        storage), invalid_per_column (9520,) the number of sentinels in each column."""
        b = len(values)
        self.events += b
        self.count += b - invalid_per_column
        f = self._f64[:b]
        np.copyto(f, values)
        s2 = np.einsum("ij,ij->j", f, f)
        if self.integer:  # exact integers (module doc)
            self.s1 += values.sum(axis=0, dtype=np.uint32)
            self.s2 += s2.astype(np.uint64)
        else:
            self.s1 += f.sum(axis=0)
            self.s2 += s2

    def add(self, values: np.ndarray, sentinels: tuple[float, float]) -> None:
        """Accumulate (n, 4760, 2) stored values read back from a store."""
        flat = values.reshape(len(values), WIDTH)
        sent = np.tile(np.asarray(sentinels, flat.dtype), N_SENSORS) if not self.integer else 0
        for s in range(0, len(flat), BLOCK_EVENTS):
            block = flat[s : s + BLOCK_EVENTS]
            bad = block == sent
            if not self.integer:
                block = block * ~bad
            self.add_block(block, bad.sum(axis=0))

    def to_arrays(self) -> dict[str, Any]:
        shape = (N_SENSORS, 2)
        return {
            "events": np.int64(self.events),
            "count": self.count.reshape(shape),
            "s1": self.s1.reshape(shape),
            "s2": self.s2.reshape(shape),
        }


class SchemeEncoder:
    """Encodes (n, 4760) raw npho and time into (n, 4760, 2) stored values of one scheme."""

    def __init__(self, scheme: Scheme, codes: tuple[ChannelCode, ChannelCode]) -> None:
        self.scheme = scheme
        self.dtype = np.dtype(storage_dtype(codes))
        self.codes = codes
        self.sentinel = np.tile(np.array([c.sentinel for c in codes], np.float32), N_SENSORS)
        if self.dtype == np.uint16:
            inv = np.array([1.0 / c.step for c in codes])
            add = np.array([1.5 - c.offset / c.step for c in codes])
            self.scale = np.tile(inv.astype(np.float32), N_SENSORS)
            self.shift = np.tile(add.astype(np.float32), N_SENSORS)
            w_sentinel = self.sentinel[:2] * self.scale[:2] + self.shift[:2]
            self.sentinel_low = w_sentinel < 1.0  # (2,) channels whose sentinel codes below 1
        self.clipped = np.zeros(2, dtype=np.int64)
        self.stats = CodeStats(self.dtype)
        self._x = np.empty((BLOCK_EVENTS, N_SENSORS, 2), np.float32)
        self._w = np.empty((BLOCK_EVENTS, WIDTH), np.float32)
        self._bad = np.empty((BLOCK_EVENTS, WIDTH), np.bool_)
        self._good = np.empty((BLOCK_EVENTS, WIDTH), np.bool_)

    def encode(self, npho: np.ndarray, time: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Write the stored values of n events into out[:n] (n, 4760, 2); adds them to
        self.stats; returns out[:n]."""
        n = len(npho)
        flat = out.reshape(len(out), WIDTH)
        for s in range(0, n, BLOCK_EVENTS):
            e = min(s + BLOCK_EVENTS, n)
            x = self._x[: e - s]
            self.scheme.normalize_into(npho[s:e], time[s:e], x)
            x2, bad, good = x.reshape(e - s, WIDTH), self._bad[: e - s], self._good[: e - s]
            np.equal(x2, self.sentinel, out=bad)
            np.logical_not(bad, out=good)
            bad_per_column = bad.sum(axis=0, dtype=np.int32)
            if self.dtype == np.float32:
                flat[s:e] = x2
                self.stats.add_block(x2 * good, bad_per_column)
            else:
                self._quantize(x2, good, bad_per_column, flat[s:e])
                self.stats.add_block(flat[s:e], bad_per_column)
        return out[:n]

    def _quantize(
        self, x2: np.ndarray, good: np.ndarray, bad_per_column: np.ndarray, codes: np.ndarray
    ) -> None:
        """x2 (b, 9520) float32 normalized -> codes (b, 9520) uint16 (module doc). Only
        arithmetic masks: numpy's masked copies are an order of magnitude slower."""
        w = self._w[: len(x2)]
        np.multiply(x2, self.scale, out=w)
        np.add(w, self.shift, out=w)
        self._count_clipped(w, bad_per_column)
        np.clip(w, 1.0, MAX_CODE + 0.5, out=w)
        np.copyto(codes, w, casting="unsafe")  # float -> uint16 truncates: floor for w >= 1
        np.multiply(codes, good, out=codes)  # sentinels -> code 0

    def _count_clipped(self, w: np.ndarray, bad_per_column: np.ndarray) -> None:
        """Count, per channel, valid values outside [1, 65536) (sentinels excluded).

        Fast path (contiguous passes): the values below 1 are exactly the sentinels of the
        channels whose sentinel codes below 1, and the maximum is in range."""
        low = self._bad[: len(w)]  # free again: bad_per_column holds what is needed
        bad = bad_per_column.reshape(N_SENSORS, 2).sum(axis=0)
        expected = int(bad[self.sentinel_low].sum())
        if np.count_nonzero(np.less(w, 1.0, out=low)) == expected and w.max() < MAX_CODE + 1:
            return
        for ch in (0, 1):  # rare: something is clipped; count per channel
            wc = w[:, ch::2]
            n_low = np.count_nonzero(wc < 1.0) - (bad[ch] if self.sentinel_low[ch] else 0)
            self.clipped[ch] += n_low + np.count_nonzero(wc >= MAX_CODE + 1)


def merge_stats(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum unit statistics exactly. Integer sums add as uint64 while no sum can overflow it
    (s2 <= events * 65535^2 < 2^64 up to 4.29e9 events), else as Python integers; the totals
    come back as Python-integer arrays, which finish_stats multiplies without overflow."""
    events = sum(int(p["events"]) for p in parts)
    wide = events * MAX_CODE**2 >= 2**64
    total: dict[str, Any] = {"events": events}
    for key in ("count", "s1", "s2"):
        for p in parts:
            arr = p[key]
            if arr.dtype.kind in "iu":
                arr = arr.astype(object if wide else np.uint64)
            total[key] = arr if key not in total else total[key] + arr
        if key in total and total[key].dtype.kind == "u":
            total[key] = total[key].astype(object)
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
    out[2] = count.astype(np.float64) / max(total["events"], 1)
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
