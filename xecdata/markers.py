"""The input files' 'no value' marker and the validity test built on it.

The producers of the detector's ROOT files write 1e10 where there is no value (a dead sensor's
npho, an invalid time, a failed reconstruction, an unset truth). Anything beyond INVALID_ABOVE
in magnitude, NaN or Inf is treated as missing everywhere in xec.
"""

from __future__ import annotations

import numpy as np

INVALID_ABOVE = 9e9


def valid_rows(x: np.ndarray) -> np.ndarray:
    """(n, ...) -> (n,) True where every component of the row is finite and not the marker."""
    flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    return np.all(np.isfinite(flat) & (np.abs(flat) <= INVALID_ABOVE), axis=1)
