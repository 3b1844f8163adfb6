"""Resolution PDFs of the regressor tasks, one layout per plot kind of the task catalogue: angle,
energy (with the calorimeter fit), timing, the first-interaction position, and a generic one
for any scalar. Inputs are (N, C) arrays in physical units (see csvio)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.axes import Axes

from xectrain.evaluation.metrics import (
    CaloFit,
    binned_width,
    direction_from_angles,
    fit_calo_resolution,
    opening_angle_deg,
    wrap_degrees,
)

from .plotting import new_figure, profile, residual_hist, robust_range, save, scatter_true_pred

MEV_PER_GEV = 1000.0
PS_PER_NS = 1000.0


def plot_angle(true: np.ndarray, pred: np.ndarray, path: str | Path, ref: str = "true") -> Path:
    """Theta/phi residuals and their 68 % widths vs angle, opening angle, pred-vs-true
    (`ref` names the reference in the labels: true, or reco on real data)."""
    d_theta = pred[:, 0] - true[:, 0]
    d_phi = wrap_degrees(pred[:, 1] - true[:, 1])
    psi = opening_angle_deg(
        direction_from_angles(pred[:, 0], pred[:, 1]), direction_from_angles(true[:, 0], true[:, 1])
    )
    fig, ax = new_figure(2, 4, (17, 8))
    residual_hist(ax[0, 0], d_theta, f"θ_pred − θ_{ref} [deg]", "deg")
    residual_hist(ax[0, 1], d_phi, f"φ_pred − φ_{ref} [deg]", "deg")
    psi68 = np.percentile(psi, 68)
    ax[0, 2].hist(psi, bins=80, range=(0, robust_range(psi, pad=0, q=1)[1]), histtype="step")
    ax[0, 2].axvline(psi68, color="r", ls="--", label=f"68% = {psi68:.3g} deg")
    ax[0, 2].set_xlabel("opening angle ψ [deg]")
    ax[0, 2].legend(fontsize=8)
    scatter_true_pred(ax[0, 3], true[:, 0], pred[:, 0], "θ [deg]", ref)
    profile(ax[1, 0], true[:, 0], d_theta, f"{ref} θ [deg]", "θ resolution (68% hw) [deg]")
    profile(ax[1, 1], true[:, 1], d_phi, f"{ref} φ [deg]", "φ resolution (68% hw) [deg]")
    _psi_profile(ax[1, 2], true[:, 0], psi, ref)
    scatter_true_pred(ax[1, 3], true[:, 1], pred[:, 1], "φ [deg]", ref)
    fig.suptitle(f"Angle resolution: ψ68 = {psi68:.3g} deg, N = {len(true)}")
    return save(fig, path)


def _psi_profile(ax: Axes, x: np.ndarray, psi: np.ndarray, ref: str, nbins: int = 12) -> None:
    """68th percentile of the opening angle in bins of `x` (bins need >= 20 events)."""
    lo, hi = robust_range(x, pad=0.0)
    edges = np.linspace(lo, hi, nbins + 1)
    idx = np.digitize(x, edges) - 1
    q68 = np.array(
        [
            np.percentile(psi[idx == b], 68) if (idx == b).sum() >= 20 else np.nan
            for b in range(nbins)
        ]
    )
    ax.plot(0.5 * (edges[1:] + edges[:-1]), q68, "o", ms=3)
    ax.set_xlabel(f"{ref} θ [deg]")
    ax.set_ylabel("ψ 68% [deg]")
    ax.set_ylim(0, 1.2 * np.nanmax(q68) if np.isfinite(q68).any() else 1.0)
    ax.grid(alpha=0.3)


def energy_resolution_fit(true: np.ndarray, pred: np.ndarray, nbins: int = 10) -> CaloFit | None:
    """sigma/E (68 % half-width of (pred - true)/true) in bins of true energy, fitted with
    a/sqrt(E) (+) b (+) c/E; None when fewer than 3 bins have enough events."""
    true, pred = np.ravel(true), np.ravel(pred)
    lo, hi = robust_range(true, pad=0.0, q=0.5)
    centers, widths, errs, _ = binned_width(
        true, (pred - true) / true, np.linspace(lo, hi, nbins + 1)
    )
    ok = np.isfinite(widths) & (widths > 0) & (centers > 0)
    if ok.sum() < 3:
        return None
    return fit_calo_resolution(centers[ok], widths[ok], errs[ok])


def plot_energy(
    true: np.ndarray,
    pred: np.ndarray,
    path: str | Path,
    uvw: np.ndarray | None = None,
    ref: str = "true",
) -> tuple[Path, CaloFit | None]:
    """Residuals, resolution and sigma/E vs energy with the fit printed, pred-vs-true; a second
    row of sigma/E vs u, v, w when the true first-interaction point is given. Returns the fit."""
    true, pred = np.ravel(true), np.ravel(pred)
    rel = (pred - true) / true
    fig, ax = new_figure(2 if uvw is not None else 1, 4, (17, 8 if uvw is not None else 4.2))
    residual_hist(ax[0, 0], (pred - true) * MEV_PER_GEV, f"E_pred − E_{ref} [MeV]", "MeV")
    profile(
        ax[0, 1], true * MEV_PER_GEV, (pred - true) * MEV_PER_GEV, f"{ref} E [MeV]", "σ_E [MeV]"
    )
    profile(ax[0, 2], true * MEV_PER_GEV, rel, f"{ref} E [MeV]", "σ_E / E [%]", scale=100.0)
    fit = energy_resolution_fit(true, pred)
    if fit is not None:
        e = np.linspace(*robust_range(true, pad=0.0), 200)
        ax[0, 2].plot(e * MEV_PER_GEV, 100 * fit(e), "r-", lw=1.2)
        ax[0, 2].set_title(fit.label(), fontsize=8)
    scatter_true_pred(ax[0, 3], true * MEV_PER_GEV, pred * MEV_PER_GEV, "E [MeV]", ref)
    if uvw is not None:
        for i, axis in enumerate("uvw"):
            profile(ax[1, i], uvw[:, i], rel, f"{ref} {axis} [cm]", "σ_E / E [%]", scale=100.0)
        residual_hist(ax[1, 3], rel * 100.0, f"(E_pred − E_{ref}) / E_{ref} [%]", "%")
    fig.suptitle(f"Energy resolution, N = {len(true)}")
    return save(fig, path), fit


def plot_timing(
    true: np.ndarray,
    pred: np.ndarray,
    path: str | Path,
    energy: np.ndarray | None = None,
    ref: str = "true",
) -> Path:
    """Timing residual (ps), its width vs true energy (when given) or true time, pred-vs-true."""
    true, pred = np.ravel(true), np.ravel(pred)
    res_ps = (pred - true) * PS_PER_NS
    fig, ax = new_figure(1, 3, (14, 4.4))
    residual_hist(ax[0, 0], res_ps, f"t_pred − t_{ref} [ps]", "ps")
    if energy is not None:
        profile(ax[0, 1], np.ravel(energy) * MEV_PER_GEV, res_ps, f"{ref} E [MeV]", "σ_t [ps]")
    else:
        profile(ax[0, 1], true, res_ps, f"{ref} t [ns]", "σ_t (68% hw) [ps]")
    scatter_true_pred(ax[0, 2], true, pred, "t [ns]", ref)
    fig.suptitle(f"Timing resolution, N = {len(true)}")
    return save(fig, path)


def plot_position(true: np.ndarray, pred: np.ndarray, path: str | Path, ref: str = "true") -> Path:
    """u, v, w residuals, their widths vs the same coordinate, pred-vs-true per axis."""
    fig, ax = new_figure(3, 3, (14, 12))
    for i, axis in enumerate("uvw"):
        res = pred[:, i] - true[:, i]
        residual_hist(ax[0, i], res, f"{axis}_pred − {axis}_{ref} [cm]", "cm")
        profile(ax[1, i], true[:, i], res, f"{ref} {axis} [cm]", f"σ_{axis} (68% hw) [cm]")
        scatter_true_pred(ax[2, i], true[:, i], pred[:, i], f"{axis} [cm]", ref)
    dist68 = np.percentile(np.linalg.norm(pred - true, axis=1), 68)
    fig.suptitle(f"First-interaction position: 68% distance = {dist68:.3g} cm, N = {len(true)}")
    return save(fig, path)


def plot_scalar(
    true: np.ndarray, pred: np.ndarray, path: str | Path, name: str, units: str, ref: str = "true"
) -> Path:
    """Any one-valued task: residual, its width vs the true value, pred-vs-true (task units)."""
    true, pred = np.ravel(true), np.ravel(pred)
    res = pred - true
    fig, ax = new_figure(1, 3, (14, 4.4))
    residual_hist(ax[0, 0], res, f"{name}_pred − {name}_{ref} [{units}]", units)
    profile(ax[0, 1], true, res, f"{ref} {name} [{units}]", f"σ (68% hw) [{units}]")
    scatter_true_pred(ax[0, 2], true, pred, f"{name} [{units}]", ref)
    fig.suptitle(f"{name} resolution, N = {len(true)}")
    return save(fig, path)
