"""ML against the conventional reconstruction on the same events: the table of the physics
benchmark (`xec bench physics`) and of `xec demo`.

Both are measured against the simulation truth with ``xecdata.reco.resolution`` (the way MEG
quotes resolutions: sigma68 = half the central 68.27 % interval and the median residual as the
bias, of dE/E in %, u, v, w in mm, t in ps, theta and phi in mrad), in the fiducial volume
(|u| < 23.9 cm, |v| < 67.9 cm) split at w = 2 cm, and in bins of true energy and of true depth
(fiducial, all depths / all energies). The model's predictions are measured on exactly the
events where the conventional reconstruction of that quantity succeeded: where it failed
(the 1e10 marker) the prediction is left out too, and the failures are counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

import numpy as np

from xecdata.markers import INVALID, valid_rows
from xecdata.reco.resolution import depth_regions, fiducial, residuals, resolution_table
from xecdata.tasks import TASKS

ENERGY_EDGES_MEV = (15.0, 25.0, 35.0, 45.0, 55.0, 60.0)
DEPTH_EDGES_CM = (0.0, 2.0, 5.0, 10.0, 20.0, 42.0)
QUANTITIES = ("dE/E", "u", "v", "w", "t", "theta", "phi")
SIDES = ("ml", "conventional")
MIN_BIN_EVENTS = 20  # a bin of energy or depth with fewer events gets its count, no widths


def _rows(x: np.ndarray) -> np.ndarray:
    a = np.asarray(x, np.float64)
    return a.reshape(len(a), -1)


def reco_of_task() -> dict[str, str]:
    """{task: its conventional reconstruction's branch} for the catalogue's tasks that have one."""
    return {t.name: t.reco for t in TASKS.values() if t.reco is not None}


def ml_as_reco(
    preds: Mapping[str, np.ndarray], cols: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The model's physical predictions {task: (N, D)} under the conventional branch names
    (energyReco, uvwRecoFI, timeReco, emiAngReco), marked invalid where the conventional
    reconstruction of that quantity is, so both sides use the same events."""
    out = {}
    for task, branch in reco_of_task().items():
        if task in preds and branch in cols:
            ok = valid_rows(cols[branch])
            out[branch] = np.where(ok[:, None], _rows(preds[task]), INVALID)
    return out


def conventional(cols: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The conventional reconstruction's branches present in `cols`."""
    return {b: cols[b] for b in reco_of_task().values() if b in cols}


def _bins(values: np.ndarray, edges: Sequence[float], sel: np.ndarray, unit: str) -> dict:
    """{label: sel & (edge_i <= values < edge_i+1)} (the last bin closed)."""
    out = {}
    for i, (lo, hi) in enumerate(pairwise(edges)):
        top = values <= hi if i == len(edges) - 2 else values < hi
        out[f"{lo:g}-{hi:g} {unit}"] = sel & (values >= lo) & top
    return out


def selections(cols: Mapping[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """Event selections by group: the MEG depth split, bins of true energy, bins of depth."""
    fid = fiducial(cols)
    energy = _rows(cols["energyTruth"])[:, 0] * 1000.0  # GeV -> MeV
    depth = _rows(cols["uvwTruth"])[:, 2]
    groups = {
        "depth split": depth_regions(cols),
        "depth bins": _bins(depth, DEPTH_EDGES_CM, fid, "cm"),
    }
    if np.ptp(energy[fid]) > 1.0:  # a spectrum, not a line: bins of energy mean something
        groups["energy bins"] = _bins(energy, ENERGY_EDGES_MEV, fid, "MeV")
    return groups


def compare(preds: Mapping[str, np.ndarray], cols: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The ML-vs-conventional report of one event set: `cols` holds the truth and the
    conventional branches, `preds` the model's physical predictions {task: (N, D)}."""
    ml, conv = ml_as_reco(preds, cols), conventional(cols)
    if not conv:
        raise ValueError(
            "the events carry no conventional reconstruction (energyReco, uvwRecoFI, ...); "
            "simulate them with `xec simulate --reco` or run `xec reco` on them"
        )
    report: dict[str, Any] = {
        "events": len(cols["uvwTruth"]),
        "fiducial": int(fiducial(cols).sum()),
        "conventional_failed": {b: int((~valid_rows(v)).sum()) for b, v in conv.items()},
    }
    for group, regions in selections(cols).items():
        report[group] = {}
        for region, sel in regions.items():
            entry: dict[str, Any] = {"events": int(sel.sum()), "ml": {}, "conventional": {}}
            if group == "depth split" or sel.sum() >= MIN_BIN_EVENTS:  # else: a count only
                entry["ml"] = _entry(resolution_table(ml, cols, {region: sel}))
                entry["conventional"] = _entry(resolution_table(conv, cols, {region: sel}))
            report[group][region] = entry
    return report


def _entry(table: Mapping[str, Any]) -> dict[str, Any]:
    (entry,) = table.values()
    return {k: v for k, v in entry.items() if isinstance(v, dict)}


def residual_arrays(
    preds: Mapping[str, np.ndarray], cols: Mapping[str, np.ndarray], sel: np.ndarray
) -> dict[str, dict[str, Any]]:
    """{side: {quantity: residuals}} on the selected events (both sides on the same events)
    and {"units": {quantity: unit}}, for histograms."""
    out: dict[str, dict[str, Any]] = {"units": {}}
    for side, reco in (("ml", ml_as_reco(preds, cols)), ("conventional", conventional(cols))):
        found = residuals(reco, cols)
        out[side] = {q: r[sel & ok] for q, (r, ok, _) in found.items()}
        out["units"] |= {q: unit for q, (_, _, unit) in found.items()}
    return out


# ---- text --------------------------------------------------------------------------------
def cell_text(v: Mapping[str, Any] | None) -> str:
    return "-" if v is None else f"{v['sigma68']:.3g} ({v['bias']:+.2g})"


def ratio_text(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> str:
    if a is None or b is None or b["sigma68"] <= 0:
        return "-"
    return f"{a['sigma68'] / b['sigma68']:.2f}"


def unit_of(group: Mapping[str, Any], q: str) -> str:
    for entry in group.values():
        for side in SIDES:
            if q in entry[side]:
                return str(entry[side][q]["unit"])
    return ""


def markdown_split(report: Mapping[str, Any]) -> str:
    """The main table: per quantity, sigma68 (bias) of ML and conventional and their ratio,
    at w > 2 cm and w < 2 cm."""
    group = report["depth split"]
    regions = list(group)
    head = ["quantity"] + [f"{c} {r}" for r in regions for c in ("ML", "conv.", "ML/conv.")]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for q in QUANTITIES:
        cells = [f"{q} [{unit_of(group, q)}]"]
        for r in regions:
            ml, cv = group[r]["ml"].get(q), group[r]["conventional"].get(q)
            cells += [cell_text(ml), cell_text(cv), ratio_text(ml, cv)]
        if any(c != "-" for c in cells[1:]):
            lines.append("| " + " | ".join(cells) + " |")
    counts = ", ".join(f"{r}: {group[r]['events']} events" for r in regions)
    return "\n".join(lines) + f"\n\nsigma68 (bias); {counts}."


def markdown_bins(report: Mapping[str, Any], group_name: str) -> str:
    """sigma68 ML / conventional per bin of one group (energy bins or depth bins)."""
    group = report[group_name]
    regions = list(group)
    head = ["quantity"] + [f"{r} ({group[r]['events']})" for r in regions]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * len(regions) + "|"]
    for q in QUANTITIES:
        cells = [f"{q} [{unit_of(group, q)}]"]
        for r in regions:
            ml, cv = group[r]["ml"].get(q), group[r]["conventional"].get(q)
            cells.append(
                "-" if ml is None or cv is None else f"{ml['sigma68']:.3g} / {cv['sigma68']:.3g}"
            )
        if any(c != "-" for c in cells[1:]):
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + (
        "\n\nsigma68 ML / conventional (events per bin in brackets; under "
        f"{MIN_BIN_EVENTS} events: -)."
    )


def markdown_report(sets: Mapping[str, Mapping[str, Any]], title: str) -> str:
    """Every event set's tables, one section per set."""
    out = [f"# {title}", ""]
    for name, report in sets.items():
        failed = ", ".join(f"{b} {n}" for b, n in report["conventional_failed"].items() if n)
        out += [
            f"## {name}: {report['events']} events, {report['fiducial']} fiducial",
            "",
            markdown_split(report),
            "",
        ]
        if failed:
            out += [f"Conventional reconstruction failed (left out of both): {failed}.", ""]
        for group in ("energy bins", "depth bins"):
            if group in report:
                out += [f"### {name}, {group} (fiducial)", "", markdown_bins(report, group), ""]
    return "\n".join(out)
