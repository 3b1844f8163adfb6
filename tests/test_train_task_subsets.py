"""`xec validate --tasks`: a subset of the checkpoint's tasks is validated and plotted (same
numbers as the full validation), unknown or absent tasks are refused naming the model's."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from xec_cli.main import main
from xecdata.ingest import ingest
from xecmodel import TaskSpec, create_model
from xectrain.checkpoint import make_checkpoint, save_checkpoint
from xectrain.config import load_config, to_dict

from .rootfiles import write_uproot


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny angle + energy regressor checkpoint and a 128-event store (64 validation)."""
    root = tmp_path_factory.mktemp("subset")
    write_uproot(root / "a.root", 128, seed=2)
    store = root / "s.xec.zarr"
    ingest([root / "a.root"], store, schemes=["new@1"], chunk_events=32, workers=1,
           progress=False, val_fraction=0.5)  # fmt: skip
    cfg = load_config("regressor", overrides=["tasks.energy.enabled=true",
                                               "checkpoint.worst_events=1"])  # fmt: skip
    specs = [
        TaskSpec("angle", transform="standardize", mean=[90.0, 0.0], std=[12.0, 25.0]),
        TaskSpec("energy", transform="log+standardize", mean=[math.log(0.04)], std=[0.3]),
    ]
    model = create_model("regressor", "tiny", scheme="new@1", tasks=specs)
    ckpt = make_checkpoint("regressor", model.state_dict(), model_config=model.model_config,
                           config=to_dict(cfg), epoch=1)  # fmt: skip
    return save_checkpoint(root / "run" / "checkpoint_best.pth", ckpt), store


def _validate(ckpt: Path, store: Path, out: Path, *extra: str) -> tuple[int, str]:
    args = ["validate", str(ckpt), "--store", str(store), "-o", str(out), "--device", "cpu",
            "--batch-size", "32", *extra]  # fmt: skip
    res = CliRunner().invoke(main, args)
    return res.exit_code, res.output


def test_validate_only_the_named_tasks(checkpoint: tuple[Path, Path], tmp_path: Path) -> None:
    ckpt, store = checkpoint
    code, output = _validate(ckpt, store, tmp_path / "all")
    assert code == 0, output
    full = json.loads((tmp_path / "all" / "metrics.json").read_text())
    code, output = _validate(ckpt, store, tmp_path / "e", "--tasks", "energy")
    assert code == 0, output
    part = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert "val/loss_energy" in part and not any("angle" in k for k in part)
    assert part["val/loss_energy"] == pytest.approx(full["val/loss_energy"], rel=1e-6)
    assert part["val/total_loss"] == pytest.approx(part["val/loss_energy"], rel=1e-6)
    for key in (k for k in full if "energy" in k):
        assert part[key] == pytest.approx(full[key], rel=1e-6), key
    names = {p.name for p in (tmp_path / "e").iterdir()}
    assert "predictions_energy_run_val.csv" in names and "resolution_energy_run_val.pdf" in names
    assert not any("angle" in n for n in names)


def test_validate_refuses_unknown_and_absent_tasks(
    checkpoint: tuple[Path, Path], tmp_path: Path
) -> None:
    ckpt, store = checkpoint
    code, output = _validate(ckpt, store, tmp_path, "--tasks", "energy,bogus")
    assert code == 1 and "unknown task 'bogus'" in output and "angle, energy" in output
    code, output = _validate(ckpt, store, tmp_path, "--tasks", "uvwFI")
    assert code == 1 and "no task 'uvwFI'" in output and "angle, energy" in output
    assert not (tmp_path / "metrics.json").exists()
