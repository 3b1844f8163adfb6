"""Reconstruction loss of the MAE and the inpainter: masked sensors only, per face and channel.

For face f and channel c (npho, time) with per-sensor weights W:

    L_f,c = sum_(b, n in f) W l(pred, target) / sum_(b, n in f) W

W_npho = mask; W_time = mask * (target time valid) * (npho > npho_threshold photons)
* sqrt(npho) if use_npho_time_weight. Channel losses are summed over faces; the total is
w_npho L_npho + w_time L_time, or with learn_channel_logvars (homoscedastic weighting)
sum_c 0.5 exp(-s_c) L_c + 0.5 s_c with learned s_c = log sigma_c^2.

The channels are those of `pred`: (B, 4760, 1) is npho-only mode, where no time weight, loss
or metric is computed and no time key is reported.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xecdata.geometry import FACE_NAMES, sensor_table
from xecdata.schemes import Scheme

RECON_LOSSES = ("mse", "l1", "smooth_l1", "huber")
CHANNELS = ("npho", "time")


def elementwise_loss(
    name: str, pred: torch.Tensor, target: torch.Tensor, beta: float
) -> torch.Tensor:
    """Unreduced reconstruction loss; raises listing the valid names."""
    if name == "mse":
        return F.mse_loss(pred, target, reduction="none")
    if name == "l1":
        return F.l1_loss(pred, target, reduction="none")
    if name == "smooth_l1":
        return F.smooth_l1_loss(pred, target, reduction="none", beta=beta)
    if name == "huber":
        return F.huber_loss(pred, target, reduction="none", delta=beta)
    raise ValueError(f"unknown reconstruction loss {name!r}; choose one of {RECON_LOSSES}")


class ReconstructionLoss(nn.Module):
    """(pred (B, 4760, C), target (B, 4760, 2), mask (B, 4760)) -> total; parts in `last`."""

    channel_weight: torch.Tensor
    face_onehot: torch.Tensor

    def __init__(
        self,
        scheme: Scheme,
        loss_fn: str = "smooth_l1",
        loss_beta: float = 1.0,
        npho_weight: float = 1.0,
        time_weight: float = 1.0,
        npho_threshold: float = 100.0,
        use_npho_time_weight: bool = True,
        learn_channel_logvars: bool = False,
    ) -> None:
        super().__init__()
        elementwise_loss(loss_fn, torch.zeros(1), torch.zeros(1), loss_beta)  # validate name
        self.scheme, self.loss_fn, self.loss_beta = scheme, loss_fn, loss_beta
        self.npho_threshold, self.use_npho_time_weight = npho_threshold, use_npho_time_weight
        self.register_buffer("channel_weight", torch.tensor([npho_weight, time_weight]))
        onehot = np.eye(len(FACE_NAMES), dtype=np.float32)[sensor_table().face]  # (4760, F)
        self.register_buffer("face_onehot", torch.from_numpy(onehot), persistent=False)
        self.logvars = nn.Parameter(torch.zeros(2)) if learn_channel_logvars else None
        self.last: dict[str, torch.Tensor] = {}

    def weights(self, target: torch.Tensor, mask: torch.Tensor, n_ch: int = 2) -> torch.Tensor:
        """(B, 4760, n_ch) per-sensor weights of the npho (and time) losses."""
        s = self.scheme
        m = mask.to(target.dtype)
        if n_ch == 1:
            return m.unsqueeze(-1)
        npho = s.transform.inverse_torch(target[..., 0], s.npho_scale, s.npho_scale2)
        ok = (target[..., 1] != s.time_sentinel) & (npho > self.npho_threshold)
        w_time = m * ok.to(m.dtype)
        if self.use_npho_time_weight:
            w_time = w_time * npho.clamp_min(0.0).sqrt()
        return torch.stack((m, w_time), dim=-1)

    def forward(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        n_ch = pred.shape[-1]  # 1 (npho only) or 2
        w = self.weights(target, mask, n_ch)  # (B, N, C)
        err = elementwise_loss(self.loss_fn, pred.float(), target[..., :n_ch], self.loss_beta)
        num, den = self._face_sum(err * w), self._face_sum(w)  # (F, C) each
        per_face = num / den.clamp_min(1e-12)  # (F, C); 0 where a face has nothing masked
        per_channel = per_face.sum(dim=0)  # (C,)
        if self.logvars is None:
            total = (self.channel_weight[:n_ch] * per_channel).sum()
        else:
            s = self.logvars[:n_ch]
            total = (0.5 * torch.exp(-s) * per_channel + 0.5 * s).sum()
        self.last = {"total": total.detach(), "per_face": per_face.detach()}
        return total

    def _face_sum(self, v: torch.Tensor) -> torch.Tensor:
        """(B, N, C) -> (F, C) sums per face, in fp32 (elementwise: autocast leaves it alone)."""
        per_sensor = v.float().sum(dim=0)  # (N, C)
        return (per_sensor.unsqueeze(1) * self.face_onehot.unsqueeze(-1)).sum(dim=0)

    @torch.no_grad()
    def metrics(
        self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """MAE / RMSE in normalized units on masked sensors (time: where its target is valid):
        mae_{ch}, rmse_{ch} over all faces and mae_{face}_{ch}, rmse_{face}_{ch}."""
        n_ch = pred.shape[-1]
        m = mask.to(torch.float32)
        timed = (target[..., 1] != self.scheme.time_sentinel).to(torch.float32)
        w = torch.stack((m, m * timed), dim=-1)[..., :n_ch]  # (B, N, C)
        err = pred.float() - target[..., :n_ch]
        count = self._face_sum(w)  # (F, C)
        abs_sum, sq_sum = self._face_sum(err.abs() * w), self._face_sum(err.square() * w)
        out: dict[str, torch.Tensor] = {}
        for c, ch in enumerate(CHANNELS[:n_ch]):
            n = count[:, c].sum().clamp_min(1.0)
            out[f"mae_{ch}"] = abs_sum[:, c].sum() / n
            out[f"rmse_{ch}"] = (sq_sum[:, c].sum() / n).sqrt()
            for f, face in enumerate(FACE_NAMES):
                nf = count[f, c].clamp_min(1.0)
                out[f"mae_{face}_{ch}"] = abs_sum[f, c] / nf
                out[f"rmse_{face}_{ch}"] = (sq_sum[f, c] / nf).sqrt()
        return out

    def components(self) -> dict[str, torch.Tensor]:
        """Named 0-dim tensors of the last call: loss_{face}_{ch}, loss_{face}, loss_{ch}, and
        with learned log-variances logvar_{ch} = s_c and sigma_{ch} = exp(s_c / 2)."""
        if not self.last:
            return {}
        per_face = self.last["per_face"]
        n_ch = per_face.shape[1]
        out = {"total_loss": self.last["total"]}
        for c, ch in enumerate(CHANNELS[:n_ch]):
            out[f"loss_{ch}"] = per_face[:, c].sum()
            for f, face in enumerate(FACE_NAMES):
                out[f"loss_{face}_{ch}"] = per_face[f, c]
        for f, face in enumerate(FACE_NAMES):
            out[f"loss_{face}"] = per_face[f].sum()
        return out | self.channel_logvars(n_ch)

    def channel_logvars(self, n_ch: int = 2) -> dict[str, torch.Tensor]:
        """logvar_{ch} and sigma_{ch} (0-dim, detached) of the learned channel weighting;
        empty without learn_channel_logvars. Only the first n_ch channels are reported."""
        if self.logvars is None:
            return {}
        s = self.logvars.detach()[:n_ch]
        out: dict[str, torch.Tensor] = {}
        for c, ch in enumerate(CHANNELS[:n_ch]):
            out[f"logvar_{ch}"] = s[c]
            out[f"sigma_{ch}"] = torch.exp(0.5 * s[c])
        return out
