"""Event displays: photon counts and times of all 4760 sensors in the detector layout.

The main panel unfolds the detector around the inner face: inner (93 x 44 MPPCs) in the middle
with z horizontal and phi' * R_inner vertical, US / DS endcaps unrolled to its left and right
along the radius, top / bottom hexagonal PMT walls above and below. The outer face (coarse
PMTs and the finer centre patch) gets its own panel on the same phi' scale. Every position
comes from xecdata.geometry; nothing here re-types a sensor map.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure

from xecdata.facemaps import OUTER_CENTER_MAP
from xecdata.geometry import (
    CENTER_DPHI,
    CENTER_DZ,
    ENDCAP_DR,
    ENDCAP_R0,
    FACE_CODE,
    FACE_NAMES,
    HEX_D0,
    HEX_DD,
    HEX_PITCH,
    HEX_WALL_PHI,
    INNER_DPHI,
    INNER_DZ,
    INNER_SHAPE,
    INNER_Z0,
    N_SENSORS,
    OUTER_DPHI,
    OUTER_DZ,
    R_INNER,
    hex_plane_coords,
    sensor_table,
)
from xecdata.markers import valid_rows
from xecdata.tasks import CLASSIFICATION, TASKS

from .plotting import save

GAP = 3.0  # cm of empty space between unfolded faces
TITLE_WIDTH = 110  # characters per title line


@dataclass(frozen=True)
class Layout:
    """Per sensor: panel (0 main, 1 outer), centre (x, y) in cm, width, height, is_circle."""

    panel: np.ndarray
    x: np.ndarray
    y: np.ndarray
    w: np.ndarray
    h: np.ndarray
    circle: np.ndarray
    labels: dict[str, tuple[int, float, float]] = field(default_factory=dict)


def _arc(deg: float) -> float:
    """Length (cm) of an arc of `deg` degrees on the inner radius (the vertical display unit)."""
    return float(np.radians(abs(deg)) * R_INNER)


@cache
def layout() -> Layout:
    """Unfolded display positions of all sensors (see the module docstring)."""
    t = sensor_table()
    x, y = t.pos[:, 2].copy(), np.radians(np.degrees(np.arctan2(t.pos[:, 1], -t.pos[:, 0])))
    y *= R_INNER
    r = np.hypot(t.pos[:, 0], t.pos[:, 1])
    panel = (t.face == FACE_CODE["outer"]).astype(np.int8)
    w = np.full(N_SENSORS, abs(INNER_DZ))
    h = np.full(N_SENSORS, _arc(INNER_DPHI))
    z_lo = INNER_Z0 - abs(INNER_DZ) / 2
    z_hi = INNER_Z0 + abs(INNER_DZ) * (INNER_SHAPE[1] - 0.5)
    for face, sign, edge in (("us", -1.0, z_lo), ("ds", 1.0, z_hi)):
        sel = t.face == FACE_CODE[face]
        x[sel] = edge + sign * (GAP + ENDCAP_DR / 2 + (r[sel] - ENDCAP_R0))
        w[sel], h[sel] = ENDCAP_DR, _arc(OUTER_DPHI)
    d, z = hex_plane_coords()
    for face, sign in (("top", 1.0), ("bottom", -1.0)):
        sel = t.face == FACE_CODE[face]
        x[sel] = z
        y[sel] = sign * (_arc(HEX_WALL_PHI) + GAP + HEX_DD / 2 + (d - HEX_D0))
        w[sel] = h[sel] = 0.95 * HEX_PITCH
    outer = t.face == FACE_CODE["outer"]
    w[outer], h[outer] = abs(OUTER_DZ), _arc(OUTER_DPHI)
    centre = OUTER_CENTER_MAP.ravel()
    w[centre], h[centre] = abs(CENTER_DZ), _arc(CENTER_DPHI)
    circle = np.isin(t.face, [FACE_CODE["top"], FACE_CODE["bottom"]])
    labels = {}
    for name in FACE_NAMES:
        sel = t.face == FACE_CODE[name]
        above = name != "bottom"  # the bottom wall is labelled below itself, clear of inner
        edge = (y[sel] + h[sel] / 2).max() + 1.0 if above else (y[sel] - h[sel] / 2).min() - 7.0
        labels[name] = (int(panel[sel][0]), float(x[sel].mean()), float(edge))
    return Layout(panel, x, y, w, h, circle, labels)


def draw_sensors(
    ax: Axes, values: np.ndarray, panel: int, norm: Normalize, cmap: str
) -> PolyCollection:
    """Draw the sensors of one panel coloured by `values` (NaN drawn grey); vectorised
    polygons (rectangles, 24-gons for the PMT discs) keep 4760 sensors fast to draw."""
    lay = layout()
    ids = np.flatnonzero(lay.panel == panel)
    cm = colormaps[cmap].with_extremes(bad="0.85")  # grey: dead sensor / invalid time
    colls = []
    for sel in (ids[~lay.circle[ids]], ids[lay.circle[ids]]):
        if not len(sel):
            continue
        polygons = list(_polygons(sel))
        coll = PolyCollection(polygons, cmap=cm, norm=norm, linewidths=0.4, edgecolors="face")
        coll.set_array(np.ma.masked_invalid(values[sel]))
        ax.add_collection(coll)
        colls.append(coll)
    for name, (p, x, y) in lay.labels.items():
        if p == panel and name not in ("inner", "outer"):
            ax.text(x, y, name, ha="center", va="bottom", fontsize=8)
    ax.autoscale_view()
    ax.set_aspect("equal")
    ax.set_xlabel("z [cm]" + (" (endcaps unrolled along r)" if panel == 0 else ""))
    ax.set_ylabel("φ′ · R_inner [cm]")
    return colls[0]


def _polygons(ids: np.ndarray) -> np.ndarray:
    """(N, V, 2) outline of each sensor: 4 corners of a rectangle or a 24-gon for a disc."""
    lay = layout()
    centre = np.stack([lay.x[ids], lay.y[ids]], -1)[:, None]  # (N, 1, 2)
    if lay.circle[ids].all():
        ang = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        unit = np.stack([np.cos(ang), np.sin(ang)], -1)  # (24, 2)
        return centre + unit * (lay.w[ids] / 2)[:, None, None]
    corners = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])  # (4, 2)
    return centre + corners * np.stack([lay.w[ids], lay.h[ids]], -1)[:, None]


def _norms(npho: np.ndarray, time_ns: np.ndarray) -> tuple[Normalize, Normalize]:
    pos = npho[np.isfinite(npho) & (npho > 0)]
    top = float(pos.max()) if pos.size else 10.0
    npho_norm = LogNorm(vmin=max(1.0, top * 1e-4), vmax=max(top, 10.0))
    valid = time_ns[np.isfinite(time_ns)]
    lo, hi = np.percentile(valid, [2, 98]) if valid.size else (0.0, 1.0)
    return npho_norm, Normalize(vmin=float(lo), vmax=float(max(hi, lo + 1e-3)))


def plot_event(npho: np.ndarray, time_ns: np.ndarray, path: str | Path, title: str = "") -> Path:
    """Two rows (photons, time in ns) x two panels (unfolded detector, outer face) of one event.

    npho: (4760,) photons, NaN for a dead sensor (grey); time_ns: (4760,) ns, NaN where the
    time is invalid (grey)."""
    npho = np.asarray(npho, np.float64)
    time_ns = np.asarray(time_ns, np.float64)
    npho_norm, time_norm = _norms(np.nan_to_num(npho, nan=0.0), time_ns)
    shown = np.where(np.isfinite(npho), np.maximum(npho, npho_norm.vmin or 1.0), np.nan)
    fig = Figure(figsize=(11, 12.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots(2, 2, gridspec_kw={"width_ratios": [1.5, 1.0]})
    rows = ((shown, npho_norm, "photons", "viridis"), (time_ns, time_norm, "time [ns]", "plasma"))
    for row, (values, norm, label, cmap) in enumerate(rows):
        coll = draw_sensors(ax[row, 0], values, 0, norm, cmap)
        draw_sensors(ax[row, 1], values, 1, norm, cmap)
        ax[row, 0].set_title("inner (centre), US / DS (left / right), top / bottom", fontsize=9)
        ax[row, 1].set_title("outer face (coarse PMTs + centre patch)", fontsize=9)
        fig.colorbar(coll, ax=ax[row, :].tolist(), label=label, shrink=0.85)
    if title:
        fig.suptitle(title, fontsize=10)
    return save(fig, path)


def event_title(
    run: int, event: int, loss: float, truth: dict[str, np.ndarray], pred: dict[str, np.ndarray]
) -> str:
    """Run/event and loss (x1000), then every truth the event has (keyed by task, or by store
    array for truth no task uses) and the predictions of the trained tasks, in display units
    (energy MeV, position cm, angles deg, time ns); long lines are wrapped."""
    head = f"Run {run}  Event {event}  loss×1000 = {1000 * loss:.3g}"
    return titled(head, {"truth": truth, "pred": pred})


def titled(head: str, groups: dict[str, dict[str, np.ndarray]]) -> str:
    """`head`, then one wrapped line group per non-empty group ("truth", "reco", "pred", ...)
    of quantities keyed by task (formatted in display units) or by branch name."""
    lines = [head]
    for name, values in groups.items():
        parts = [_fmt(k, np.ravel(values[k]), name == "pred") for k in _display_order(values)]
        lines += _wrap([f"{name}:", *parts]) if parts else []
    return "\n".join(lines)


def _wrap(parts: list[str]) -> list[str]:
    """Join "label:", item, item, ... into lines of at most TITLE_WIDTH characters, breaking
    only between items (an item is never split)."""
    lines = [parts[0]]
    for i, part in enumerate(parts[1:]):
        sep = " " if i == 0 else ", "
        if len(lines[-1]) + len(sep) + len(part) > TITLE_WIDTH and i > 0:
            lines[-1] += ","
            lines.append("    " + part)
        else:
            lines[-1] += sep + part
    return lines


def _display_order(values: dict[str, np.ndarray]) -> list[str]:
    """Tasks in the task catalogue's order, then other truth arrays by name."""
    return [t for t in TASKS if t in values] + sorted(k for k in values if k not in TASKS)


