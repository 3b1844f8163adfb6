"""Device-side augmentations: sentinels for dropout, physical-unit noise/jitter/scaling,
invalid channels untouched, identity when off, seeded."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.rootfiles import fake_events
from xecdata.loaders.augment import AugmentConfig, Augmenter
from xecdata.schemes import get_scheme

SCHEME = get_scheme("new@1")


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    ev = fake_events(8, seed=5)
    x = torch.from_numpy(SCHEME.normalize(ev["npho"], ev["relative_time"]))  # (8, 4760, 2)
    return x, {"energyTruth": torch.from_numpy(ev["energyTruth"].copy())}


def run(cfg: AugmentConfig, batch: tuple, index: int = 0) -> tuple[torch.Tensor, dict]:
    x, t = batch[0].clone(), {k: v.clone() for k, v in batch[1].items()}
    aug = Augmenter(cfg, SCHEME, torch.device("cpu"))
    aug.reseed(seed=1, epoch=0, rank=0, batch=index)
    aug(x, t)
    return x, t


def test_off_is_identity(batch: tuple) -> None:
    assert not AugmentConfig().active
    x, t = run(AugmentConfig(), batch)
    assert torch.equal(x, batch[0]) and torch.equal(t["energyTruth"], batch[1]["energyTruth"])


def test_channel_dropout_writes_sentinels_in_both_channels(batch: tuple) -> None:
    x, _ = run(AugmentConfig(channel_dropout=0.3), batch)
    x0 = batch[0]
    changed = (x != x0).any(-1)  # (B, S)
    dropped = (x[..., 0] == SCHEME.npho_sentinel) & (x[..., 1] == SCHEME.time_sentinel)
    was_dead = (x0[..., 0] == SCHEME.npho_sentinel) & (x0[..., 1] == SCHEME.time_sentinel)
    assert changed.any() and bool((dropped | ~changed).all())  # every change is a drop
    assert not (x == 0).all(-1)[changed].any()  # never zeroed
    frac = (dropped & ~was_dead).float().mean().item() / (~was_dead).float().mean().item()
    assert 0.27 < frac < 0.33


def test_npho_noise_is_poisson_like_in_photons_and_spares_invalid(batch: tuple) -> None:
    x, _ = run(AugmentConfig(npho_noise=1.0), batch)
    x0 = batch[0]
    dead = x0[..., 0] == SCHEME.npho_sentinel
    assert torch.equal(x[dead], x0[dead]) and torch.equal(x[..., 1], x0[..., 1])
    n0, _ = SCHEME.denormalize(x0.numpy())
    n1, _ = SCHEME.denormalize(x.numpy())
    big = np.nan_to_num(n0) > 200
    pull = (n1[big] - n0[big]) / np.sqrt(n0[big])
    assert abs(pull.std() - 1.0) < 0.05 and abs(pull.mean()) < 0.05


def test_time_jitter_in_picoseconds_on_valid_times_only(batch: tuple) -> None:
    x, _ = run(AugmentConfig(time_jitter_ps=50.0), batch)
    x0 = batch[0]
    invalid = x0[..., 1] == SCHEME.time_sentinel
    assert torch.equal(x[..., 1][invalid], x0[..., 1][invalid])
    assert torch.equal(x[..., 0], x0[..., 0])
    _, t0 = SCHEME.denormalize(x0.numpy())
    _, t1 = SCHEME.denormalize(x.numpy())
    d = (t1 - t0)[~invalid.numpy()] * 1e12
    assert abs(d.std() - 50.0) < 2.0


def test_energy_scaling_moves_npho_and_energy_together(batch: tuple) -> None:
    x, t = run(AugmentConfig(energy_scale=0.05), batch)
    k = (t["energyTruth"] / batch[1]["energyTruth"]).numpy()
    assert np.abs(k - 1).max() > 1e-3
    n0, _ = SCHEME.denormalize(batch[0].numpy())
    n1, _ = SCHEME.denormalize(x.numpy())
    for i in range(len(k)):
        big = np.nan_to_num(n0[i]) > 100
        np.testing.assert_allclose(n1[i][big] / n0[i][big], k[i], rtol=2e-3)


def test_seeded_per_batch_and_bf16(batch: tuple) -> None:
    cfg = AugmentConfig(channel_dropout=0.1, npho_noise=0.5, time_jitter_ps=30)
    a, b, c = run(cfg, batch, 3), run(cfg, batch, 3), run(cfg, batch, 4)
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], c[0])
    x = batch[0].to(torch.bfloat16)
    aug = Augmenter(cfg, SCHEME, torch.device("cpu"))
    aug.reseed(1, 0, 0, 3)
    aug(x, {})
    ref = run(cfg, (batch[0].to(torch.bfloat16).float(), batch[1]), 3)[0]  # same, in float32
    assert x.dtype == torch.bfloat16 and torch.equal(x, ref.to(torch.bfloat16))
