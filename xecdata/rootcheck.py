"""Checks of one input ROOT file before ingesting it or running inference on it
(`xec inspect FILE.root`): the structure and content checks ingestion applies, and sensor
statistics of a sample of events, so a file can be judged without writing anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from xecdata.rootio import (
    DEFAULT_TIME,
    DEFAULT_TREE,
    InputError,
    inspect_file,
    open_tree,
    read_block,
    scan_file,
)
from xecdata.schemes import DEAD_ABOVE, TIME_INVALID_ABOVE


def sensor_summary(npho: np.ndarray, time: np.ndarray) -> dict[str, float]:
    """Sample statistics of (n, 4760) npho and time arrays as read from a file."""
    finite_npho, finite_time = np.isfinite(npho), np.isfinite(time)
    valid_npho = finite_npho & (npho <= DEAD_ABOVE)
    valid_time = finite_time & (np.abs(time) <= TIME_INVALID_ABOVE)
    lit = valid_npho & (npho > 0)
    sums = np.where(valid_npho, npho, 0.0).sum(axis=1)
    return {
        "events": len(npho),
        "npho_nonfinite_fraction": float(1.0 - finite_npho.mean()),
        "time_nonfinite_fraction": float(1.0 - finite_time.mean()),
        "npho_invalid_marker_fraction": float((finite_npho & ~valid_npho).mean()),
        "npho_negative_fraction": float((valid_npho & (npho < 0)).mean()),
        "sensors_lit_fraction": float(lit.mean()),
        "time_valid_fraction": float(valid_time.mean()),
        "npho_sum_median": float(np.median(sums)) if len(sums) else 0.0,
        "time_valid_min": float(time[valid_time].min()) if valid_time.any() else float("nan"),
        "time_valid_max": float(time[valid_time].max()) if valid_time.any() else float("nan"),
    }


def describe_root_file(
    path: str | Path,
    tree: str = DEFAULT_TREE,
    npho_branch: str | None = None,
    time_branch: str = DEFAULT_TIME,
    sample: int = 1000,
) -> dict[str, Any]:
    """Structure, content check result and sample statistics of one input file.

    A structure problem (no tree, a missing or malformed sensor branch) raises InputError;
    a content problem (NaN truth, a wrong-length jagged row) is reported under 'problem'.
    """
    t = open_tree(path, tree)
    try:
        return _describe(t, path, tree, npho_branch, time_branch, sample)
    finally:
        t.file.close()


def _describe(
    t: Any, path: str | Path, tree: str, npho_branch: str | None, time_branch: str, sample: int
) -> dict[str, Any]:
    info = inspect_file(path, tree, npho_branch, time_branch, t=t)
    problem = None
    try:
        scan_file(info, tree=t)
    except InputError as err:
        problem = str(err)
    out: dict[str, Any] = {
        "path": info.path,
        "bytes": info.size,
        "tree": tree,
        "entries": info.entries,
        "npho_branch": info.npho_branch,
        "time_branch": info.time_branch,
        "layout": ["jagged" if j else "fixed" for j in info.jagged],
        "columns": {c.name: f"{c.kind} {c.dtype}{list(c.shape) or ''}" for c in info.columns},
        "note": info.note,
        "problem": problem,
    }
    if problem is None and sample > 0:
        npho, time, _ = read_block(t, info, 0, min(sample, info.entries))
        out["sample"] = sensor_summary(npho.astype(np.float64), time.astype(np.float64))
    return out


def format_root_file(d: dict[str, Any]) -> str:
    """The description as text for a terminal."""
    lines = [
        f"ROOT file {d['path']} ({d['bytes'] / 1e6:.1f} MB), tree '{d['tree']}', "
        f"{d['entries']} entries",
        f"  sensors     {d['npho_branch']} ({d['layout'][0]}), {d['time_branch']} "
        f"({d['layout'][1]})" + (f"; {d['note']}" if d["note"] else ""),
        "  kept        " + (", ".join(f"{k} ({v})" for k, v in d["columns"].items()) or "none"),
        "  content     " + ("OK" if d["problem"] is None else f"PROBLEM: {d['problem']}"),
    ]
    s = d.get("sample")
    if s:
        lines += [
            f"  sample      first {s['events']} events: {100 * s['sensors_lit_fraction']:.1f} % "
            f"of sensors with npho > 0, median npho sum {s['npho_sum_median']:.4g}",
            f"              valid times {100 * s['time_valid_fraction']:.1f} % in "
            f"[{s['time_valid_min']:.4g}, {s['time_valid_max']:.4g}] s; non-finite npho "
            f"{100 * s['npho_nonfinite_fraction']:.2f} %, time "
            f"{100 * s['time_nonfinite_fraction']:.2f} %, negative npho "
            f"{100 * s['npho_negative_fraction']:.2f} %, npho 'invalid' markers (dead) "
            f"{100 * s['npho_invalid_marker_fraction']:.2f} %",
        ]
    return "\n".join(lines)
