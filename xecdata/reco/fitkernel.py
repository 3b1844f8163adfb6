"""The Poisson point-source fit of the inner-face photon counts (numba, one event at a time).

Model: mu_s = N0 * Omega_s(x) / (4 pi) * exp(-|x - p_s| / L) for the window's sensors s at
p_s (``xecdata.reco.lightmodel``, the simulator's light model), x = x(u, v, w), L the
attenuation length of the direct light (the calibration's ``attenuation_length_cm``: the
simulator's Rayleigh length, ``xecdata.reco.position.ATTENUATION_LENGTH``; none for
calibrations that do not name one). The scattered and reflected light, diffuse, is not in the
model. The negative log-likelihood
sum(mu - n ln mu) is minimised over p = (u, v, w, N0) by Levenberg-Marquardt steps on the
Fisher information sum(J J^T / mu) (Fisher scoring, the Gauss-Newton form of the Poisson
likelihood: K. Levenberg, Q. Appl. Math. 2 (1944) 164; D. W. Marquardt, J. SIAM 11 (1963)
431), damping lambda times the diagonal; a step is kept only when the likelihood improves.
Photon counts are the input's npho (photons); their Poisson scale (photoelectrons = npho *
efficiency) is one factor for all MPPCs and does not move the optimum.

The start is the centroid (u, v) at the best depth of ``START_DEPTHS`` with N0 at its
likelihood optimum, sum(n) / sum(Omega / 4 pi); a fit moves at most within ``BOUNDS``.
"""

from __future__ import annotations

import numba
import numpy as np

from xecdata.geometry import R_INNER
from xecdata.reco.lightmodel import _JIT, exact_fraction, multipole_fraction

START_DEPTHS = np.array([1.0, 4.0, 12.0])  # cm
BOUNDS = np.array([[-45.0, 45.0], [-80.0, 80.0], [0.02, 45.0]])  # u, v, w (cm)
MAX_STEPS = 30
STEP_TOL = 2e-4  # cm: converged when a step moves less
MU_FLOOR = 1.0  # photons: keeps ln mu finite behind a sensor plane


@numba.njit(**_JIT)
def attenuated(
    f: float, g0: float, g1: float, g2: float, d0: float, d1: float, d2: float, r2: float,
    inv_len: float,
) -> tuple[float, float, float, float]:  # fmt: skip
    """f exp(-r / L) and its gradient from f and its gradient (g0, g1, g2) at offset d from
    the sensor (|d|^2 = r2): d/dx [f a] = a (grad f - f d / (r L)), a = exp(-r / L)."""
    r = np.sqrt(r2)
    a = np.exp(-r * inv_len)
    k = f * inv_len / r
    return f * a, a * (g0 - k * d0), a * (g1 - k * d1), a * (g2 - k * d2)


@numba.njit(**_JIT)
def fractions(
    p: np.ndarray, ids: np.ndarray, k: int, frame: np.ndarray, consts: np.ndarray,
    f: np.ndarray, grad: np.ndarray, inv_len: float,
) -> None:  # fmt: skip
    """Omega_s / (4 pi) exp(-r_s / L) at p = (u, v, w) of the k window sensors into f (K,)
    and its gradient with respect to (u, v, w) into grad (K, 3); inv_len = 1 / L (0: no
    attenuation). The multipole loop runs first; the few sensors within the exact-formula
    radius are redone after it (a tight loop without the exact code in its body is twice as
    fast)."""
    phi, r = p[1] / R_INNER, p[2] + R_INNER
    c, sn = np.cos(phi), np.sin(phi)
    x0, x1, x2 = -r * c, r * sn, p[0]
    dv0, dv1 = r / R_INNER * sn, r / R_INNER * c  # dx/dv; dx/du = (0, 0, 1), dx/dw = (-c, sn, 0)
    n_close = 0
    close = np.empty(k, np.int64)
    for q in range(k):
        s = ids[q]
        d0, d1, d2 = x0 - frame[s, 0], x1 - frame[s, 1], x2 - frame[s, 2]
        n = (frame[s, 9], frame[s, 10], frame[s, 11])
        h = d0 * n[0] + d1 * n[1] + d2 * n[2]
        r2 = d0 * d0 + d1 * d1 + d2 * d2
        g0, g1, g2 = 0.0, 0.0, 0.0
        if h <= 0.0:
            f[q] = 0.0
        elif r2 < consts[s, 2]:
            close[n_close] = q
            n_close += 1
        else:
            f[q], g0, g1, g2 = multipole_fraction(d0, d1, d2, h, r2, n, consts[s, 0], consts[s, 1])
            if inv_len > 0.0:
                f[q], g0, g1, g2 = attenuated(f[q], g0, g1, g2, d0, d1, d2, r2, inv_len)
        grad[q, 0], grad[q, 1], grad[q, 2] = g2, g0 * dv0 + g1 * dv1, -g0 * c + g1 * sn
    for m in range(n_close):
        q = close[m]
        s = ids[q]
        d0, d1, d2 = x0 - frame[s, 0], x1 - frame[s, 1], x2 - frame[s, 2]
        h = d0 * frame[s, 9] + d1 * frame[s, 10] + d2 * frame[s, 11]
        f[q], g0, g1, g2 = exact_fraction(d0, d1, d2, h, s, frame)
        if inv_len > 0.0:
            r2 = d0 * d0 + d1 * d1 + d2 * d2
            f[q], g0, g1, g2 = attenuated(f[q], g0, g1, g2, d0, d1, d2, r2, inv_len)
        grad[q, 0], grad[q, 1], grad[q, 2] = g2, g0 * dv0 + g1 * dv1, -g0 * c + g1 * sn


