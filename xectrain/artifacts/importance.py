"""Which faces and channels the regressor relies on.

- Face importance (`face_weights_{run}.pdf`): the increase of the validation loss when one face
  is replaced by the sentinel (an occlusion test; computed by the caller, plotted here).
- Saliency (`saliency_{run}.pdf`): mean |d output / d input| per face and channel (npho,
  time) for each task, from input gradients the caller computes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from xecdata.geometry import FACE_NAMES, N_SENSORS, sensor_table

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


def plot_saliency(saliency: Mapping[str, np.ndarray], path: str | Path) -> Path:
    """Grouped bars (face x channel) of the saliency of each task, normalised to its maximum."""
    tasks = list(saliency)
    fig, ax = new_figure(1, len(tasks), (4.2 * len(tasks), 3.8))
    x = np.arange(len(FACE_NAMES))
    for i, task in enumerate(tasks):
        s = np.asarray(saliency[task], np.float64)
        s = s / s.max() if s.max() > 0 else s
        for c, ch in enumerate(CHANNELS):
            ax[0, i].bar(x + (c - 0.5) * 0.4, s[:, c], width=0.4, label=ch)
        ax[0, i].set_xticks(x, FACE_NAMES, rotation=30)
        ax[0, i].set_title(task)
        ax[0, i].set_ylabel("mean |∂out/∂in| (rel.)")
        ax[0, i].legend(fontsize=8)
    fig.suptitle("Saliency by face and channel")
    return save(fig, path)


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
