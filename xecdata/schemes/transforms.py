"""Photon-count transforms of the normalization schemes: forward, exact inverse, domain limit.

Each transform maps a raw photon count x with the scheme's scales s1 = npho_scale and
s2 = npho_scale2 (y = forward(x)):

    log1p     y = log1p(x / s1) / s2              valid for x >  -s1
    sqrt      y = sqrt(x / s1) / s2               valid for x >=  0
    anscombe  y = 2 sqrt(x / s1 + 3/8) / s2       valid for x >= -3/8 s1
    linear    y = x / s1 / s2                     valid everywhere

The Anscombe transform keeps its variance-stabilising 3/8 offset inside the square root, so its
domain starts at -3/8 s1 (not at 0) and zero photons map to 2 sqrt(3/8) / s2, not to 0.

Three implementations per transform: an in-place float32 numpy forward used on the ingestion hot
path, a float64 numpy inverse, and torch forward / inverse written with tensor methods only, so
this module never imports torch. Inverses clip y to the forward's range first (sqrt and
anscombe outputs are never negative), so a model prediction below the range maps to the domain
limit instead of folding back to positive counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

ANSCOMBE_OFFSET = 0.375  # 3/8: Anscombe's variance-stabilising offset
_ONE = np.float32(1.0)


def _log1p_inplace(x: np.ndarray, u: np.ndarray, c: np.ndarray) -> None:
    """x <- log1p(x) for float32 x (u, c: work buffers), within 3 ulp of np.log1p, ~5x faster.

    With u = fl(1 + x), log1p(x) = log(u) - ((u - 1) - x) / u corrects the rounding of 1 + x to
    first order (exact x where u == 1). numpy's float32 log is SIMD-vectorized, its log1p is not.
    """
    np.add(x, _ONE, out=u)
    np.subtract(u, _ONE, out=c)
    np.subtract(c, x, out=c)
    np.divide(c, u, out=c)
    np.log(u, out=x)
    np.subtract(x, c, out=x)


@dataclass(frozen=True)
class Transform:
    """One photon-count transform: its name, formula and domain (raw counts)."""

    name: str
    formula: str
    limit_factor: float  # domain limit = limit_factor * s1 (-inf: none)
    limit_inclusive: bool  # True: x >= limit is valid; False: x > limit is valid

    def domain_limit(self, s1: float) -> float:
        """Raw count below which (or at which, if exclusive) the transform is undefined."""
        return self.limit_factor * s1 if math.isfinite(self.limit_factor) else -math.inf

    def in_domain(self, x: np.ndarray, s1: float, out: np.ndarray) -> np.ndarray:
        """out <- x inside the domain (bool, False for NaN)."""
        limit = self.domain_limit(s1)
        op = np.greater_equal if self.limit_inclusive else np.greater
        return op(x, limit, out=out)

    def forward_inplace(
        self, x: np.ndarray, s1: float, s2: float, work: tuple[np.ndarray, np.ndarray]
    ) -> None:
        """x <- forward(x) in place; x and the two work buffers are float32 of one shape."""
        np.divide(x, s1, out=x)
        if self.name == "log1p":
            _log1p_inplace(x, *work)
        elif self.name == "sqrt":
            np.sqrt(x, out=x)
        elif self.name == "anscombe":
            np.add(x, ANSCOMBE_OFFSET, out=x)
            np.sqrt(x, out=x)
            np.multiply(x, 2.0, out=x)
        np.divide(x, s2, out=x)

    def forward(self, x: np.ndarray, s1: float, s2: float) -> np.ndarray:
        """forward(x) in float64 (reference; no domain handling)."""
        x = np.asarray(x, dtype=np.float64) / s1
        if self.name == "log1p":
            x = np.log1p(x)
        elif self.name == "sqrt":
            x = np.sqrt(x)
        elif self.name == "anscombe":
            x = 2.0 * np.sqrt(x + ANSCOMBE_OFFSET)
        return x / s2

    def inverse(self, y: np.ndarray, s1: float, s2: float) -> np.ndarray:
        """Raw counts from normalized y, float64; y below the forward's range is clipped."""
        y = np.asarray(y, dtype=np.float64) * s2
        if self.name == "log1p":
            return s1 * np.expm1(y)
        if self.name == "sqrt":
            return s1 * np.square(np.maximum(y, 0.0))
        if self.name == "anscombe":
            return s1 * (np.square(np.maximum(y, 0.0) * 0.5) - ANSCOMBE_OFFSET)
        return s1 * y

    def forward_torch(self, x: torch.Tensor, s1: float, s2: float) -> torch.Tensor:
        """forward(x) on a tensor, same operation order as forward_inplace."""
        x = x / s1
        if self.name == "log1p":
            x = x.log1p()
        elif self.name == "sqrt":
            x = x.sqrt()
        elif self.name == "anscombe":
            x = (x + ANSCOMBE_OFFSET).sqrt() * 2.0
        return x / s2

    def inverse_torch(self, y: torch.Tensor, s1: float, s2: float) -> torch.Tensor:
        """Raw counts from a normalized tensor (same dtype); clipped like inverse."""
        y = y * s2
        if self.name == "log1p":
            return y.expm1() * s1
        if self.name == "sqrt":
            return y.clamp_min(0.0).square() * s1
        if self.name == "anscombe":
            return ((y.clamp_min(0.0) * 0.5).square() - ANSCOMBE_OFFSET) * s1
        return y * s1


TRANSFORMS: dict[str, Transform] = {
    t.name: t
    for t in (
        Transform("log1p", "log1p(x/s1)/s2", -1.0, False),
        Transform("sqrt", "sqrt(x/s1)/s2", 0.0, True),
        Transform("anscombe", "2*sqrt(x/s1+3/8)/s2", -ANSCOMBE_OFFSET, True),
        Transform("linear", "x/s1/s2", -np.inf, True),
    )
}


def get_transform(name: Any) -> Transform:
    """The transform called `name`; ValueError listing the known ones otherwise."""
    if name not in TRANSFORMS:
        raise ValueError(f"unknown npho_transform {name!r}; choose one of {', '.join(TRANSFORMS)}")
    return TRANSFORMS[name]