@numba.njit(**_JIT)
def _evaluate(
    p: np.ndarray, ids: np.ndarray, n: np.ndarray, k: int, frame: np.ndarray,
    consts: np.ndarray, fisher: np.ndarray, score: np.ndarray, f: np.ndarray, grad: np.ndarray,
    inv_len: float,
) -> float:  # fmt: skip
    """Poisson NLL sum(mu - n ln mu) at p = (u, v, w, N0) over the k window sensors; writes the
    Fisher matrix sum(J J^T / mu) (4, 4) and the score sum(J (n - mu) / mu) (4,)."""
    fractions(p, ids, k, frame, consts, f, grad, inv_len)
    fisher[:] = 0.0
    score[:] = 0.0
    nll = 0.0
    row = np.empty(4)
    for q in range(k):
        mu = max(p[3] * f[q], MU_FLOOR)
        row[0], row[1], row[2] = p[3] * grad[q, 0], p[3] * grad[q, 1], p[3] * grad[q, 2]
        row[3] = f[q]
        nll += mu - n[q] * np.log(mu)
        w, r = 1.0 / mu, (n[q] - mu) / mu
        for a in range(4):
            score[a] += row[a] * r
            for b in range(a + 1):
                fisher[a, b] += row[a] * row[b] * w
    for a in range(4):
        for b in range(a):
            fisher[b, a] = fisher[a, b]
    return nll


@numba.njit(**_JIT)
def _solve4(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> bool:
    """Solve the 4 x 4 system a x = b (Gaussian elimination, partial pivoting) into out."""
    m = np.empty((4, 5))
    m[:, :4], m[:, 4] = a, b
    for c in range(4):
        piv = c + np.argmax(np.abs(m[c:, c]))
        if m[piv, c] == 0.0:
            return False
        if piv != c:
            tmp = m[c].copy()
            m[c], m[piv] = m[piv], tmp
        for r in range(c + 1, 4):
            m[r] -= m[r, c] / m[c, c] * m[c]
    for c in range(3, -1, -1):
        out[c] = (m[c, 4] - np.dot(m[c, c + 1 : 4], out[c + 1 : 4])) / m[c, c]
    return True


@numba.njit(**_JIT)
def start_point(
    uv0: np.ndarray, ids: np.ndarray, n: np.ndarray, k: int, frame: np.ndarray,
    consts: np.ndarray, f: np.ndarray, grad: np.ndarray, inv_len: float,
) -> np.ndarray:  # fmt: skip
    """(u, v, w, N0): the centroid at the start depth of lowest NLL, N0 at its optimum."""
    p, best = np.empty(4), np.empty(4)
    p[0], p[1] = uv0[0], uv0[1]
    total, best_nll = n[:k].sum(), np.inf
    for w in START_DEPTHS:
        p[2] = w
        fractions(p, ids, k, frame, consts, f, grad, inv_len)
        p[3] = total / max(f[:k].sum(), 1e-30)
        mu = np.maximum(p[3] * f[:k], MU_FLOOR)
        nll = np.sum(mu - n[:k] * np.log(mu))
        if nll < best_nll:
            best_nll, best[:] = nll, p
    return best


@numba.njit(**_JIT)
def levenberg_marquardt(
    p: np.ndarray, ids: np.ndarray, n: np.ndarray, k: int, frame: np.ndarray,
    consts: np.ndarray, f: np.ndarray, grad: np.ndarray, inv_len: float,
) -> int:  # fmt: skip
    """Minimise the NLL from p (updated in place); the number of evaluations, or -1 if no
    finite optimum was reached."""
    fisher, score = np.empty((4, 4)), np.empty(4)
    f_try, s_try, step, trial = np.empty((4, 4)), np.empty(4), np.empty(4), np.empty(4)
    nll = _evaluate(p, ids, n, k, frame, consts, fisher, score, f, grad, inv_len)
    lam, evals = 1e-3, 1
    for _ in range(MAX_STEPS):
        damped = fisher.copy()
        for a in range(4):
            damped[a, a] *= 1.0 + lam
        if not _solve4(damped, score, step):
            return -1
        trial[:] = p + step
        for c in range(3):
            trial[c] = min(max(trial[c], BOUNDS[c, 0]), BOUNDS[c, 1])
        trial[3] = max(trial[3], 1e-3 * p[3])
        nll_try = _evaluate(trial, ids, n, k, frame, consts, f_try, s_try, f, grad, inv_len)
        evals += 1
        if nll_try <= nll:
            moved = np.abs(trial[:3] - p[:3]).max()
            p[:], nll, lam = trial, nll_try, max(lam / 4.0, 1e-7)
            fisher[:], score[:] = f_try, s_try
            if moved < STEP_TOL:
                break
        else:
            lam *= 8.0
            if lam > 1e8:
                break
    ok = np.isfinite(nll) and np.all(np.isfinite(p)) and p[3] > 0
    return evals if ok else -1