def _fmt(key: str, v: np.ndarray, pred: bool = False) -> str:
    """One quantity in the display units of its task (xecdata.tasks Display; other arrays as
    they are); the files' invalid marker (1e10) shows as n/a."""
    v = np.asarray(v, np.float64)
    if not valid_rows(v.reshape(1, -1))[0]:
        return f"{key} = n/a"
    task = TASKS.get(key)
    if task is not None and task.kind == CLASSIFICATION:  # truth: the class; pred: its scores
        k = int(v.argmax()) if pred and v.size > 1 else int(v[0])
        return f"{task.display.symbol} = {k}" + (
            f" (p = {v[k]:.2f})" if pred and v.size > 1 else ""
        )
    if task is not None:
        return task.display.format(v.ravel().tolist())
    values = ", ".join(f"{c:.4g}" for c in v)
    return f"{key} = " + (f"({values})" if v.size > 1 else values)


@dataclass
class EventRecord:
    """One event to display: sensor values in physical units plus ids, loss, truth, prediction."""

    npho: np.ndarray  # (4760,) photons
    time_ns: np.ndarray  # (4760,) ns, NaN where invalid
    run: int
    event: int
    loss: float
    truth: dict[str, np.ndarray]  # every truth of the event: trained tasks or not
    pred: dict[str, np.ndarray]  # the trained tasks
    index: int = -1  # global event index in the store (-1: unknown)


def plot_worst_events(events: list[EventRecord], out_dir: str | Path, run_name: str) -> list[Path]:
    """`worst_events/worst_NN_{run}.pdf` for each record, worst first."""
    paths = []
    for rank, ev in enumerate(events, start=1):
        title = event_title(ev.run, ev.event, ev.loss, ev.truth, ev.pred)
        path = Path(out_dir) / "worst_events" / f"worst_{rank:02d}_{run_name}.pdf"
        paths.append(plot_event(ev.npho, ev.time_ns, path, title))
    return paths
