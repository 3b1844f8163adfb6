"""Validation metrics of the regressor: pure numpy functions of (pred, truth) in physical units.

Units follow the truth branches: angles in degrees, energy in GeV, time in ns, positions in cm.
Each task of the catalogue (xecdata.tasks) names its metric family; `task_metrics` applies it.
Widths are robust: `half_width_68` is half the central 68 % interval of the residuals (sigma for
a Gaussian), `abs_q68` the 68th percentile of |residual|, and `gaussian_core` fits a Gaussian to
the core of the distribution so that tails (e.g. energy leakage) do not inflate the resolution.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import curve_fit, nnls

from xecdata.robust import half_width_68
from xecdata.tasks import TASKS

FloatArray = np.ndarray


# ---- elementary statistics -----------------------------------------------------------------
def wrap_degrees(d: FloatArray) -> FloatArray:
    """Angle differences wrapped into [-180, 180) degrees (phi residuals across the seam)."""
    return (np.asarray(d, dtype=np.float64) + 180.0) % 360.0 - 180.0


def abs_q68(res: FloatArray) -> float:
    """68th percentile of |res| (the spec's 68 % resolution of a position or angle residual)."""
    return float(np.percentile(np.abs(np.asarray(res, dtype=np.float64)), 68.0))


def residual_stats(res: FloatArray) -> tuple[float, float, float]:
    """(bias, rms, skew): mean, standard deviation and skewness of residuals."""
    res = np.asarray(res, dtype=np.float64)
    mu = float(res.mean())
    sd = float(res.std())
    skew = float(np.mean((res - mu) ** 3) / sd**3) if sd > 0 else 0.0
    return mu, sd, skew


def _gauss(x: FloatArray, amp: float, mu: float, sigma: float) -> FloatArray:
    return amp * np.exp(-0.5 * ((x - mu) / sigma) ** 2)


def gaussian_core(
    res: FloatArray, n_sigma: float = 2.0, iterations: int = 3
) -> tuple[float, float]:
    """(mu, sigma) of a Gaussian fitted to the histogram of `res` within mu +- n_sigma sigma.

    Starts from (median, half_width_68) and refits on the updated window; falls back to the
    start values when there are too few events (< 50) or the fit does not converge.
    """
    res = np.asarray(res, dtype=np.float64)
    mu, sigma = float(np.median(res)), half_width_68(res)
    if res.size < 50 or sigma <= 0:
        return mu, sigma
    for _ in range(iterations):
        lo, hi = mu - n_sigma * sigma, mu + n_sigma * sigma
        core = res[(res >= lo) & (res <= hi)]
        nbins = int(np.clip(np.sqrt(core.size), 10, 100))
        counts, edges = np.histogram(core, bins=nbins, range=(lo, hi))
        centers = 0.5 * (edges[1:] + edges[:-1])
        try:
            (_, mu_fit, sigma_fit), _ = curve_fit(
                _gauss, centers, counts, p0=(counts.max(), mu, sigma),
                sigma=np.sqrt(np.maximum(counts, 1.0)), maxfev=2000,
            )  # fmt: skip
        except (RuntimeError, ValueError):
            break
        if not np.isfinite(sigma_fit) or abs(sigma_fit) > 10 * sigma:
            break
        mu, sigma = float(mu_fit), float(abs(sigma_fit))
    return mu, sigma


# ---- directions ----------------------------------------------------------------------------
def direction_from_angles(theta_deg: FloatArray, phi_deg: FloatArray) -> FloatArray:
    """(...,) theta, phi in degrees -> (..., 3) unit vectors (sin t cos p, sin t sin p, cos t).

    Opening angles do not depend on how this frame is oriented relative to the detector, so
    any fixed rotation or reflection convention of emiAng gives the same metrics.
    """
    t, p = np.radians(theta_deg), np.radians(phi_deg)
    return np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], axis=-1)


