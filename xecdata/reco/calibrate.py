"""Build a calibration (``xec reco calibrate SIM... -o CALIB.json``) from simulated events.

The calibration simulation carries the truth that real detectors get from calibration sources
(MEG: the 55 / 83 MeV photons of pi0 decays from the charge-exchange reaction, 17.6 MeV from
the proton beam on lithium; J. Adam et al., Eur. Phys. J. C 73 (2013) 2365). In order:

1. every event is fitted (``position``) and its photons summed per face; the face weights
   come from the events fitted inside the fiducial area (``energy``);
2. fitted events give the depth correction, the shift along the line of flight from the
   fitted point to the true conversion point against fitted depth and ln E (``depth``), then
   the position bias left after it, polynomials in the reconstructed (u, v, w) (``bias``);
3. events whose first interaction is reconstructed inside the fiducial volume (|u| < 23.9,
   |v| < 67.9, 0 < w < 42 cm) give the uniformity map and the energy scale (``energy``);
4. the first ``TIME_EVENTS`` fitted events calibrate the time constants: effective light
   speed, walk, resolution model (``timecal``), with T_true = timeTruth + |x_FI - x_vertex| / c;
   a second pass over the files gives every event's time estimate and the offset table (from
   the events reconstructed inside the fiducial volume, where resolutions are quoted).

Everything is deterministic: the same files give the same bytes and hash. The provenance
(file names, sizes, sha256 and the simulator settings stored in each file) is recorded but not
hashed. The default calibration shipped with xec is rebuilt with ``DEFAULT_RECIPE``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from xecdata.geometry import in_fiducial, xyz_to_uvw
from xecdata.markers import valid_rows
from xecdata.reco.bias import fit_position_bias
from xecdata.reco.calibration import Calibration, CalibrationError
from xecdata.reco.depth import DEPTH_EDGES, first_interaction, fit_depth_correction
from xecdata.reco.energy import (
    EnergyCalibration,
    face_sums,
    fit_face_weights,
    fit_linearity,
    fit_uniformity,
    monomials,
)
from xecdata.reco.inputs import count_events, is_store, iter_batches
from xecdata.reco.position import OK, WINDOW_HALF, fit_positions
from xecdata.reco.tables import fit_binned_linear
from xecdata.reco.timecal import fit_time_constants
from xecdata.reco.timing import TimeCalibration, flight_time, interaction_times
from xecdata.rootio import DEFAULT_TIME, DEFAULT_TREE, sha256_file

NEEDED = ("energyTruth", "timeTruth", "xyzTruth", "xyzVTX")
TIME_EVENTS = 1500
MIN_EVENTS = 500
DEFAULT_RECIPE = (
    "xec simulate -n 20000 --seed 20240601 --energy 52.8 -o calib_line.root -q && "
    "xec simulate -n 12000 --seed 20240602 --energy flat -o calib_flat.root -q && "
    "xec reco calibrate calib_line.root calib_flat.root --name default --version 5 "
    "-o xecdata/reco/default@5.json"
)


@dataclass
class _Collected:
    """Per-event results of the calibration pass (lists of per-batch arrays)."""

    params: list[np.ndarray] = field(default_factory=list)
    status: list[np.ndarray] = field(default_factory=list)
    sums: list[np.ndarray] = field(default_factory=list)
    truth: dict[str, list[np.ndarray]] = field(default_factory=lambda: {k: [] for k in NEEDED})
    time_batches: list[tuple[np.ndarray, np.ndarray, int]] = field(default_factory=list)
    n_time: int = 0

    def cat(self, name: str) -> np.ndarray:
        parts = self.truth[name] if name in self.truth else getattr(self, name)
        return np.concatenate(parts).astype(np.float64)


def _collect(
    paths: Sequence[Path], fit_args: dict[str, Any], read: dict, progress: bool
) -> _Collected:
    """Fit every event of the files and keep what the fits below need."""
    got = _Collected()
    bar = tqdm(total=sum(count_events(p, read["tree"]) for p in paths), unit="ev", desc="calibrate",
               disable=not progress)  # fmt: skip
    for path in paths:
        for batch in iter_batches(path, **read):
            missing = [k for k in NEEDED if k not in batch.columns]
            if missing:
                raise CalibrationError(
                    f"{path} lacks the truth branches {missing}: calibrate with simulated "
                    "files (`xec simulate`), which carry them"
                )
            fit = fit_positions(batch.npho, fit_args["half"], fit_args["length"])
            got.params.append(fit.params)
            got.status.append(fit.status)
            got.sums.append(face_sums(batch.npho, fit.dead_fill))
            for k in NEEDED:
                got.truth[k].append(np.asarray(batch.columns[k]))
            if got.n_time < TIME_EVENTS:
                keep = min(TIME_EVENTS - got.n_time, len(batch.npho))
                got.time_batches.append((batch.time[:keep].copy(), batch.npho[:keep].copy(),
                                         sum(len(s) for s in got.status[:-1])))  # fmt: skip
                got.n_time += keep
            bar.update(len(batch.npho))
    bar.close()
    return got


def _energy(
    got: _Collected, weights: np.ndarray, uvw: np.ndarray, ok: np.ndarray
) -> EnergyCalibration:
    """Uniformity map and scale with the face weights given, on events fitted inside the
    fiducial volume."""
    e_true, sums = got.cat("energyTruth"), got.cat("sums")
    sel = ok & in_fiducial(uvw) & (e_true > 0)
    if sel.sum() < MIN_EVENTS:
        raise CalibrationError(f"only {int(sel.sum())} calibration events are fitted inside the "
                               f"fiducial volume; simulate at least {MIN_EVENTS}")  # fmt: skip
    ratio = (sums[sel] * weights).sum(axis=1) / e_true[sel]
    coef, _ = fit_uniformity(uvw[sel], ratio)
    cal = EnergyCalibration(tuple(map(float, weights)), monomials(),
                            tuple(map(float, coef)), (1.0, 0.0))  # fmt: skip
    scale = fit_linearity(cal.uniform(sums[sel], uvw[sel]), e_true[sel])
    return EnergyCalibration(cal.weights, cal.terms, cal.coefficients, scale)


def _weights(got: _Collected, ok: np.ndarray) -> np.ndarray:
    """Face weights from the events whose fitted (u, v) lie in the fiducial area."""
    params, e_true = got.cat("params"), got.cat("energyTruth")
    sel = ok & in_fiducial(np.where(ok[:, None], params[:, :3], np.nan)) & (e_true > 0)
    if sel.sum() < MIN_EVENTS:
        raise CalibrationError(f"only {int(sel.sum())} calibration events are fitted inside the "
                               f"fiducial volume; simulate at least {MIN_EVENTS}")  # fmt: skip
    return fit_face_weights(got.cat("sums")[sel], e_true[sel])


def _time_batches(got: _Collected, xyz: np.ndarray, target: np.ndarray) -> list[tuple]:
    """The stashed sensor arrays with their events' first interactions and T_true."""
    out = []
    for time, npho, first in got.time_batches:
        sl = slice(first, first + len(time))
        out.append((time, npho, np.ascontiguousarray(xyz[sl]), target[sl]))
    return out


