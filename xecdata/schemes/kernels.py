"""Fused numba kernels of `Scheme.normalize_into`: all invalid-sensor rules in one pass.

The numpy block path of `Scheme` (`_normalize_block_numpy`) applies the rules of the package
docstring as ~20 whole-block passes, several of them masked copies that cost 4-5 ns per
element. These kernels apply the same rules element by element, with the same float32
operations in the same order and no fast-math, so their output is bit-identical to the numpy
path (the reference, and the fallback when numba is missing):

- every constant is rounded to float32 once (numpy rounds a Python float operand to the
  array's float32 before comparing or computing, NEP 50), and every comparison and operation
  is float32 against float32;
- sqrt, division, addition are IEEE-exact in both, so sqrt, anscombe and linear run fully fused;
- log1p needs a float32 log, and numpy's SIMD log is not libm's (they differ in the last ulp
  for some inputs), so log1p runs in two kernels around numpy's own `np.log`: the first writes
  the time channel, u = fl(1 + x/s1) and the correction c = ((u - 1) - x/s1) / u; numpy takes
  log(u) in place; the second finishes (log(u) - c) / s2 with the npho rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from xecdata.schemes.transforms import ANSCOMBE_OFFSET

if TYPE_CHECKING:
    from xecdata.schemes.scheme import Scheme

numba: Any
try:  # without numba, Scheme runs its numpy block path (same results)
    import numba
except ImportError:  # pragma: no cover - numba is a dependency; kept for exotic platforms
    numba = None

# transform codes of the kernels (the order of the kernels' branches)
_KIND = {"log1p": 0, "sqrt": 1, "anscombe": 2, "linear": 3}
# index of each float32 constant in the parameter vector the kernels read
DEAD, NEG_INF, LIMIT, THRESHOLD, TIME_INVALID = 0, 1, 2, 3, 4
TIME_SCALE, TIME_SHIFT, TIME_SENTINEL, TIME_ABOVE = 5, 6, 7, 8
S1, S2, NPHO_ABOVE, NPHO_SENTINEL, ONE, OFFSET, TWO = 9, 10, 11, 12, 13, 14, 15


def available() -> bool:
    """True where numba compiled kernels can run (else Scheme uses its numpy path)."""
    return numba is not None


@dataclass(frozen=True)
class KernelParameters:
    """What the kernels read of a scheme: float32 constants (16,), transform code, inclusive."""

    p: np.ndarray  # (16,) float32, indexed by the constants above
    kind: int  # _KIND code of the transform
    inclusive: bool  # domain limit included (x >= limit) or not (x > limit)

    @classmethod
    def of(cls, scheme: Scheme) -> KernelParameters:
        """Each constant rounded to float32, as numpy rounds a Python float operand."""
        from xecdata.schemes.scheme import DEAD_ABOVE, TIME_INVALID_ABOVE, _above

        v = [0.0] * 16
        v[DEAD], v[NEG_INF] = DEAD_ABOVE, -np.inf
        v[LIMIT] = scheme.transform.domain_limit(scheme.npho_scale)
        v[THRESHOLD], v[TIME_INVALID] = scheme.npho_threshold, TIME_INVALID_ABOVE
        v[TIME_SCALE], v[TIME_SHIFT] = scheme.time_scale, scheme.time_shift
        v[TIME_SENTINEL], v[TIME_ABOVE] = scheme.time_sentinel, _above(scheme.time_sentinel)
        v[S1], v[S2] = scheme.npho_scale, scheme.npho_scale2
        v[NPHO_SENTINEL], v[NPHO_ABOVE] = scheme.npho_sentinel, _above(scheme.npho_sentinel)
        v[ONE], v[OFFSET], v[TWO] = 1.0, ANSCOMBE_OFFSET, 2.0
        kind = _KIND[scheme.npho_transform]
        return cls(np.array(v, dtype=np.float32), kind, scheme.transform.limit_inclusive)


def normalize_block(
    k: KernelParameters, npho: np.ndarray, time: np.ndarray, out: np.ndarray, work: Any
) -> None:
    """One block: npho, time (b, S) -> out (b, S, 2) float32, like the numpy block path.

    work: a Scheme workspace; its float32 x, t and bool alive buffers (b, S) hold u, c and
    the dead mask of log1p."""
    u, c, alive = work.x, work.t, work.alive
    _ROWS(npho, time, out, k.p, k.kind, k.inclusive, u, c, alive)
    if k.kind == 0:
        np.log(u, out=u)  # numpy's own float32 log: the numpy path's bits
        _LOG1P_FINISH(u, c, alive, out, k.p)


def _rows(
    npho: np.ndarray,
    time: np.ndarray,
    out: np.ndarray,
    p: np.ndarray,
    kind: int,
    inclusive: bool,
    u: np.ndarray,
    c: np.ndarray,
    alive_out: np.ndarray,
) -> None:  # pragma: no cover - compiled by numba
    """Rules 1-4 element by element; for log1p, stops at u, c (module docstring)."""
    for r in range(npho.shape[0]):
        for s in range(npho.shape[1]):
            x = np.float32(npho[r, s])
            t = np.float32(time[r, s])
            alive = x <= p[DEAD] and x > p[NEG_INF]  # False for NaN, +-Inf, > 9e9
            usable = alive and (x >= p[LIMIT] if inclusive else x > p[LIMIT])
            tvalid = usable and x > p[THRESHOLD] and abs(t) <= p[TIME_INVALID]
            tn = t / p[TIME_SCALE] - p[TIME_SHIFT]
            tn = p[TIME_ABOVE] if tn == p[TIME_SENTINEL] else tn
            out[r, s, 1] = tn if tvalid else p[TIME_SENTINEL]
            y = (x if usable else np.float32(0.0)) / p[S1]  # below domain -> raw zero
            if kind == 0:
                uu = y + p[ONE]
                u[r, s] = uu
                c[r, s] = ((uu - p[ONE]) - y) / uu
                alive_out[r, s] = alive
                continue
            if kind == 1:
                y = np.sqrt(y)
            elif kind == 2:
                y = np.sqrt(y + p[OFFSET]) * p[TWO]
            y = y / p[S2]
            y = p[NPHO_ABOVE] if y < p[NPHO_ABOVE] else y  # np.maximum (NaN stays NaN)
            out[r, s, 0] = y if alive else p[NPHO_SENTINEL]


def _log1p_finish(
    logu: np.ndarray, c: np.ndarray, alive: np.ndarray, out: np.ndarray, p: np.ndarray
) -> None:  # pragma: no cover - compiled by numba
    """npho channel of log1p: (log(u) - c) / s2, clamped above the sentinel; dead -> sentinel."""
    for r in range(logu.shape[0]):
        for s in range(logu.shape[1]):
            y = (logu[r, s] - c[r, s]) / p[S2]
            y = p[NPHO_ABOVE] if y < p[NPHO_ABOVE] else y
            out[r, s, 0] = y if alive[r, s] else p[NPHO_SENTINEL]


# nogil: the ingest encodes in a thread beside the reader; no fastmath: IEEE float32 in
# numpy's order (reassociation or fused multiply-add would change the bits)
_ROWS = None if numba is None else numba.njit(nogil=True, cache=True)(_rows)
_LOG1P_FINISH = None if numba is None else numba.njit(nogil=True, cache=True)(_log1p_finish)
