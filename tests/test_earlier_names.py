"""The earlier tool's documented metric, artifact and branch names: a run produces every one of
them (read back from MLflow's SQLite store and the run folder), and the README's table is the
one the code holds."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import uproot
from mlflow.tracking import MlflowClient

from tests.trainhelpers import tiny_config, toy_events, toy_loaders
from xectrain.run.earlier_names import (
    METRIC_KEYS,
    METRIC_NAMES,
    earlier_aliases,
    expand,
    names_table,
    with_earlier_names,
)
from xectrain.run.fit import train

README = Path(__file__).parents[1] / "README.md"


def missing_documented(logged: Iterable[str], runs: tuple[str, ...]) -> list[str]:
    """Documented metrics of runs whose note starts with one of `runs` that a run did not log:
    documented keys under their own name, key-less names under xec's key(s); CUDA-only keys
    are left out on the CPU."""
    logged = set(logged)
    missing = []
    for old, new, where in METRIC_KEYS:
        if where.startswith(runs) and "CUDA" not in where:
            missing += [o for o, _ in expand(old, new) if o not in logged]
    for old, new, where in METRIC_NAMES:
        if where.startswith(runs) or (where.startswith("recon.") and "MAE" in runs):
            for part in new.split(", "):
                missing += [n for _, n in expand(old, part) if n not in logged]
    return missing


def test_readme_holds_the_table_of_names() -> None:
    assert names_table() in README.read_text()


def test_aliases_add_the_documented_keys_only_where_they_differ() -> None:
    aliases = earlier_aliases()
    assert aliases["val_cos"] == "val/cos_loss"
    assert aliases["val_resolution_deg"] == "val/angle_resolution_68pct"
    assert aliases["train/time_loss"] == "train/loss_time"
    assert "val/total_loss" not in aliases and "system/ram_used_gb" not in aliases
    out = with_earlier_names({"val/cos_loss": 0.25, "val/theta_rms": 1.5})
    assert out == {"val/cos_loss": 0.25, "val/theta_rms": 1.5, "val_cos": 0.25, "theta_rms": 1.5}


def test_mae_run_logs_and_writes_the_documented_names(tmp_path: Path) -> None:
    cfg = tiny_config("mae", tmp_path, "training.epochs=1", "recon.learn_channel_logvars=true",
                      "checkpoint.save_artifacts=true", "model.outer_mode=split")  # fmt: skip
    res = train(cfg, toy_loaders(4, 4, batch_size=4))
    run = MlflowClient(tracking_uri=cfg.tracking.uri).get_run(res.mlflow_run_id)
    assert missing_documented(run.data.metrics, ("MAE", "all")) == []
    m = run.data.metrics
    assert m["val/npho_loss"] == m["val/loss_npho"] and m["n_masked_total"] > 0
    assert m["actual_mask_ratio"] == m["val/actual_mask_ratio"]
    for name in ("mae_checkpoint_best.pth", "mae_checkpoint_last.pth"):
        link = res.run_dir / name
        assert link.is_symlink() and link.resolve() == (res.run_dir / name[4:]).resolve()
    with uproot.open(res.run_dir / "mae_predictions_epoch_001.root") as f:
        tree = f["predictions"]
        ids = tree.arrays(["event_id", "event", "run_id", "run"], library="np")
        val_runs = toy_events(4, 100)["run"]  # toy_loaders' validation events (seed 100)
        assert (ids["event_id"] == ids["event"]).all() and (ids["run_id"] == val_runs).all()
        assert {"truth_npho", "pred_time", "err_time", "mask", "masked_npho"} <= set(tree.keys())
