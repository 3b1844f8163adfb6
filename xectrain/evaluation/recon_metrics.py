"""MAE / inpainter reconstruction metrics, accumulated batch by batch (bounded memory).

Only masked sensors count (the loss positions); for the time channel only sensors whose true
time is valid. Per face and channel the accumulator keeps a few sums, so a validation of any
size costs O(faces x channels) memory and DDP ranks can sum their `sums` before `compute()`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xecdata.geometry import FACE_NAMES, N_SENSORS, sensor_table

CHANNELS: tuple[str, ...] = ("npho", "time")
# rows of `sums`: count, sum |err|, sum err^2, sum element loss
_COUNT, _ABS, _SQ, _LOSS = range(4)


def element_loss(err: np.ndarray, kind: str, beta: float = 1.0) -> np.ndarray:
    """Element-wise loss of prediction errors: mse, l1, smooth_l1 (beta) or huber (delta=beta)."""
    a = np.abs(err)
    if kind == "mse":
        return err**2
    if kind == "l1":
        return a
    if kind == "smooth_l1":
        return np.where(a < beta, 0.5 * err**2 / beta, a - 0.5 * beta)
    if kind == "huber":
        return np.where(a < beta, 0.5 * err**2, beta * (a - 0.5 * beta))
    raise ValueError(f"loss {kind!r} is not one of mse, l1, smooth_l1, huber")


class MaskedErrorAccumulator:
    """Sums of |err|, err^2 and an element loss per (face, channel) over masked sensors.

    `update(pred, truth, mask, time_valid)` with (B, 4760, 2) arrays and (B, 4760) bool masks;
    `compute()` gives mae_/rmse_ per channel and per face (and loss_ when `loss` is set) of
    `channels` only: ("npho",) in npho-only mode, where the time channel is never scored.
    """

    def __init__(
        self, loss: str | None = None, beta: float = 1.0, channels: Sequence[str] = CHANNELS
    ) -> None:
        if "npho" not in channels or set(channels) - set(CHANNELS):
            raise ValueError(f"channels {list(channels)}: use ('npho',) or ('npho', 'time')")
        self.loss, self.beta = loss, beta
        self.n_ch = 1 if "time" not in channels else 2  # npho is always predicted
        self.face = sensor_table().face.astype(np.int64)  # (4760,) face code per sensor
        self.sums = np.zeros((4, len(FACE_NAMES), len(CHANNELS)), dtype=np.float64)
        self.n_masked = 0
        self.n_valid = 0

    def update(
        self,
        pred: np.ndarray,
        truth: np.ndarray,
        mask: np.ndarray,
        time_valid: np.ndarray | None = None,
        valid: np.ndarray | None = None,
    ) -> None:
        """Add one batch; `valid` (B, 4760) marks sensors that could be masked (mask ratio)."""
        pred = np.asarray(pred, np.float64).reshape(-1, N_SENSORS, 2)
        truth = np.asarray(truth, np.float64).reshape(-1, N_SENSORS, 2)
        mask = np.asarray(mask, bool).reshape(-1, N_SENSORS)
        weights = [mask, mask if time_valid is None else mask & np.asarray(time_valid, bool)]
        nface = len(FACE_NAMES)
        for c, w in enumerate(weights[: self.n_ch]):
            err = np.where(w, pred[..., c] - truth[..., c], 0.0)  # (B, 4760)
            per_sensor = [w.sum(0), np.abs(err).sum(0), (err**2).sum(0)]
            if self.loss is not None:
                per_sensor.append((element_loss(err, self.loss, self.beta) * w).sum(0))
            for row, values in enumerate(per_sensor):
                self.sums[row, :, c] += np.bincount(self.face, weights=values, minlength=nface)
        self.n_masked += int(mask.sum())
        if valid is not None:
            self.n_valid += int(np.asarray(valid, bool).sum())

    def compute(self) -> dict[str, float]:
        """Metrics so far; faces or channels without masked sensors are left out."""
        count, sabs, ssq, sloss = self.sums
        out: dict[str, float] = {"n_masked_total": float(self.n_masked)}
        if self.n_valid:
            out["actual_mask_ratio"] = self.n_masked / self.n_valid
        for c, ch in enumerate(CHANNELS):
            n = count[:, c].sum()
            if n == 0:
                continue
            out[f"mae_{ch}"] = float(sabs[:, c].sum() / n)
            out[f"rmse_{ch}"] = float(np.sqrt(ssq[:, c].sum() / n))
            for f, face in enumerate(FACE_NAMES):
                if count[f, c] == 0:
                    continue
                out[f"mae_{face}_{ch}"] = float(sabs[f, c] / count[f, c])
                out[f"rmse_{face}_{ch}"] = float(np.sqrt(ssq[f, c] / count[f, c]))
        if self.loss is not None:
            out |= self._losses(count, sloss)
        return out

    def _losses(self, count: np.ndarray, sloss: np.ndarray) -> dict[str, float]:
        """Per-face mean losses; channel and total losses are sums over faces (as in training)."""
        mean = np.divide(sloss, count, out=np.zeros_like(sloss), where=count > 0)  # (faces, ch)
        out = {}
        for c, ch in enumerate(CHANNELS):
            if count[:, c].sum() == 0:
                continue
            out[f"loss_{ch}"] = float(mean[:, c].sum())
            for f, face in enumerate(FACE_NAMES):
                if count[f, c] > 0:
                    out[f"loss_{face}_{ch}"] = float(mean[f, c])
        for f, face in enumerate(FACE_NAMES):
            if count[f].sum() > 0:
                out[f"loss_{face}"] = float(mean[f].sum())
        return out


def actual_mask_ratio(mask: np.ndarray, valid: np.ndarray) -> float:
    """Masked sensors / sensors that were valid before masking (already-dead ones excluded)."""
    n_valid = int(np.asarray(valid, bool).sum())
    return float(np.asarray(mask, bool).sum() / n_valid) if n_valid else 0.0
