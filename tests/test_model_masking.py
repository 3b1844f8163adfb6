"""Masks: invalid-aware selection, no leakage through the encoder, losses on masked sensors only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.model_data import events
from xecdata.geometry import FACE_NAMES, sensor_table
from xecdata.schemes import get_scheme
from xecmodel import create_model
from xecmodel.masking import actual_mask_ratio, already_invalid, random_mask

SCHEME = get_scheme("new@1")


@pytest.mark.parametrize("pool", ["valid_time", "valid_npho"])
def test_random_mask_never_masks_invalid_sensors_and_hits_the_ratio(pool: str) -> None:
    x = events(SCHEME, 4, seed=3)
    mask = random_mask(x, SCHEME, 0.6, pool=pool, generator=torch.Generator().manual_seed(0))
    invalid = already_invalid(x, SCHEME, pool)
    assert not (mask & invalid).any()
    candidates = (~invalid).sum(1)
    assert mask.sum(1).tolist() == (candidates * 0.6).floor().long().tolist()
    expected = mask.sum().item() / candidates.sum().item()
    assert actual_mask_ratio(mask, invalid).item() == pytest.approx(expected)
    dark = (x[..., 1] == SCHEME.time_sentinel) & (x[..., 0] != SCHEME.npho_sentinel)
    assert (mask & dark).any() == (pool == "valid_npho")


def test_time_mask_ratio_scale_prefers_sensors_with_a_time() -> None:
    x = events(SCHEME, 4, seed=4)
    timed = x[..., 1] != SCHEME.time_sentinel
    mask = random_mask(x, SCHEME, 0.3, time_mask_ratio_scale=4.0, pool="valid_npho")
    frac_timed = (mask & timed).sum() / timed.sum()
    frac_dark = (mask & ~timed).sum() / (~timed).sum()
    assert frac_timed > 2 * frac_dark
    with pytest.raises(ValueError, match="valid_npho"):
        random_mask(x, SCHEME, 0.3, time_mask_ratio_scale=4.0)


@pytest.mark.parametrize("options", [{}, {"outer_mode": "split", "share_rect_backbone": False}])
def test_masked_inputs_never_reach_the_encoder_output(options: dict) -> None:
    torch.manual_seed(0)
    encoder = create_model("mae", "tiny", scheme=SCHEME, **options).encoder.eval()
    x = events(SCHEME, 2, seed=5)
    mask = random_mask(x, SCHEME, 0.5)
    noise = torch.randn_like(x) * 3.0
    with torch.no_grad():
        ref = encoder.forward_features(x, mask)
        moved = encoder.forward_features(x + noise * mask.unsqueeze(-1), mask)
        unmasked = encoder.forward_features(x + noise * (~mask).unsqueeze(-1), mask)
    torch.testing.assert_close(moved, ref, rtol=0, atol=0)
    assert (unmasked - ref).abs().max() > 1e-3  # visible sensors do matter


def test_mae_loss_is_the_masked_per_face_mean() -> None:
    torch.manual_seed(0)
    mae = create_model(
        "mae",
        "tiny",
        scheme=SCHEME,
        loss_fn="mse",
        mask_ratio=0.5,
        npho_threshold=0.0,
        use_npho_time_weight=False,
    )
    x = events(SCHEME, 2, seed=6)
    loss, pred, mask = mae(x)
    face = sensor_table().face
    expected = 0.0
    err = (pred.detach() - x).square().numpy()
    m = mask.numpy()
    timed = (x[..., 1] != SCHEME.time_sentinel).numpy()
    for f in range(len(FACE_NAMES)):
        sel = m & (face == f)[None]
        expected += err[..., 0][sel].mean() + err[..., 1][sel & timed].mean()
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    parts = mae.last_losses
    assert parts["loss_inner_npho"].item() == pytest.approx(err[..., 0][m & (face == 0)].mean())
    assert parts["actual_mask_ratio"].item() == pytest.approx(0.5, abs=1e-3)
    metrics = mae.criterion.metrics(pred, x, mask)
    sel = m & (face == 3)[None]
    assert metrics["rmse_ds_npho"].item() == pytest.approx(np.sqrt(err[..., 0][sel].mean()))
    assert metrics["mae_time"].item() == pytest.approx(
        np.abs(pred.detach() - x).numpy()[..., 1][m & timed].mean(), rel=1e-5
    )
    (grad,) = torch.autograd.grad(loss, pred)
    assert grad[~mask].abs().max() == 0  # unmasked predictions do not enter the loss


def test_inpainter_freezes_and_loads_an_mae_encoder() -> None:
    torch.manual_seed(0)
    mae = create_model("mae", "tiny", scheme=SCHEME)
    inp = create_model("inpainter", "tiny", scheme=SCHEME, freeze_encoder=True)
    ddp_state = {"module." + k: v for k, v in mae.state_dict().items()}
    inp.load_encoder_state(ddp_state)
    loaded, source = inp.encoder.state_dict(), mae.encoder.state_dict()
    assert all(torch.equal(loaded[k], source[k]) for k in source)
    inp.train()
    assert not inp.encoder.training and inp.heads.training
    loss, pred, mask = inp(events(SCHEME, 2))
    loss.backward()
    assert all(p.grad is None for p in inp.encoder.parameters())
    assert pred.shape == (2, 4760, 2) and 0 < mask.sum() < 2 * 4760 * 0.1
    filled = inp.inpaint(events(SCHEME, 2), mask)
    torch.testing.assert_close(filled[mask], pred.detach()[mask])
    other = create_model("mae", "tiny", scheme=SCHEME, outer_mode="split")
    with pytest.raises(ValueError, match="same size and outer_mode"):
        inp.load_encoder_state(other.state_dict())


def test_regressor_takes_mae_weights() -> None:
    mae = create_model("mae", "tiny", scheme=SCHEME)
    reg = create_model("regressor", "tiny", scheme=SCHEME)
    reg.load_encoder_state({"_orig_mod." + k: v for k, v in mae.state_dict().items()})
    key = "fusion.norm.weight"
    assert torch.equal(reg.encoder.state_dict()[key], mae.encoder.state_dict()[key])
    assert np.isfinite(reg.predict(events(SCHEME, 2))["angle"].detach().numpy()).all()
    frozen = create_model("regressor", "tiny", scheme=SCHEME, freeze_encoder=True, readout_dim=4)
    frozen.train()
    assert not frozen.encoder.training
    out = frozen(events(SCHEME, 2))
    frozen.loss(out, {"angle": torch.zeros(2, 2)})[0].backward()
    assert all(p.grad is None for p in frozen.encoder.parameters())
    assert all(p.grad is not None for p in frozen.heads.parameters())


def test_the_inpainter_masks_with_the_time_preference_too() -> None:
    x = events(SCHEME, 4, seed=5)
    timed = x[..., 1] != SCHEME.time_sentinel
    inp = create_model("inpainter", "tiny", scheme=SCHEME, mask_ratio=0.3, mask_pool="valid_npho",
                       time_mask_ratio_scale=4.0)  # fmt: skip
    torch.manual_seed(0)
    mask = inp.make_mask(x)
    frac_timed = (mask & timed).sum() / timed.sum()
    frac_dark = (mask & ~timed).sum() / (~timed).sum()
    assert frac_timed > 2 * frac_dark
    with pytest.raises(ValueError, match="valid_npho"):
        create_model("inpainter", "tiny", scheme=SCHEME, time_mask_ratio_scale=4.0)
