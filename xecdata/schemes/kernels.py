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
- log1p needs a float32 log, and numpy's SIMD log is not libm's (they can differ in the last
  ulp, and which one numpy runs depends on the CPU), so log1p runs in two kernels around
  numpy's own `np.log`: the first writes the time channel, the correction
  c = ((u - 1) - x/s1) / u into the npho slot and u = fl(1 + x/s1) (NaN where dead) into a work
  buffer; numpy takes log(u) in place; the second finishes (log(u) - c) / s2 with the npho rules.

Measured (2-core AMD EPYC, new@1, float32 input, 1 % dead): 2.2x the numpy path's events/s,
about half of what is left being numpy's log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from xecdata.markers import DEAD_ABOVE, TIME_INVALID_ABOVE
from xecdata.markers import float32_above as _above
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

    work: a Scheme workspace; its float32 buffer x (b, S) holds u for log1p."""
    # flat views (copies only where a block is not contiguous): LLVM vectorizes flat loops
    o, x, t = out.reshape(-1), npho.reshape(-1), time.reshape(-1)  # (b * S * 2,), (b * S,) x2
    if k.kind == 0:
        u = work.x.reshape(-1)  # (b * S,)
        _LOG1P_ROWS(x, t, o, k.p, k.inclusive, u)
        np.log(u, out=u)  # numpy's own float32 log: the numpy path's bits
        _LOG1P_FINISH(u, o, k.p)
    else:
        _ROWS(x, t, o, k.p, k.inclusive, k.kind)


def _channels(x: Any, t: Any, c: tuple, inclusive: bool) -> tuple:  # pragma: no cover
    """Rules 1-3 and the time channel of one sensor (float32 x, t; c: the constants)."""
    dead, neg_inf, limit, threshold, time_invalid, tscale, tshift, tsentinel, tabove = c
    alive = (x <= dead) & (x > neg_inf)  # False for NaN, +-Inf and > 9e9
    usable = alive & ((x >= limit) if inclusive else (x > limit))
    tvalid = usable & (x > threshold) & (abs(t) <= time_invalid)
    tn = t / tscale - tshift
    tn = tabove if tn == tsentinel else tn
    return (tn if tvalid else tsentinel), alive, usable


def _rows(
    npho: np.ndarray, time: np.ndarray, o: np.ndarray, p: np.ndarray, inclusive: bool, kind: int
) -> None:  # pragma: no cover - compiled by numba
    """sqrt, anscombe, linear: every rule element by element, o the flat (b * S * 2,) out."""
    c = (p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8])  # locals: o may alias p
    s1, s2, above, sentinel, offset, two = (
        p[S1],
        p[S2],
        p[NPHO_ABOVE],
        p[NPHO_SENTINEL],
        p[14],
        p[15],
    )
    zero = np.float32(0.0)
    for i in range(npho.shape[0]):
        x = np.float32(npho[i])
        tn, alive, usable = _channels(x, np.float32(time[i]), c, inclusive)
        y = (x if usable else zero) / s1  # below domain -> raw zero
        if kind == 1:
            y = np.sqrt(y)
        elif kind == 2:
            y = np.sqrt(y + offset) * two
        y = y / s2
        y = above if y < above else y  # np.maximum (NaN stays NaN)
        o[2 * i] = y if alive else sentinel
        o[2 * i + 1] = tn


def _log1p_rows(
    npho: np.ndarray, time: np.ndarray, o: np.ndarray, p: np.ndarray, inclusive: bool, u: np.ndarray
) -> None:  # pragma: no cover - compiled by numba
    """log1p, first half: the time channel, u = fl(1 + x/s1) (NaN where dead: log(u) never
    is NaN for a live sensor, u > 0) and the correction ((u - 1) - x/s1) / u in o's npho slot."""
    c = (p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8])
    s1, one, nan, zero = p[S1], p[ONE], np.float32(np.nan), np.float32(0.0)
    for i in range(npho.shape[0]):
        x = np.float32(npho[i])
        tn, alive, usable = _channels(x, np.float32(time[i]), c, inclusive)
        y = (x if usable else zero) / s1
        uu = y + one
        o[2 * i] = ((uu - one) - y) / uu
        o[2 * i + 1] = tn
        u[i] = uu if alive else nan


def _log1p_finish(logu: np.ndarray, o: np.ndarray, p: np.ndarray) -> None:  # pragma: no cover
    """log1p, second half: (log(u) - c) / s2 clamped above the sentinel; dead -> sentinel."""
    s2, above, sentinel = p[S2], p[NPHO_ABOVE], p[NPHO_SENTINEL]
    for i in range(logu.shape[0]):
        lu = logu[i]
        y = (lu - o[2 * i]) / s2
        y = above if y < above else y
        o[2 * i] = y if lu == lu else sentinel  # NaN u: dead


# nogil: the ingest encodes in a thread beside the reader; no fastmath: IEEE float32 in
# numpy's order (reassociation or fused multiply-add would change the bits); error_model
# numpy: IEEE division (no zero-division check, which would stop vectorization)
_JIT: dict[str, Any] = dict(nogil=True, cache=True, error_model="numpy")
_channels = _channels if numba is None else numba.njit(inline="always", **_JIT)(_channels)
_ROWS: Any = None if numba is None else numba.njit(**_JIT)(_rows)
_LOG1P_ROWS: Any = None if numba is None else numba.njit(**_JIT)(_log1p_rows)
_LOG1P_FINISH: Any = None if numba is None else numba.njit(**_JIT)(_log1p_finish)
