"""Training and inference against stores they must not harm or trust blindly: training with
reweighting on a read-only store (nothing written to it; rank 0's tables), and a store with
damaged chunks, which `xec train`, `xec validate` and `xec infer` refuse naming the chunk and the
repair command (one `Error:` line, no traceback, no numbers made up)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.readonly import read_only
from tests.test_store_damage import damage
from xec_cli.main import main
from xecdata.store import open_store

DAMAGE = re.compile(
    r"Error: store .*: chunk \d+ of array sensors/new@1 \(events \d+\.\.\d+, shard \d+\) is "
    r"damaged: its crc32c checksum does not match its bytes\. Rebuild it from its sources with "
    r"`xec repair .* --units \d+`"
)


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _train(store: Path, tmp: Path, *extra: str) -> Result:
    return _run(
        "train", "regressor", "-c", str(Path(__file__).parents[1] / "configs" / "regressor.yaml"),
        "--store", str(store), "--epochs", "1", "--batch-size", "16", "--tasks", "energy",
        "--set", f"checkpoint.dir={tmp / 'artifacts'}", "--set", "training.device=cpu",
        "--set", "data.max_train_batches=3", "--set", "data.max_val_batches=2",
        "--set", "tracking.enabled=false", "--set", "checkpoint.save_artifacts=false",
        "--set", "training.transform_fit_batches=2", "--run-name", "safe", *extra,
    )  # fmt: skip


@pytest.fixture(scope="module")
def store(toy_store: Path) -> Path:
    return toy_store


def test_reweighted_training_on_a_read_only_store(store, tmp_path):
    with read_only(store):  # chmod a-w and a write guard (tests may run as root)
        out = _train(store, tmp_path, "--set", "reweighting.energy.enabled=true")
    assert out.exit_code == 0, out.output
    assert (tmp_path / "artifacts" / "safe" / "checkpoint_best.pth").is_file()


def test_damaged_chunks_stop_train_validate_and_infer_with_the_repair_command(store, tmp_path):
    out = _train(store, tmp_path)
    assert out.exit_code == 0, out.output
    ckpt = tmp_path / "artifacts" / "safe" / "checkpoint_best.pth"
    model = tmp_path / "m.onnx"
    out = _run("export", "onnx", str(ckpt), "-o", str(model), "--exporter", "torchscript")
    assert out.exit_code == 0, out.output
    bad = Path(shutil.copytree(store, tmp_path / "bad.xec.zarr"))
    for chunk in range(open_store(bad).n_chunks):  # whichever chunk a run reads first
        damage(bad, "sensors/new@1", chunk, "bit")
    for result in (
        _train(bad, tmp_path / "again"),
        _run("validate", str(ckpt), "--store", str(bad), "--max-batches", "1", "--batch-size",
             "16", "-o", str(tmp_path / "val")),
        _run("infer", str(model), str(bad), "-o", str(tmp_path / "p.root")),
    ):  # fmt: skip
        assert result.exit_code == 1, result.output
        assert DAMAGE.search(result.output), result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "p.root").exists()


def test_a_batch_larger_than_a_split_is_refused_with_the_fix(store, tmp_path):
    out = _train(store, tmp_path, "--batch-size", "1000000")
    assert out.exit_code == 1 and "Traceback" not in out.output
    errors = [line for line in out.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "unexpected" not in errors[0], out.output
    assert "gives no batch of 1000000 events" in errors[0] and "data.batch_size" in errors[0]
