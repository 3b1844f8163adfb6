"""Precision policy: how each channel of a scheme's normalized tensor is stored.

Measured choice (benchmarks/precision.py; figures in benchmarks/results/precision.json): both
channels are stored as 16-bit codes of the *normalized* value with one code reserved for the
sentinel. The decode rule is part of the format (loaders evaluate it on the GPU as is; the CPU
reader evaluates it through a 65536-entry float32 lookup table, bit-identical):

    code 0        -> the scheme's sentinel, bit-exact
    code c >= 1   -> float32(c) * float32(step) + float32(offset - step)   (float32, two
                     roundings, no fused multiply-add)

Steps are derived from the physics tolerances, never typed per scheme:

- npho: the error in photons must stay under tol(x) = max(0.1 sqrt(max(|x|, 1)), 1e-3 |x|)
  (a tenth of the Poisson noise; relative 1e-3 once counts pass 1e4). step = 0.8 * min over
  x in [0, NPHO_MAX] of 2 tol(x) / |dx/dy| for the scheme's transform y(x). The code range runs
  from y(NPHO_MAX) down as far as the 65535 codes reach (or to the transform's domain /
  the sentinel). A transform that cannot meet the tolerance in 16 bits (`linear`) is stored as
  float32 (lossless) instead.
- time: a fixed physical step TIME_STEP_S = 20 ps (RMS error 5.8 ps, max 10 ps), i.e. step =
  TIME_STEP_S / time_scale in normalized units, centred on t = 0 s: the 65535 codes cover
  +-655 ns, wider than the readout window. fp16 (step ~60 ps at the built-ins' values) fails.

Values outside a channel's range are clipped to its end codes and counted (metadata
`clipped`); LUT entries that would equal the sentinel are moved one float32 up, so code 0 is
the only way to read a sentinel. Encoding runs in float32 with preallocated buffers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from xecdata.schemes import Scheme

N_CODES = 65536
MAX_CODE = N_CODES - 1
SENTINEL_CODE = 0
NPHO_MAX = 1e7  # photons: top of the npho code range (sensors saturate far below)
TIME_STEP_S = 20e-12  # seconds per time code
NPHO_SAFETY = 0.8  # margin between the derived step and the tolerance


def npho_tolerance(x: np.ndarray) -> np.ndarray:
    """Allowed |error| in photons at raw count x: max(0.1 sqrt(max(|x|,1)), 1e-3 |x|)."""
    ax = np.abs(np.asarray(x, dtype=np.float64))
    return np.maximum(0.1 * np.sqrt(np.maximum(ax, 1.0)), 1e-3 * ax)


@dataclass(frozen=True)
class ChannelCode:
    """Storage of one channel: `uint16` LUT codes (see module doc) or lossless `float32`."""

    encoding: str  # "uint16" or "float32"
    step: float  # normalized units per code (0 for float32)
    offset: float  # normalized value of code 1
    sentinel: float  # value of code 0

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint16 if self.encoding == "uint16" else np.float32)

    def lut(self) -> np.ndarray:
        """(65536,) float32 decode table of the module's decode rule; entry 0 is the sentinel."""
        lut = np.arange(N_CODES, dtype=np.float32)
        np.multiply(lut, np.float32(self.step), out=lut)
        np.add(lut, np.float32(self.offset - self.step), out=lut)
        sentinel = np.float32(self.sentinel)
        lut[lut == sentinel] = np.nextafter(sentinel, np.float32(np.inf))
        lut[SENTINEL_CODE] = sentinel
        return lut

    def encode(self, values: np.ndarray, out: np.ndarray, work: np.ndarray) -> int:
        """values float32 (...) -> out codes (same shape, uint16); returns the clipped count.

        code = floor((v - offset) / step + 1.5), i.e. round-half-up of the step index plus
        one, clipped to [1, 65535]; 0 for the sentinel. work: float32 buffer of the same
        shape (overwritten). For float32 encoding, out receives the values unchanged.
        (SchemeEncoder is the fused fast path of the same rule.)
        """
        if self.encoding == "float32":
            np.copyto(out, values)
            return 0
        np.multiply(values, np.float32(1.0 / self.step), out=work)
        np.add(work, np.float32(1.5 - self.offset / self.step), out=work)
        is_sentinel = values == np.float32(self.sentinel)
        clipped = np.count_nonzero(((work < 1) | (work >= N_CODES)) & ~is_sentinel)
        np.clip(work, 1, MAX_CODE + 0.5, out=work)
        np.copyto(out, work, casting="unsafe")
        np.copyto(out, SENTINEL_CODE, where=is_sentinel)
        return int(clipped)

    def decode(self, codes: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """codes -> float32 values (uses the LUT; float32 encoding copies)."""
        if out is None:
            out = np.empty(np.shape(codes), np.float32)
        if self.encoding == "float32":
            np.copyto(out, codes)
        else:
            np.take(self.lut(), codes, out=out)
        return out

    def max_abs_error(self) -> float:
        """Worst-case |decoded - normalized| inside the range (0 if lossless): half a step,
        plus 1% of a step for the float32 arithmetic of the encoder, plus the decoder's
        float32 roundings."""
        if self.encoding == "float32":
            return 0.0
        top = max(abs(self.offset), abs(self.offset + self.step * (MAX_CODE - 1)))
        return 0.51 * self.step + 4 * float(np.spacing(np.float32(top)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ChannelCode:
        return cls(str(d["encoding"]), float(d["step"]), float(d["offset"]), float(d["sentinel"]))


def npho_code(scheme: Scheme) -> ChannelCode:
    """The npho channel's storage for `scheme`, derived from the tolerance (module doc)."""
    tr, s1, s2 = scheme.transform, scheme.npho_scale, scheme.npho_scale2
    x = np.concatenate([np.linspace(0.0, 1.0, 201), np.geomspace(1.0, NPHO_MAX, 4001)[1:]])
    y = tr.forward(x, s1, s2)
    slope = np.diff(x) / np.diff(y)  # dx/dy between grid points (> 0: transforms increase)
    step = NPHO_SAFETY * float(np.min(2 * npho_tolerance(x[:-1]) / slope))
    y_hi = float(y[-1])
    floor = float(np.nextafter(np.float32(scheme.npho_sentinel), np.float32(np.inf)))
    limit = tr.domain_limit(s1)
    if np.isfinite(limit):
        with np.errstate(divide="ignore"):  # log1p at its limit is -inf
            floor = max(floor, float(tr.forward(np.asarray(limit), s1, s2)))
    y_lo = max(floor, y_hi - step * (MAX_CODE - 1))
    code = ChannelCode("uint16", step, y_lo, scheme.npho_sentinel)
    zero = float(tr.forward(np.zeros(()), s1, s2))
    if y_lo > zero or not _npho_within_tolerance(scheme, code):
        return ChannelCode("float32", 0.0, 0.0, scheme.npho_sentinel)
    return code


def _npho_within_tolerance(scheme: Scheme, code: ChannelCode) -> bool:
    """Round-trip a dense grid of counts in the code range; True when all meet npho_tolerance."""
    tr, s1, s2 = scheme.transform, scheme.npho_scale, scheme.npho_scale2
    x_lo = float(tr.inverse(np.asarray(code.offset), s1, s2))
    x = np.concatenate([np.linspace(max(x_lo, -1e3), 1.0, 20001), np.geomspace(1, NPHO_MAX, 20001)])
    y = tr.forward(x, s1, s2).astype(np.float32)
    codes = np.empty(y.shape, np.uint16)
    code.encode(y, codes, np.empty_like(y))
    back = tr.inverse(code.lut()[codes], s1, s2)
    return bool(np.all(np.abs(back - x) <= npho_tolerance(x)))


def time_code(scheme: Scheme) -> ChannelCode:
    """The time channel's storage: TIME_STEP_S per code, centred on t = 0 s."""
    step = TIME_STEP_S / scheme.time_scale
    centre = -scheme.time_shift  # normalized value of t = 0 s
    offset = centre - step * (MAX_CODE - 1) / 2
    return ChannelCode("uint16", step, offset, scheme.time_sentinel)


def scheme_codes(scheme: Scheme) -> tuple[ChannelCode, ChannelCode]:
    """(npho, time) storage of a scheme's two channels."""
    return npho_code(scheme), time_code(scheme)


def precision_summary(scheme: Scheme, codes: tuple[ChannelCode, ChannelCode]) -> dict[str, Any]:
    """Metadata record of a scheme's storage: steps, ranges and errors in physical units."""
    npho, time = codes
    tr, s1, s2 = scheme.transform, scheme.npho_scale, scheme.npho_scale2
    out: dict[str, Any] = {"npho": npho.to_dict(), "time": time.to_dict()}
    out["npho"]["max_abs_error_normalized"] = npho.max_abs_error()
    out["npho"]["tolerance"] = "max(0.1*sqrt(max(|npho|,1)), 1e-3*|npho|) photons"
    if npho.encoding == "uint16":
        top = npho.offset + npho.step * (MAX_CODE - 1)
        ends = np.array([npho.offset, top])
        out["npho"]["range_photons"] = [float(v) for v in tr.inverse(ends, s1, s2)]
    out["time"]["max_abs_error_normalized"] = time.max_abs_error()
    out["time"]["step_s"] = time.step * scheme.time_scale
    out["time"]["rms_error_s"] = time.step * scheme.time_scale / np.sqrt(12)
    out["time"]["max_error_s"] = time.max_abs_error() * scheme.time_scale
    t_ends = [time.offset, time.offset + time.step * (MAX_CODE - 1)]
    out["time"]["range_s"] = [(v + scheme.time_shift) * scheme.time_scale for v in t_ends]
    return out
