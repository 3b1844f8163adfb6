"""What a benchmark figure was measured on: one description shared by every benchmark."""

from __future__ import annotations

import importlib
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
BASE_PACKAGES = ("numpy", "torch", "numba", "zarr", "numcodecs", "uproot")


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str:
    """The short commit of the checkout this package runs from, or 'unknown'."""
    here = Path(__file__).resolve().parent
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=here, capture_output=True, text=True, check=True, timeout=10,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or "unknown"


def machine_info(extra_packages: tuple[str, ...] = ()) -> dict[str, Any]:
    """CPU, memory, platform, package versions (those importable of BASE_PACKAGES and
    `extra_packages`), the GPU if torch sees one, the 1-minute load average and the commit."""
    versions: dict[str, str] = {}
    for name in (*BASE_PACKAGES, *extra_packages):
        try:
            versions[name.split(".")[-1]] = str(importlib.import_module(name).__version__)
        except (ImportError, AttributeError):
            continue
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "threads_env": {v: os.environ[v] for v in THREAD_VARS if v in os.environ},
        "load_average_1min": round(os.getloadavg()[0], 2),
        "git_commit": git_commit(),
    }
    try:
        import torch

        info["cuda"] = bool(torch.cuda.is_available())
        if info["cuda"]:
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        info["cuda"] = False
    return info