def cos_between(a: FloatArray, b: FloatArray) -> FloatArray:
    """(N, 3), (N, 3) -> (N,) cosine of the angle between the vectors (any norms)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    norm = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return np.clip(np.sum(a * b, axis=-1) / np.maximum(norm, 1e-300), -1.0, 1.0)


def opening_angle_deg(a: FloatArray, b: FloatArray) -> FloatArray:
    """(N, 3), (N, 3) -> (N,) opening angle psi = arccos(a.b / |a||b|) in degrees."""
    return np.degrees(np.arccos(cos_between(a, b)))


# ---- per-task metrics ----------------------------------------------------------------------
def angle_metrics(pred: FloatArray, true: FloatArray) -> dict[str, float]:
    """(N, 2) (theta, phi) degrees: cos_loss = mean(1 - cos psi), 68 % opening angle, theta/phi
    bias, rms, skew and 68 % |residual|."""
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    v_pred = direction_from_angles(pred[:, 0], pred[:, 1])
    v_true = direction_from_angles(true[:, 0], true[:, 1])
    psi = opening_angle_deg(v_pred, v_true)
    out = {
        "cos_loss": float(np.mean(1.0 - cos_between(v_pred, v_true))),
        "angle_resolution_68pct": float(np.percentile(psi, 68.0)),
    }
    residuals = {"theta": pred[:, 0] - true[:, 0], "phi": wrap_degrees(pred[:, 1] - true[:, 1])}
    for name, res in residuals.items():
        bias, rms, skew = residual_stats(res)
        out |= {f"{name}_bias": bias, f"{name}_rms": rms, f"{name}_skew": skew}
        out[f"{name}_res_68pct"] = abs_q68(res)
    return out


def angle_vec_metrics(pred: FloatArray, true: FloatArray) -> dict[str, float]:
    """(N, 3) direction vectors: mean(1 - cos psi) and the 68 % opening angle (degrees)."""
    cos = cos_between(pred, true)
    psi = np.degrees(np.arccos(cos))
    return {
        "cos_loss_vec": float(np.mean(1.0 - cos)),
        "angle_vec_resolution_68pct": float(np.percentile(psi, 68.0)),
    }


def position_metrics(pred: FloatArray, true: FloatArray) -> dict[str, float]:
    """(N, 3) (u, v, w) cm: cos_loss_pos, 68 % distance, per-axis 68 % |residual|, bias, rms."""
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    res = pred - true
    out = {
        "cos_loss_pos": float(np.mean(1.0 - cos_between(pred, true))),
        "uvw_dist_68pct": float(np.percentile(np.linalg.norm(res, axis=1), 68.0)),
    }
    for i, axis in enumerate("uvw"):
        bias, rms, _ = residual_stats(res[:, i])
        out |= {
            f"uvw_{axis}_res_68pct": abs_q68(res[:, i]),
            f"uvw_{axis}_bias": bias,
            f"uvw_{axis}_rms": rms,
        }
    return out


def _scalar_metrics(name: str, res: FloatArray) -> dict[str, float]:
    bias, rms, skew = residual_stats(res)
    _, sigma = gaussian_core(res)
    return {
        f"{name}_bias": bias,
        f"{name}_rms": rms,
        f"{name}_skew": skew,
        f"{name}_res_68pct": half_width_68(res),
        f"{name}_sigma": sigma,
    }


def scalar_metrics(name: str, pred: FloatArray, true: FloatArray) -> dict[str, float]:
    """(N,) values in the task's units: residual bias/rms/skew/68 % half-width/core sigma,
    named <name>_* (e.g. timing_res_68pct in ns)."""
    pred, true = np.ravel(pred).astype(np.float64), np.ravel(true).astype(np.float64)
    return _scalar_metrics(name, pred - true)


def relative_metrics(name: str, pred: FloatArray, true: FloatArray) -> dict[str, float]:
    """scalar_metrics, and the same for the relative residual (pred - true) / true as
    <name>_rel_* (for energy: energy_rel_sigma is sigma_E / E)."""
    pred, true = np.ravel(pred).astype(np.float64), np.ravel(true).astype(np.float64)
    rel = (pred - true) / true
    return _scalar_metrics(name, pred - true) | _scalar_metrics(f"{name}_rel", rel)


def accuracy_metrics(name: str, pred: FloatArray, true: FloatArray) -> dict[str, float]:
    """(N, C) class scores or (N,) classes vs (N,) classes: <name>_accuracy."""
    pred = np.asarray(pred)
    classes = pred.argmax(axis=1) if pred.ndim == 2 else np.rint(pred)
    return {f"{name}_accuracy": float(np.mean(classes == np.ravel(true)))}


# One function per metric family of the task catalogue (xecdata.tasks.METRIC_FAMILIES),
# called with the task's name, predictions and truth.
METRIC_FAMILIES: dict[str, Callable[[str, FloatArray, FloatArray], dict[str, float]]] = {
    "angle": lambda _, pred, true: angle_metrics(pred, true),
    "direction": lambda _, pred, true: angle_vec_metrics(pred, true),
    "position": lambda _, pred, true: position_metrics(pred, true),
    "scalar": scalar_metrics,
    "relative": relative_metrics,
    "accuracy": accuracy_metrics,
}


def task_metrics(task: str, pred: FloatArray, true: FloatArray) -> dict[str, float]:
    """Metrics of one task of the catalogue (physical units); a task outside it gets none."""
    info = TASKS.get(task)
    return METRIC_FAMILIES[info.metrics](task, pred, true) if info is not None else {}


# ---- energy resolution: sigma/E = a/sqrt(E) (+) b (+) c/E ----------------------------------
@dataclass(frozen=True)
class CaloFit:
    """Calorimeter resolution sigma/E = sqrt((a/sqrt(E))^2 + b^2 + (c/E)^2), E in GeV.

    a: stochastic term, b: constant term, c: noise term (fractions; x100 for %)."""

    a: float
    b: float
    c: float
    a_err: float
    b_err: float
    c_err: float

    def __call__(self, energy: FloatArray) -> FloatArray:
        return calo_resolution(np.asarray(energy, np.float64), self.a, self.b, self.c)

    def label(self) -> str:
        """'a=2.50%/sqrt(E), b=1.20%, c=0.50%/E' (E in GeV)."""
        return (
            f"a={100 * self.a:.2f}%/√E, b={100 * self.b:.2f}%, c={100 * self.c:.2f}%/E  (E in GeV)"
        )


def calo_resolution(energy: FloatArray, a: float, b: float, c: float) -> FloatArray:
    """sigma/E at `energy` (GeV) for terms a, b, c added in quadrature."""
    return np.sqrt(a**2 / energy + b**2 + c**2 / energy**2)


def fit_calo_resolution(
    energy: FloatArray, rel_sigma: FloatArray, rel_sigma_err: FloatArray | None = None
) -> CaloFit:
    """Fit a, b, c >= 0 to measured sigma/E at `energy` (GeV).

    The squared model is linear in (a^2, b^2, c^2), so a non-negative least-squares solution
    starts a bounded nonlinear fit that also gives the parameter errors.
    """
    e = np.asarray(energy, np.float64)
    y = np.asarray(rel_sigma, np.float64)
    err = np.full_like(y, max(float(np.median(y)) * 0.05, 1e-12)) if rel_sigma_err is None else (
        np.maximum(np.asarray(rel_sigma_err, np.float64), 1e-12)
    )  # fmt: skip
    design = np.stack([1.0 / e, np.ones_like(e), 1.0 / e**2], axis=1)
    w = 1.0 / (2.0 * y * err)  # error of y^2 is 2 y err
    squares, _ = nnls(design * w[:, None], y**2 * w)
    p0 = np.sqrt(np.maximum(squares, 1e-10))
    try:
        popt, pcov = curve_fit(
            calo_resolution, e, y, p0=p0, sigma=err, absolute_sigma=rel_sigma_err is not None,
            bounds=(0.0, np.inf), maxfev=5000,
        )  # fmt: skip
        perr = np.sqrt(np.clip(np.diag(pcov), 0.0, np.inf))
    except (RuntimeError, ValueError):
        popt, perr = p0, np.full(3, np.nan)
    return CaloFit(*(float(v) for v in popt), *(float(v) for v in perr))


def binned_width(
    x: FloatArray, res: FloatArray, edges: FloatArray, min_count: int = 20
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Resolution profile: per bin of `x`, (centers, half_width_68, its error, counts).

    Error of the width ~ width / sqrt(2 (n - 1)) (Gaussian approximation); bins with fewer than
    `min_count` entries give NaN."""
    x, res = np.asarray(x, np.float64), np.asarray(res, np.float64)
    idx = np.digitize(x, edges) - 1
    nb = len(edges) - 1
    widths, errs, counts = np.full(nb, np.nan), np.full(nb, np.nan), np.zeros(nb, np.int64)
    for b in range(nb):
        sel = res[idx == b]
        counts[b] = sel.size
        if sel.size >= min_count:
            widths[b] = half_width_68(sel)
            errs[b] = widths[b] / np.sqrt(2.0 * (sel.size - 1))
    return 0.5 * (edges[1:] + edges[:-1]), widths, errs, counts
