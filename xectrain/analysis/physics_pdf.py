"""The ML-vs-conventional report as a PDF: per event set, the table (w > 2 cm, w < 2 cm), the
residual distributions of both on the same events (fiducial, w > 2 cm), and sigma68 and bias
against true depth and true energy."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from xecdata.robust import half_width_68
from xectrain.analysis.physics import QUANTITIES, SIDES, cell_text, ratio_text, unit_of
from xectrain.artifacts.plotting import new_figure, robust_range

COLOR = {"ml": "tab:blue", "conventional": "tab:red"}
NAME = {"ml": "ML", "conventional": "conventional"}
LABEL = {"dE/E": "dE/E", "u": "u", "v": "v", "w": "w", "t": "t", "theta": "θ", "phi": "φ"}


def _table_page(name: str, report: Mapping[str, Any]) -> Figure:
    group = report["depth split"]
    regions = list(group)
    fig, ax = new_figure(1, 1, (11, 4.2))
    ax[0, 0].axis("off")
    cols = [f"{c}\n{r}" for r in regions for c in ("ML", "conventional", "ML/conv.")]
    rows, cells = [], []
    for q in QUANTITIES:
        row = []
        for r in regions:
            ml, cv = group[r]["ml"].get(q), group[r]["conventional"].get(q)
            row += [cell_text(ml), cell_text(cv), ratio_text(ml, cv)]
        if any(c != "-" for c in row):
            rows.append(f"{LABEL[q]} [{unit_of(group, q)}]")
            cells.append(row)
    table = ax[0, 0].table(cellText=cells, rowLabels=rows, colLabels=cols, loc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    table.scale(1.0, 1.6)
    counts = ", ".join(f"{r}: {group[r]['events']}" for r in regions)
    fig.suptitle(f"{name}: sigma68 (median bias) against truth, same events; fiducial {counts}")
    return fig


def _hist_page(name: str, res: Mapping[str, Mapping[str, Any]]) -> Figure:
    fig, ax = new_figure(2, 4, (16, 7.5))
    for k, q in enumerate(QUANTITIES):
        a: Axes = ax.flat[k]
        both = [res[s][q] for s in SIDES if q in res[s] and len(res[s][q])]
        if not both:
            a.axis("off")
            continue
        lo, hi = robust_range(np.concatenate(both), q=1.0)
        edges = np.linspace(lo, hi, 61)
        for side in SIDES:
            r = res[side].get(q)
            if r is None or not len(r):
                continue
            s68 = half_width_68(r)
            label = f"{NAME[side]}  σ68 {s68:.3g}"
            a.stairs(np.histogram(r, edges)[0], edges, lw=1.4, color=COLOR[side], label=label)
        a.set_xlabel(f"{LABEL[q]} reconstructed − true [{res['units'][q]}]")
        a.set_ylabel("events")
        a.legend(fontsize=8)
    ax.flat[-1].axis("off")
    fig.suptitle(f"{name}: residuals, fiducial w > 2 cm (same events)")
    return fig


def _bins_page(name: str, report: Mapping[str, Any], group_name: str, key: str) -> Figure:
    group = report[group_name]
    regions = list(group)
    x = np.arange(len(regions))
    fig, ax = new_figure(2, 4, (16, 7.5))
    for k, q in enumerate(QUANTITIES):
        a: Axes = ax.flat[k]
        for side in SIDES:
            y = [group[r][side].get(q, {}).get(key, np.nan) for r in regions]
            a.plot(x, y, "o-", color=COLOR[side], label=NAME[side])
        if key == "bias":
            a.axhline(0.0, color="grey", lw=0.8)
        a.set_xticks(x, [r.split(" ")[0] for r in regions], fontsize=8)
        a.set_xlabel(f"true {group_name.split(' ')[0]} [{regions[0].split(' ')[-1]}]")
        a.set_ylabel(f"{LABEL[q]} {'σ68' if key == 'sigma68' else 'bias'} [{unit_of(group, q)}]")
        values = [v for side in SIDES for r in regions
                  if (v := group[r][side].get(q, {}).get(key)) is not None]  # fmt: skip
        if key == "sigma68" and values and min(values) > 0 and max(values) > 20 * min(values):
            a.set_yscale("log")  # one side far wider than the other: keep both readable
        elif key == "sigma68":
            a.set_ylim(bottom=0)
        a.legend(fontsize=8)
    ax.flat[-1].axis("off")
    fig.suptitle(
        f"{name}: {'sigma68' if key == 'sigma68' else 'median bias'} in {group_name} (fiducial)"
    )
    return fig


def write_pdf(
    sets: Mapping[str, Mapping[str, Any]],
    residuals: Mapping[str, Mapping[str, Mapping[str, Any]]],
    path: str | Path,
) -> Path:
    """All pages of every event set into one PDF; `residuals` {set: residual_arrays(...)}."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with PdfPages(path) as pdf:
        for name, report in sets.items():
            pdf.savefig(_table_page(name, report))
            if name in residuals:
                pdf.savefig(_hist_page(name, residuals[name]))
            for group in ("energy bins", "depth bins"):
                if group in report:
                    for key in ("sigma68", "bias"):
                        pdf.savefig(_bins_page(name, report, group, key))
    return path
