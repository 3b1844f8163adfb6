"""`xec plots RUN_DIR`: --tasks (comma-separated or repeated), --output-dir, --suffix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from click.testing import CliRunner

from xec_cli.main import main
from xectrain.artifacts import csv_path, write_predictions_csv


def _csvs(run_dir: Path, n: int = 300) -> None:
    rng = np.random.default_rng(0)
    angle = np.stack([rng.uniform(60, 120, n), rng.uniform(-40, 40, n)], 1)
    energy = rng.uniform(0.02, 0.06, (n, 1))
    ids = {"event_index": np.arange(n)}
    for task, true in (("angle", angle), ("energy", energy)):
        pred = true + rng.normal(0, 0.01, true.shape)
        write_predictions_csv(csv_path(run_dir, task, "r1"), task, true, pred, ids)


def test_plots_tasks_output_dir_and_suffix(tmp_path: Path) -> None:
    run_dir, out = tmp_path / "r1", tmp_path / "plots"
    _csvs(run_dir)
    res = CliRunner().invoke(
        main, ["plots", str(run_dir), "--tasks", "energy,angle", "-o", str(out), "--suffix", "_v2"]
    )
    assert res.exit_code == 0, res.output
    energy, angle = out / "resolution_energy_r1_v2.pdf", out / "resolution_angle_r1_v2.pdf"
    assert res.output.splitlines() == [f"energy: {energy}", f"angle: {angle}"]
    assert energy.read_bytes().startswith(b"%PDF") and angle.read_bytes().startswith(b"%PDF")
    assert not list(run_dir.glob("*.pdf"))  # nothing written beside the CSVs
    res = CliRunner().invoke(main, ["plots", str(run_dir), "-t", "energy", "--suffix", "_b"])
    assert res.exit_code == 0, res.output
    assert [p.name for p in run_dir.glob("*.pdf")] == ["resolution_energy_r1_b.pdf"]
    res = CliRunner().invoke(main, ["plots", str(run_dir), "--tasks", "energy,bogus"])
    assert res.exit_code == 2 and "unknown task 'bogus'" in res.output
    res = CliRunner().invoke(main, ["plots", str(run_dir), "--suffix", "../x"])
    assert res.exit_code == 2 and "not part of a file name" in res.output
