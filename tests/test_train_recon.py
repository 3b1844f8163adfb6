"""MAE / inpainter runs end to end in npho-only mode and with learned channel log-variances:
the metrics logged, the ROOT prediction files (masked model input, no time branches)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import uproot
from mlflow.tracking import MlflowClient

from tests.trainhelpers import tiny_config, toy_loaders
from xecdata.geometry import N_SENSORS
from xecdata.schemes import get_scheme
from xectrain.artifacts import read_metadata
from xectrain.checkpoint import load_checkpoint
from xectrain.evaluation.recon_metrics import MaskedErrorAccumulator
from xectrain.run.fit import train

SCHEME = get_scheme("new@1")
TIME_KEYS = ("loss_time", "mae_time", "rmse_time", "_time")


def _run(kind: str, tmp_path: Path, *overrides: str):  # type: ignore[no-untyped-def]
    loaders = toy_loaders(16, 8)
    cfg = tiny_config(kind, tmp_path, "training.epochs=1", "checkpoint.save_artifacts=true",
                      f"tracking.run_name={kind}", *overrides)  # fmt: skip
    return cfg, loaders, train(cfg, loaders)


def test_mae_npho_only_with_learned_logvars(tmp_path: Path) -> None:
    cfg, loaders, res = _run(
        "mae", tmp_path, "recon.predict_time=false", "recon.learn_channel_logvars=true"
    )
    logged = MlflowClient(tracking_uri=cfg.tracking.uri).get_run(res.mlflow_run_id).data.metrics
    assert {"train/loss_npho", "val/loss_npho", "val/mae_npho", "val/rmse_npho"} <= set(logged)
    assert not [k for k in logged if k.endswith(TIME_KEYS)]
    # the validated (EMA) model's learned log-variance and the sigma it implies
    ema = load_checkpoint(res.run_dir / "checkpoint_last.pth")["ema"]["model"]
    s = ema["criterion.logvars"][0].item()
    assert logged["val/logvar_npho"] == pytest.approx(s, abs=1e-6)
    assert logged["val/sigma_npho"] == pytest.approx(math.exp(0.5 * s), rel=1e-6)
    assert "train/sigma_npho" in logged and "val/sigma_time" not in logged

    root = res.run_dir / "mae_predictions_epoch_001.root"
    with uproot.open(root) as f:
        tree = f["predictions"]
        names = tree.keys()
        assert not [k for k in names if k.endswith("_time") and k != "masked_time"]
        arrays = tree.arrays(["event_idx", "mask", "masked_npho", "masked_time"], library="np")
    assert read_metadata(root)["predict_channels"] == "npho"
    x = loaders.val.sensors[arrays["event_idx"] - 10_000].numpy()  # (8, 4760, 2) model input
    mask = arrays["mask"]
    assert 0 < mask.sum() < mask.size
    for c, name in enumerate(("masked_npho", "masked_time")):
        sentinel = (SCHEME.npho_sentinel, SCHEME.time_sentinel)[c]
        np.testing.assert_array_equal(arrays[name], np.where(mask, sentinel, x[..., c]))


def test_inpainter_npho_only_files_and_metrics(tmp_path: Path) -> None:
    _, _, res = _run(
        "inpainter",
        tmp_path,
        "recon.predict_time=false",
        "model.mask_ratio=0.1",
        "tracking.enabled=false",
    )
    assert {"val/loss_npho", "val/mae_npho", "train/total_loss"} <= set(res.metrics)
    assert not [k for k in res.metrics if k.endswith(TIME_KEYS)]
    with uproot.open(res.run_dir / "inpainter_predictions_epoch_001.root") as f:
        branches = set(f["predictions"].keys())
    assert {"sensor_id", "face", "truth_npho", "pred_npho", "error_npho"} <= branches
    assert not [b for b in branches if "time" in b]


def test_accumulator_scores_only_the_predicted_channels() -> None:
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(2, N_SENSORS, 2))
    pred = truth + np.array([0.5, 2.0])
    mask = np.zeros((2, N_SENSORS), bool)
    mask[:, :10] = True
    both, npho = MaskedErrorAccumulator(loss="l1"), MaskedErrorAccumulator("l1", channels=["npho"])
    for acc in (both, npho):
        acc.update(pred, truth, mask)
    assert both.compute()["rmse_time"] == pytest.approx(2.0)
    got = npho.compute()
    assert got["mae_npho"] == pytest.approx(0.5) and got["loss_inner"] == pytest.approx(0.5)
    assert not [k for k in got if "time" in k]
    with pytest.raises(ValueError, match="npho"):
        MaskedErrorAccumulator(channels=["time"])


def test_mae_file_keeps_the_masked_input_with_both_channels(tmp_path: Path) -> None:
    _, loaders, res = _run("mae", tmp_path, "tracking.enabled=false")
    with uproot.open(res.run_dir / "mae_predictions_epoch_001.root") as f:
        arrays = f["predictions"].arrays(library="np")
    for name in ("truth_time", "pred_time", "err_time", "masked_npho", "masked_time"):
        assert arrays[name].shape == (8, N_SENSORS), name
    x = loaders.val.sensors[arrays["event_idx"] - 10_000]
    masked = torch.from_numpy(np.stack([arrays["masked_npho"], arrays["masked_time"]], -1))
    visible = ~torch.from_numpy(arrays["mask"])
    assert torch.equal(masked[visible], x[visible])
    assert (masked[~visible] == torch.tensor([SCHEME.npho_sentinel, SCHEME.time_sentinel])).all()
