"""The input files' 'no value' marker and the validity test built on it.

The producers of the detector's ROOT files write 1e10 where there is no value (a dead sensor's
npho, an invalid time, a failed reconstruction, an unset truth). Anything beyond INVALID_ABOVE
in magnitude, NaN or Inf is treated as missing everywhere in xec.
"""

from __future__ import annotations

import numpy as np

INVALID_ABOVE = 9e9
INVALID = 1e10  # the marker the files write
DEAD_ABOVE = INVALID_ABOVE  # raw npho above this is dead (input files write 1e10 for no value)
TIME_INVALID_ABOVE = INVALID_ABOVE  # |raw time| above this is invalid (same marker)


def float32_above(value: float) -> float:
    """The smallest float32 strictly above float32(value), as a Python float (a valid
    normalized value is kept strictly above its channel's sentinel)."""
    return float(np.nextafter(np.float32(value), np.float32(np.inf)))


def valid_rows(x: np.ndarray) -> np.ndarray:
    """(n, ...) -> (n,) True where every component of the row is finite and not the marker."""
    flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    return np.all(np.isfinite(flat) & (np.abs(flat) <= INVALID_ABOVE), axis=1)
