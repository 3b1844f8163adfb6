"""Reconstruction modes of the MAE and the inpainter: npho-only mode (no time loss, metric or
prediction) and learned channel log-variances (value and implied sigma reported)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.model_data import events
from xecdata.geometry import FACE_NAMES, sensor_table
from xecdata.schemes import get_scheme
from xecmodel import create_model
from xecmodel.faces import fill_masked

SCHEME = get_scheme("new@1")
EXACT = {"loss_fn": "mse", "npho_threshold": 0.0, "use_npho_time_weight": False}


def _masked_face_means(err: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(F,) mean of err (B, 4760) over the masked sensors of each face."""
    face = sensor_table().face
    return np.array([err[mask & (face == f)[None]].mean() for f in range(len(FACE_NAMES))])


@pytest.mark.parametrize("kind", ["mae", "inpainter"])
def test_npho_only_loss_is_the_npho_term_and_reports_no_time(kind: str) -> None:
    torch.manual_seed(0)
    model = create_model(kind, "tiny", scheme=SCHEME, mask_ratio=0.5, predict_time=False, **EXACT)
    x = events(SCHEME, 2, seed=6)
    loss, pred, mask = model(x)
    assert pred.shape == (2, 4760, 1)
    err = (pred.detach()[..., 0] - x[..., 0]).square().numpy()
    expected = _masked_face_means(err, mask.numpy())
    assert loss.item() == pytest.approx(expected.sum(), rel=1e-5)
    parts = model.last_losses
    assert parts["loss_npho"].item() == pytest.approx(expected.sum(), rel=1e-5)
    assert parts["loss_top"].item() == pytest.approx(expected[FACE_NAMES.index("top")], rel=1e-5)
    metrics = model.criterion.metrics(pred, x, mask)
    assert not [k for k in (*parts, *metrics) if "time" in k]
    assert {"mae_npho", "rmse_npho", "mae_inner_npho"} <= set(metrics)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_npho_only_fill_keeps_the_time_sentinel() -> None:
    x = events(SCHEME, 2, seed=1)
    mask = torch.zeros(2, 4760, dtype=torch.bool)
    mask[:, [3, 4700]] = True
    pred = torch.full((2, 4760, 1), 0.25)
    filled = fill_masked(x, pred, mask, SCHEME)
    assert torch.equal(filled[~mask], x[~mask])
    assert (filled[mask][:, 0] == 0.25).all()
    assert (filled[mask][:, 1] == SCHEME.time_sentinel).all()
    both = fill_masked(x, torch.full((2, 4760, 2), 0.5), mask, SCHEME)
    assert (both[mask] == 0.5).all()


@pytest.mark.parametrize("predict_time", [True, False])
def test_learned_logvars_weight_the_channels_and_are_reported(predict_time: bool) -> None:
    torch.manual_seed(0)
    mae = create_model(
        "mae", "tiny", scheme=SCHEME, mask_ratio=0.5, learn_channel_logvars=True,
        predict_time=predict_time, **EXACT,
    )  # fmt: skip
    logvars = mae.criterion.logvars
    assert logvars is not None
    with torch.no_grad():
        logvars.copy_(torch.tensor([0.4, -1.0]))
    loss, _, _ = mae(events(SCHEME, 2, seed=2))
    parts = mae.last_losses
    channels = ("npho", "time") if predict_time else ("npho",)
    expected = sum(
        0.5 * math.exp(-s) * parts[f"loss_{ch}"].item() + 0.5 * s
        for ch, s in zip(channels, (0.4, -1.0), strict=False)
    )
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert parts["logvar_npho"].item() == pytest.approx(0.4)
    assert parts["sigma_npho"].item() == pytest.approx(math.exp(0.2))
    if predict_time:
        assert parts["sigma_time"].item() == pytest.approx(math.exp(-0.5))
    else:
        assert "logvar_time" not in parts and "sigma_time" not in parts
    loss.backward()
    assert logvars.grad is not None and logvars.grad[0] != 0
    plain = create_model("mae", "tiny", scheme=SCHEME)
    plain(events(SCHEME, 1))
    assert not [k for k in plain.last_losses if k.startswith(("logvar_", "sigma_"))]


@pytest.mark.parametrize("sqrt_weight", [False, True])
def test_time_loss_skips_sensors_below_the_npho_threshold(sqrt_weight: bool) -> None:
    from xecmodel.recon import ReconstructionLoss

    crit = ReconstructionLoss(
        SCHEME, loss_fn="l1", npho_threshold=200.0, use_npho_time_weight=sqrt_weight
    )
    x = events(SCHEME, 3, seed=8)
    pred = x + torch.randn_like(x) * 0.1
    mask = torch.rand(3, 4760, generator=torch.Generator().manual_seed(1)) < 0.5
    crit(pred, x, mask)
    npho, _ = SCHEME.denormalize(x.numpy())
    timed = (x[..., 1] != SCHEME.time_sentinel).numpy()
    w = mask.numpy() & timed & (np.nan_to_num(npho) > 200.0)
    assert 0 < w.sum() < (mask.numpy() & timed).sum()  # the threshold does cut sensors
    weight = np.where(w, np.sqrt(np.nan_to_num(npho)) if sqrt_weight else 1.0, 0.0)
    err = (pred - x).abs().numpy()[..., 1]
    face = sensor_table().face
    faces = [face == f for f in range(len(FACE_NAMES))]
    sums = [((err * weight)[:, on].sum(), weight[:, on].sum()) for on in faces]
    expected = sum(num / den for num, den in sums if den > 0)  # a face with none above adds 0
    assert crit.components()["loss_time"].item() == pytest.approx(expected, rel=1e-5)
