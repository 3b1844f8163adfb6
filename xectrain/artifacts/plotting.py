"""Shared figure helpers: Agg figures without pyplot (no global backend state), histograms with
a Gaussian-core overlay, resolution profiles and pred-vs-true scatter panels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from xectrain.evaluation.metrics import binned_width, gaussian_core, half_width_68

PROFILE_BINS = 12


def new_figure(rows: int, cols: int, size: tuple[float, float]) -> tuple[Figure, np.ndarray]:
    """A figure with a (rows, cols) array of axes, rendered by Agg."""
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_2d(np.asarray(fig.subplots(rows, cols, squeeze=False)))
    return fig, axes


def save(fig: Figure, path: str | Path) -> Path:
    """Write the figure (PDF or PNG by suffix), creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def robust_range(x: np.ndarray, pad: float = 0.05, q: float = 0.5) -> tuple[float, float]:
    """(low, high) covering the central 100 - 2q percent of `x`, padded; never empty."""
    x = np.asarray(x, np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(x, [q, 100 - q])
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    span = hi - lo
    return float(lo - pad * span), float(hi + pad * span)


def residual_hist(ax: Axes, res: np.ndarray, xlabel: str, unit: str = "") -> None:
    """Histogram of residuals with the Gaussian core fit and its mu, sigma and 68 % half-width."""
    res = np.asarray(res, np.float64)
    lo, hi = robust_range(res, q=0.5)
    counts, edges = np.histogram(res, bins=80, range=(lo, hi))
    ax.stairs(counts, edges, fill=True, alpha=0.6)
    mu, sigma = gaussian_core(res)
    x = np.linspace(lo, hi, 400)
    width = edges[1] - edges[0]
    core = np.abs(res - mu) < 2 * sigma
    if sigma > 0:  # no curve for a zero-width core (identical residuals)
        amp = core.sum() * width / (sigma * np.sqrt(2 * np.pi) * 0.9545)
        ax.plot(x, amp * np.exp(-0.5 * ((x - mu) / sigma) ** 2), "r-", lw=1.2)
    u = f" {unit}" if unit else ""
    text = (
        f"N = {res.size}\nμ = {mu:.3g}{u}\nσ(core) = {sigma:.3g}{u}\n"
        f"68% hw = {half_width_68(res):.3g}{u}"
    )
    ax.text(0.03, 0.97, text, transform=ax.transAxes, va="top", fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("events")
    ax.set_ylim(0, counts.max() * 1.35 if counts.size and counts.max() > 0 else 1)


def profile(
    ax: Axes, x: np.ndarray, res: np.ndarray, xlabel: str, ylabel: str, scale: float = 1.0
) -> None:
    """68 % half-width of `res` in bins of `x` with errors (bins need >= 20 events)."""
    lo, hi = robust_range(x, pad=0.0, q=0.5)
    centers, widths, errs, _ = binned_width(x, res, np.linspace(lo, hi, PROFILE_BINS + 1))
    ok = np.isfinite(widths)
    ax.errorbar(centers[ok], scale * widths[ok], yerr=scale * errs[ok], fmt="o", ms=3, capsize=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    top = float(np.nanmax(scale * (widths + errs))) if ok.any() else 0.0
    ax.set_ylim(0, 1.2 * top if top > 0 else 1.0)  # zero widths: an empty-looking, valid axis
    ax.grid(alpha=0.3)


def scatter_true_pred(
    ax: Axes, true: np.ndarray, pred: np.ndarray, label: str, ref: str = "true"
) -> None:
    """2D histogram of prediction vs the reference (`ref`: truth, or reco) with the diagonal."""
    lo, hi = robust_range(np.concatenate([true, pred]), q=0.2)
    ax.hist2d(true, pred, bins=60, range=[[lo, hi], [lo, hi]], cmap="viridis", cmin=1)
    ax.plot([lo, hi], [lo, hi], "r--", lw=0.8)
    ax.set_xlabel(f"{ref} {label}")
    ax.set_ylabel(f"predicted {label}")
    ax.set_aspect("equal")
