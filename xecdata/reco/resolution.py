"""Resolutions of the reconstruction against simulation truth, the way MEG quotes them.

Events are selected by their true first interaction inside the fiducial volume
(|u| < 23.9 cm, |v| < 67.9 cm) and split by depth, w > 2 cm and w < 2 cm (DESIGN.md; MEG
quotes the two separately). Per quantity: the bias (median residual) and sigma68 (half the
central 68.27 % interval, ``xecdata.robust.half_width_68``) of dE/E (%), u, v, w (mm), t (ps),
theta and phi (mrad); events the reconstruction left out of a quantity are counted, not used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from xecdata.geometry import FIDUCIAL_U, FIDUCIAL_V
from xecdata.markers import valid_rows
from xecdata.robust import half_width_68

W_SPLIT = 2.0  # cm


def residuals(reco: Mapping[str, np.ndarray], truth: Mapping[str, np.ndarray]) -> dict:
    """name -> (residual (N,), usable (N,), unit) for each quantity both sides carry."""
    out: dict[str, tuple[np.ndarray, np.ndarray, str]] = {}

    def pair(r: str, t: str) -> tuple[np.ndarray, np.ndarray] | None:
        if r not in reco or t not in truth:
            return None
        a, b = np.asarray(reco[r], np.float64), np.asarray(truth[t], np.float64)
        return a.reshape(len(a), -1), b.reshape(len(b), -1)

    if (p := pair("energyReco", "energyTruth")) is not None:
        out["dE/E"] = (100 * (p[0][:, 0] / p[1][:, 0] - 1), _ok(p), "%")
    if (p := pair("uvwRecoFI", "uvwTruth")) is not None:
        for i, name in enumerate("uvw"):
            out[name] = (10 * (p[0][:, i] - p[1][:, i]), _ok(p), "mm")
    if (p := pair("timeReco", "timeTruth")) is not None:
        out["t"] = (1000 * (p[0][:, 0] - p[1][:, 0]), _ok(p), "ps")
    if (p := pair("emiAngReco", "emiAng")) is not None:
        d = p[0] - p[1]
        d[:, 1] = (d[:, 1] + 180.0) % 360.0 - 180.0  # phi across the seam
        out["theta"] = (np.radians(d[:, 0]) * 1000, _ok(p), "mrad")
        out["phi"] = (np.radians(d[:, 1]) * 1000, _ok(p), "mrad")
    return out


def _ok(p: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    return valid_rows(p[0]) & valid_rows(p[1])


def fiducial(truth: Mapping[str, np.ndarray]) -> np.ndarray:
    """(N,) the true first interaction is inside the fiducial volume (|u|, |v| cut, w > 0)."""
    uvw = np.asarray(truth["uvwTruth"], np.float64).reshape(-1, 3)
    inside = (np.abs(uvw[:, 0]) < FIDUCIAL_U) & (np.abs(uvw[:, 1]) < FIDUCIAL_V) & (uvw[:, 2] > 0)
    return valid_rows(uvw) & inside


def depth_regions(truth: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The two fiducial regions MEG quotes: w > 2 cm and w < 2 cm."""
    fid, w = fiducial(truth), np.asarray(truth["uvwTruth"], np.float64).reshape(-1, 3)[:, 2]
    return {f"w>{W_SPLIT:g}": fid & (w > W_SPLIT), f"w<{W_SPLIT:g}": fid & (w <= W_SPLIT)}


def resolution_table(
    reco: Mapping[str, np.ndarray],
    truth: Mapping[str, np.ndarray],
    regions: Mapping[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """{region: {...}} (default regions: `depth_regions`): per quantity events, left_out,
    bias, sigma68 and unit; `regions` maps a name to an (N,) event selection."""
    if "uvwTruth" not in truth:
        return {}
    table: dict[str, Any] = {}
    res = residuals(reco, truth)
    for region, sel in (depth_regions(truth) if regions is None else regions).items():
        entry: dict[str, Any] = {"events": int(sel.sum())}
        for name, (r, ok, unit) in res.items():
            use = sel & ok
            if not use.any():
                continue
            entry[name] = {"bias": float(np.median(r[use])), "sigma68": half_width_68(r[use]),
                           "unit": unit, "left_out": int((sel & ~ok).sum())}  # fmt: skip
        table[region] = entry
    return table


def format_table(table: Mapping[str, Any]) -> str:
    """The table as aligned text lines."""
    lines = []
    for region, entry in table.items():
        parts = [f"{name} {v['sigma68']:.3g} {v['unit']} (bias {v['bias']:+.2g})"
                 for name, v in entry.items() if isinstance(v, dict)]  # fmt: skip
        lines.append(f"  {region} ({entry['events']} events): " + ", ".join(parts))
    return "\n".join(lines)
