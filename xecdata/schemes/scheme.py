"""The `Scheme` dataclass: frozen parameters, content hash, numpy and torch (de)normalization.

The invalid-sensor rules are documented in the package docstring (`xecdata.schemes`).
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import re
from dataclasses import dataclass, fields
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from xecdata.markers import DEAD_ABOVE, TIME_INVALID_ABOVE
from xecdata.markers import float32_above as _above
from xecdata.schemes import kernels
from xecdata.schemes.transforms import Transform, get_transform

if TYPE_CHECKING:
    import torch

NAME_PATTERN = r"[A-Za-z][A-Za-z0-9_.-]*"
# Parameters that define the numbers a scheme produces; the content hash covers exactly these.
PARAMETER_FIELDS: tuple[str, ...] = (
    "npho_transform",
    "npho_scale",
    "npho_scale2",
    "time_scale",
    "time_shift",
    "npho_sentinel",
    "time_sentinel",
    "npho_threshold",
)
_POSITIVE = ("npho_scale", "npho_scale2", "time_scale")
_BLOCK_ELEMENTS = 1 << 17  # ~0.5 MB float32 work buffers: cache-resident on every CPU


@dataclass(frozen=True)
class Scheme:
    """A normalization scheme: `name@version` plus frozen parameters (see the package doc)."""

    name: str
    version: int
    npho_transform: str
    npho_scale: float
    npho_scale2: float
    time_scale: float
    time_shift: float
    npho_sentinel: float
    time_sentinel: float
    npho_threshold: float

    def __post_init__(self) -> None:
        where = f"scheme '{self.name}@{self.version}'"
        if not isinstance(self.name, str) or not re.fullmatch(NAME_PATTERN, self.name):
            raise ValueError(f"{where}: key 'name' must match {NAME_PATTERN} (no '@')")
        if isinstance(self.version, bool) or not isinstance(self.version, numbers.Integral):
            raise ValueError(f"{where}: key 'version' must be an integer >= 1")
        object.__setattr__(self, "version", int(self.version))
        if self.version < 1:
            raise ValueError(f"{where}: key 'version' must be >= 1, got {self.version}")
        get_transform(self.npho_transform)
        for key in PARAMETER_FIELDS[1:]:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ValueError(f"{where}: key '{key}' must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{where}: key '{key}' must be finite, got {value!r}")
            if key in _POSITIVE and value <= 0:
                raise ValueError(f"{where}: key '{key}' must be > 0, got {value!r}")
            object.__setattr__(self, key, float(value))  # 1000, 1000.0, np.float32: one hash
        zero = float(self.transform.forward(np.zeros(()), self.npho_scale, self.npho_scale2))
        if not self.npho_sentinel < zero:
            raise ValueError(
                f"{where}: key 'npho_sentinel' ({self.npho_sentinel}) must lie below the "
                f"normalized value of zero photons ({zero:.6g}) so dead channels stay visible"
            )

    # ---- identity ------------------------------------------------------------------------
    @property
    def id(self) -> str:
        """`name@version`, the key a store or a model records."""
        return f"{self.name}@{self.version}"

    @property
    def transform(self) -> Transform:
        return get_transform(self.npho_transform)

    def parameters(self) -> dict[str, Any]:
        """The hashed parameters (everything but name and version)."""
        return {key: getattr(self, key) for key in PARAMETER_FIELDS}

    @cached_property
    def hash(self) -> str:
        """`sha256:<hex>` over the canonical JSON of the parameters (sorted keys, float repr).

        Name and version are not hashed: two schemes with equal hashes produce identical
        tensors, whatever they are called.
        """
        canonical = json.dumps(
            self.parameters(), sort_keys=True, separators=(",", ":"), allow_nan=False
        )
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """Full definition plus `id` and `hash` (what store metadata and `xec schemes` write)."""
        head = {"id": self.id, "hash": self.hash, "name": self.name, "version": self.version}
        return head | self.parameters()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scheme:
        """Inverse of to_dict; `id` and `hash` are optional and, when given, must match."""
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(d) - set(names) - {"id", "hash"})
        missing = [k for k in names if k not in d]
        if unknown or missing:
            raise ValueError(f"scheme definition: missing keys {missing}, unknown keys {unknown}")
        scheme = cls(**{k: d[k] for k in names})
        for key in ("id", "hash"):
            if key in d and d[key] != getattr(scheme, key):
                raise ValueError(
                    f"scheme definition: key '{key}' is {d[key]!r} but the parameters give "
                    f"{getattr(scheme, key)!r}; the definition was edited after it was recorded"
                )
        return scheme

    # ---- numpy ---------------------------------------------------------------------------
    def normalize(self, npho: np.ndarray, time: np.ndarray) -> np.ndarray:
        """Raw (..., S) npho and time (s) -> float32 (..., S, 2) [normalized npho, time]."""
        npho, time = np.asarray(npho), np.asarray(time)
        out = np.empty((*npho.shape, 2), dtype=np.float32)
        return self.normalize_into(npho, time, out)

    def normalize_into(
        self, npho: np.ndarray, time: np.ndarray, out: np.ndarray, *, fused: bool = True
    ) -> np.ndarray:
        """Write normalize(npho, time) into a preallocated C-contiguous float32 (..., S, 2).

        fused=True runs the numba kernels (`xecdata.schemes.kernels`) where numba is
        installed; fused=False forces the numpy block path, the reference (same bits)."""
        npho, time = np.asarray(npho), np.asarray(time)
        if npho.shape != time.shape or out.shape != (*npho.shape, 2):
            raise ValueError(
                f"normalize: npho {npho.shape} and time {time.shape} must have one shape "
                f"and out {out.shape} must be that shape plus (2,)"
            )
        if out.dtype != np.float32 or not out.flags.c_contiguous:
            raise ValueError("normalize: out must be a C-contiguous float32 array")
        n_sensors = npho.shape[-1] if npho.ndim else 1
        x_rows, t_rows = npho.reshape(-1, n_sensors), time.reshape(-1, n_sensors)
        out_rows = out.reshape(-1, n_sensors, 2)  # (M, S, 2) view of out
        block = max(1, _BLOCK_ELEMENTS // max(n_sensors, 1))
        work = _Workspace(min(block, len(x_rows)), n_sensors)
        use_kernels = fused and kernels.available()
        for i in range(0, len(x_rows), block):
            j = min(i + block, len(x_rows))
            w = work.take(j - i)
            if use_kernels:
                kernels.normalize_block(
                    self._kernel_parameters, x_rows[i:j], t_rows[i:j], out_rows[i:j], w
                )
            else:
                self._normalize_block_numpy(x_rows[i:j], t_rows[i:j], out_rows[i:j], w)
        return out

    @cached_property
    def _kernel_parameters(self) -> kernels.KernelParameters:
        return kernels.KernelParameters.of(self)

    def _normalize_block_numpy(
        self, npho: np.ndarray, time: np.ndarray, out: np.ndarray, w: _Workspace
    ) -> None:
        """One block of rows: npho, time (b, S) any float dtype -> out (b, S, 2) float32."""
        x, t, f, alive, tmp, tvalid = w.x, w.t, w.f, w.alive, w.tmp, w.tvalid
        np.copyto(x, npho, casting="unsafe")  # all rules are applied in float32
        np.copyto(t, time, casting="unsafe")
        # masks first, from the raw values
        np.less_equal(x, DEAD_ABOVE, out=alive)  # False for NaN, +Inf and > 9e9
        alive &= np.greater(x, -np.inf, out=tmp)
        np.greater(x, self.npho_threshold, out=tvalid)
        tvalid &= alive
        np.abs(t, out=f)
        tvalid &= np.less_equal(f, TIME_INVALID_ABOVE, out=tmp)  # False for NaN, +-Inf
        self.transform.in_domain(x, self.npho_scale, out=tmp)
        tmp &= alive  # tmp: npho usable
        tvalid &= tmp
        # time channel
        np.divide(t, self.time_scale, out=t)
        np.subtract(t, self.time_shift, out=t)
        np.copyto(t, _above(self.time_sentinel), where=np.equal(t, self.time_sentinel, out=w.eq))
        np.copyto(t, self.time_sentinel, where=np.logical_not(tvalid, out=tvalid))
        out[..., 1] = t
        # npho channel (t and f are free now: work buffers of the transform)
        np.copyto(x, 0.0, where=np.logical_not(tmp, out=tmp))  # below domain -> raw zero
        self.transform.forward_inplace(x, self.npho_scale, self.npho_scale2, (f, t))
        np.maximum(x, _above(self.npho_sentinel), out=x)  # valid npho never equals sentinel
        np.copyto(x, self.npho_sentinel, where=np.logical_not(alive, out=alive))
        out[..., 0] = x

    def denormalize(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(..., S, 2) normalized -> float64 (npho, time in s), NaN where a sentinel sits."""
        x = np.asarray(x)
        y, tn = x[..., 0], x[..., 1]
        npho = self.transform.inverse(y, self.npho_scale, self.npho_scale2)
        npho[y == self.npho_sentinel] = np.nan
        time = (tn.astype(np.float64) + self.time_shift) * self.time_scale
        time[tn == self.time_sentinel] = np.nan
        return npho, time

    # ---- torch ---------------------------------------------------------------------------
    def normalize_torch(self, npho: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        """Torch twin of normalize: (..., S) each -> float32 (..., S, 2), on their device."""
        import torch

        x, t = npho.to(torch.float32), time.to(torch.float32)
        alive = (x <= DEAD_ABOVE) & (x > -math.inf)
        limit = self.transform.domain_limit(self.npho_scale)
        usable = alive & ((x >= limit) if self.transform.limit_inclusive else (x > limit))
        tvalid = usable & (x > self.npho_threshold) & (t.abs() <= TIME_INVALID_ABOVE)
        y = self.transform.forward_torch(torch.where(usable, x, 0.0), *self._scales)
        y = torch.where(alive, y.clamp_min(_above(self.npho_sentinel)), self.npho_sentinel)
        tn = t / self.time_scale - self.time_shift
        tn = torch.where(tn == self.time_sentinel, _above(self.time_sentinel), tn)
        tn = torch.where(tvalid, tn, self.time_sentinel)
        return torch.stack((y, tn), dim=-1)  # (..., S, 2)

    def denormalize_torch(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Torch twin of denormalize: (..., S, 2) -> (npho, time in s) in x's dtype, NaN at
        sentinels."""
        y, tn = x[..., 0], x[..., 1]
        npho = self.transform.inverse_torch(y, *self._scales)
        npho = npho.masked_fill(y == self.npho_sentinel, math.nan)
        time = ((tn + self.time_shift) * self.time_scale).masked_fill(
            tn == self.time_sentinel, math.nan
        )
        return npho, time

    @property
    def _scales(self) -> tuple[float, float]:
        return self.npho_scale, self.npho_scale2


class _Workspace:
    """Per-call float32 / bool buffers of one block, so the block loop allocates nothing."""

    def __init__(self, rows: int, n_sensors: int) -> None:
        shape = (rows, n_sensors)
        self._f32 = [np.empty(shape, np.float32) for _ in range(3)]
        self._bool = [np.empty(shape, np.bool_) for _ in range(4)]
        self.take(rows)

    def take(self, rows: int) -> _Workspace:
        """Point the named buffers at their first `rows` rows (the last block may be short)."""
        self.x, self.t, self.f = (a[:rows] for a in self._f32)
        self.alive, self.tmp, self.tvalid, self.eq = (a[:rows] for a in self._bool)
        return self
