"""Physics sanity: a short regressor training on simulated events beats predicting the
training mean by a wide margin (slow: minutes on a CPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from xec_cli.main import main
from xectrain.artifacts import read_predictions_csv
from xectrain.artifacts.csvio import task_arrays
from xectrain.config import load_config
from xectrain.evaluation.metrics import half_width_68
from xectrain.run.fit import train

ENERGY_FACTOR = 4.0  # 68 % half-width of the energy residual 4x narrower (measured 6.4x)
POSITION_FACTOR = 5.0  # 68 % distance to the first interaction 5x shorter (measured 9.2x)


@pytest.mark.slow
def test_short_training_beats_the_mean(tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(
        main,
        [
            "simulate",
            "-n",
            "4000",
            "-o",
            str(tmp_path / "sim"),
            "--events-per-file",
            "2000",
            "--energy",
            "flat",
            "--seed",
            "5",
        ],
    )
    assert out.exit_code == 0, out.output
    store = tmp_path / "store.xec.zarr"
    out = runner.invoke(
        main,
        [
            "ingest",
            str(tmp_path / "sim"),
            "-o",
            str(store),
            "--quiet",
            "--chunk-events",
            "128",
            "--val-fraction",
            "0.15",
        ],
    )
    assert out.exit_code == 0, out.output
    cfg = load_config("regressor", overrides=[
        f"data.store={store}", f"checkpoint.dir={tmp_path}", "tracking.enabled=false",
        "tracking.run_name=phys", "training.device=cpu", "training.epochs=6",
        "data.batch_size=32", "training.lr=2e-3", "training.warmup_epochs=0.5",
        "training.ema_warmup_steps=50", "tasks.angle.enabled=false",
        "tasks.energy.enabled=true", "tasks.uvwFI.enabled=true", "checkpoint.worst_events=0",
    ])  # fmt: skip
    res = train(cfg)
    _, cols = read_predictions_csv(res.run_dir / "predictions_energy_phys.csv")
    true, pred = task_arrays(cols, "energy")
    mean_energy = true.mean()  # stands in for the training mean (same flat spectrum)
    assert half_width_68(pred - true) * ENERGY_FACTOR < half_width_68(mean_energy - true)
    _, cols = read_predictions_csv(res.run_dir / "predictions_uvwFI_phys.csv")
    true, pred = task_arrays(cols, "uvwFI")
    dist = np.percentile(np.linalg.norm(pred - true, axis=1), 68)
    dist_mean = np.percentile(np.linalg.norm(true.mean(axis=0) - true, axis=1), 68)
    assert dist * POSITION_FACTOR < dist_mean
