"""Which faces and channels the regressor relies on.

- Face importance (`face_weights_{run}.pdf`): the increase of the validation loss when one face
  is replaced by the sentinel (an occlusion test; computed by the caller, plotted here).
- Saliency (`saliency_profile_{run}.pdf`): mean |d prediction / d input| per face and channel
  (npho, time) for each output component of each task (theta and phi apart), in the task's
  physical units per unit of normalized input, from input gradients the caller computes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from xecdata.geometry import FACE_NAMES, N_SENSORS, sensor_table
from xecmodel import TASKS

from .plotting import new_figure, save

CHANNELS = ("npho", "time")


def saliency_by_face(grads: np.ndarray) -> np.ndarray:
    """(N, 4760, 2) input gradients -> (6 faces, 2 channels) mean |gradient| per sensor."""
    g = np.abs(np.asarray(grads, np.float64)).reshape(-1, N_SENSORS, 2).mean(axis=0)  # (4760, 2)
    face = sensor_table().face.astype(np.int64)
    counts = np.bincount(face, minlength=len(FACE_NAMES))[:, None]
    sums = np.stack(
        [np.bincount(face, weights=g[:, c], minlength=len(FACE_NAMES)) for c in range(2)], axis=1
    )
    return sums / counts


def plot_saliency(saliency: Mapping[str, Mapping[str, np.ndarray]], path: str | Path) -> Path:
    """`saliency_figure` written to `path`."""
    return save(saliency_figure(saliency), path)


def saliency_figure(saliency: Mapping[str, Mapping[str, np.ndarray]]) -> Figure:
    """{task: {component: (6 faces, 2 channels)}} -> one row per task, one panel per output
    component (npho vs time bars per face). Values stay in the task's units per unit of
    normalized input, not rescaled, so the panels of one task compare directly."""
    tasks = list(saliency)
    rows, cols = max(len(tasks), 1), max((len(saliency[t]) for t in tasks), default=1)
    fig, ax = new_figure(rows, cols, (4.2 * cols, 3.4 * rows))
    for row, task in enumerate(tasks):
        components = list(saliency[task].items())
        for col in range(cols):
            if col < len(components):
                _saliency_panel(ax[row, col], task, *components[col])
            else:
                ax[row, col].set_axis_off()
    fig.suptitle("Saliency by face and channel (per unit of normalized input)")
    return fig


def _saliency_panel(ax: Axes, task: str, component: str, s: np.ndarray) -> None:
    """Bars of the npho and time saliency (6 faces, 2 channels) of one output component."""
    x = np.arange(len(FACE_NAMES))
    s = np.asarray(s, np.float64)
    for c, ch in enumerate(CHANNELS):
        ax.bar(x + (c - 0.5) * 0.4, s[:, c], width=0.4, label=ch)
    ax.set_xticks(x, FACE_NAMES, rotation=30)
    ax.set_title(f"{task}: {component}")
    ax.set_ylabel(f"mean |∂{component}/∂input| [{TASKS[task].units}]")
    ax.legend(fontsize=8)


def plot_face_importance(
    importance: Mapping[str, float], path: str | Path, baseline: float | None = None
) -> Path:
    """Bar chart of the loss increase when each face is dropped (relative to `baseline`)."""
    names = [f for f in FACE_NAMES if f in importance]
    values = np.array([importance[f] for f in names], np.float64)
    fig, ax = new_figure(1, 1, (6.5, 4))
    bars = ax[0, 0].bar(names, values, color="tab:blue")
    for bar, v in zip(bars, values, strict=True):
        ax[0, 0].text(bar.get_x() + bar.get_width() / 2, v, f"{v:.3g}", ha="center", va="bottom")
    ax[0, 0].set_ylabel("Δ validation loss (face dropped)")
    title = "Face importance (occlusion)"
    if baseline is not None:
        title += f", baseline loss {baseline:.4g}"
    ax[0, 0].set_title(title)
    ax[0, 0].axhline(0, color="k", lw=0.6)
    top = max(float(values.max()) if values.size else 1.0, 0.0)
    ax[0, 0].set_ylim(min(0.0, float(values.min()) * 1.2) if values.size else 0, top * 1.2 or 1)
    return save(fig, path)