def _estimates(paths: Sequence[Path], xyz: np.ndarray, par: np.ndarray, read: dict) -> np.ndarray:
    """Second pass over the files: every event's T from the fitted time constants."""
    out, start = np.full(len(xyz), np.nan), 0
    for path in paths:
        for batch in iter_batches(path, **read):
            sl = slice(start, start + len(batch.npho))
            out[sl] = interaction_times(batch.time, batch.npho, xyz[sl], par)[0]
            start = sl.stop
    return out


def build_calibration(
    paths: Sequence[str | Path], name: str = "default", version: int = 1,
    progress: bool = False, tree: str = DEFAULT_TREE, npho_branch: str | None = None,
    time_branch: str = DEFAULT_TIME, attenuation_length: float | None = None,
) -> Calibration:  # fmt: skip
    """Fit a calibration to simulated files (ROOT or stores with truth); attenuation_length
    (cm) is the position fit's attenuation of the direct light, recorded in the settings
    (e.g. ``ATTENUATION_LENGTH``, the simulator's); None leaves it out of the model, the
    default: on the toy detector it resolves u 0.6-1 mm worse (docs/detector-realism.md)."""
    files = [Path(p) for p in paths]
    settings: dict[str, Any] = {"window_half": WINDOW_HALF}
    if attenuation_length is not None:
        settings["attenuation_length_cm"] = float(attenuation_length)
    read = {"tree": tree, "npho_branch": npho_branch, "time_branch": time_branch}
    got = _collect(files, {"half": WINDOW_HALF, "length": attenuation_length}, read, progress)
    params, status = got.cat("params"), np.concatenate(got.status)
    vtx, xyz_true, t_true = got.cat("xyzVTX"), got.cat("xyzTruth"), got.cat("timeTruth")
    ok = (status == OK) & valid_rows(vtx) & valid_rows(xyz_true) & valid_rows(t_true)
    ok &= valid_rows(got.cat("energyTruth"))
    if ok.sum() < MIN_EVENTS:
        raise CalibrationError(f"only {int(ok.sum())} of {len(ok)} calibration events could be "
                               f"fitted; simulate at least {MIN_EVENTS}")  # fmt: skip
    weights = _weights(got, ok)
    e_lin = (got.cat("sums") * weights).sum(axis=1)
    e_true = got.cat("energyTruth")
    depth = fit_depth_correction(params[ok, :3], vtx[ok], e_true[ok], xyz_true[ok])
    uvw_fit = np.where(ok[:, None], params[:, :3], 0.0)
    xyz, uvw = first_interaction(uvw_fit, np.where(ok[:, None], vtx, 0.0), e_lin, depth)
    try:
        bias = fit_position_bias(np.where(ok[:, None], uvw, np.nan), xyz_to_uvw(xyz_true))
    except ValueError as exc:
        raise CalibrationError(f"{exc}: simulate more calibration events") from None
    xyz, uvw = bias.correct(uvw)
    xyz[~ok] = np.nan
    energy = _energy(got, weights, uvw, ok)
    target = np.where(ok, t_true + flight_time(xyz, vtx), np.nan)
    par = fit_time_constants(_time_batches(got, xyz, target))
    diff = _estimates(files, xyz, par, read) - target
    diff[~in_fiducial(uvw)] = np.nan  # the offset of the volume where results are quoted
    offset = fit_binned_linear(uvw[:, 2], e_true, diff, DEPTH_EDGES)
    command = f"xec reco calibrate {' '.join(p.name for p in files)} --name {name}"
    source = {"files": [_provenance(p) for p in files], "events": len(ok),
              "events_fitted": int(ok.sum()), "time_events": got.n_time,
              "xec_version": _version(), "command": f"{command} --version {version}"}  # fmt: skip
    return Calibration(name, version, settings, depth, energy,
                       TimeCalibration.from_parameters(par, offset), source=source,
                       position=bias)  # fmt: skip


def _provenance(path: Path) -> dict[str, Any]:
    """Name, size, sha256 and the simulator settings (``xec_sim``) of a calibration input."""
    if is_store(path):
        from xecdata.store import open_store

        st = open_store(path)
        return {"name": path.name, "store": True, "events": st.n_events,
                "sources": st.metadata.get("provenance", {}).get("files", [])}  # fmt: skip
    import uproot

    entry: dict[str, Any] = {"name": path.name, "bytes": path.stat().st_size,
                             "sha256": sha256_file(path)}  # fmt: skip
    with uproot.open(path) as f:
        if "xec_sim" in f:
            entry["simulation"] = json.loads(str(f["xec_sim"]))
    return entry


def _version() -> str:
    try:
        return metadata.version("xec")
    except metadata.PackageNotFoundError:
        return "unknown"
