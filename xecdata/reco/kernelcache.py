"""Keeps numba's on-disk cache of the reconstruction kernels in step with their sources.

numba's ``cache=True`` checks only the source file of the function it compiled, not the files
of the kernels that function calls (``position`` calls ``fitkernel`` calls ``lightmodel``): an
edited callee would leave a caller's cached machine code stale. So the cached kernels of this
package are dropped whenever the hash of the kernel modules (or the numba version) changes.
Where the package folder is read-only numba keeps its cache elsewhere and this does nothing.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numba

KERNEL_MODULES = ("lightmodel", "fitkernel", "position", "energy", "timing", "timecal")
STAMP = "xec_reco_kernels.sha256"


def refresh(folder: Path = Path(__file__).parent) -> bool:
    """Drop the cached kernels if the kernel sources changed; True if something was dropped."""
    h = hashlib.sha256(numba.__version__.encode())
    for name in KERNEL_MODULES:
        h.update((folder / f"{name}.py").read_bytes())
    cache = folder / "__pycache__"
    try:
        if (cache / STAMP).read_text() == h.hexdigest():
            return False
    except OSError:
        pass
    try:
        stale = [p for p in cache.glob("*.nb[ic]") if p.name.split(".")[0] in KERNEL_MODULES]
        for p in stale:
            p.unlink(missing_ok=True)
        cache.mkdir(exist_ok=True)
        (cache / STAMP).write_text(h.hexdigest())
    except OSError:  # a read-only installation: numba caches in the user's folder
        return False
    return True
