"""`xec config migrate`: configs of the earlier tool (xec-ml-wl), written from its reference docs,
become xec configs that load and train; keys without an equivalent are named with the reason.
Also `xec config show` and the migrate hint of `xec train -c OLD.yaml`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from tests.trainhelpers import toy_loaders
from xec_cli.main import main
from xectrain.checkpoint import load_checkpoint
from xectrain.config import ConfigError, load_config, read_yaml
from xectrain.config.legacy import OLD_KEYS, find_old_key
from xectrain.config.migrate import migrate_config, nested, render_migration
from xectrain.run.fit import train

LEGACY = Path(__file__).parent / "legacy_configs"
FILES = {"regressor": "train_config.yaml", "mae": "mae_config.yaml",
         "inpainter": "inpainter_config.yaml"}  # fmt: skip

# Every configuration key the earlier tool's reference documentation lists (config paths of
# its parameter tables, its YAML examples and its troubleshooting snippets); * = a task name.
DOCUMENTED_KEYS = [
    "data.train_path", "data.val_path", "data.batch_size", "data.chunksize", "data.num_threads",
    "training.batch_size", "training.epochs", "training.lr", "training.weight_decay",
    "training.warmup_epochs", "training.ema_decay", "training.grad_clip",
    "training.grad_accum_steps", "training.lr_scheduler", "training.compile",
    "training.mae_checkpoint", "training.loss_fn", "training.npho_weight", "training.time_weight",
    "training.auto_channel_weight", "training.npho_threshold", "training.use_npho_time_weight",
    "training.track_mae_rmse", "training.track_train_metrics", "training.predict_channels",
    "training.learn_channel_logvars", "model.outer_mode", "model.outer_fine_pool",
    "model.mask_ratio", "model.time_mask_ratio_scale", "model.freeze_encoder",
    "normalization.npho_scale", "normalization.npho_scale2", "normalization.time_scale",
    "normalization.time_shift", "normalization.sentinel_value", "checkpoint.resume_from",
    "checkpoint.refresh_lr", "checkpoint.reset_epoch", "checkpoint.new_mlflow_run",
    "checkpoint.save_artifacts", "checkpoint.save_predictions", "checkpoint.save_root_predictions",
    "checkpoint.save_interval", "checkpoint.onnx_filename", "tasks.*.enabled", "tasks.*.loss_fn",
    "tasks.*.loss_beta", "tasks.*.weight", "tasks.*.log_transform", "reweighting.*.enabled",
    "reweighting.*.nbins", "reweighting.*.nbins_2d",
    # the MAE table lists its keys without a section
    "mask_ratio", "time_mask_ratio_scale", "outer_mode", "outer_fine_pool", "loss_fn",
    "npho_weight", "time_weight", "auto_channel_weight", "npho_threshold", "use_npho_time_weight",
    "track_mae_rmse", "track_train_metrics", "grad_accum_steps", "ema_decay",
]  # fmt: skip


def test_every_documented_key_has_an_entry() -> None:
    for key in DOCUMENTED_KEYS:
        concrete = key.replace("*", "energy")
        found = find_old_key(concrete)
        assert found is not None, key
        rule = OLD_KEYS[found[0]]
        assert rule.new is not None or rule.note, f"{key}: no xec key and no reason"


def _migrate(kind: str, tmp: Path, store: str = "store.xec.zarr") -> Path:
    old = LEGACY / FILES[kind]
    m = migrate_config(read_yaml(old), store=store, name=str(old))
    assert m.kind == kind
    text = render_migration(m, str(old))
    assert yaml.safe_load(text) == nested(m.values)  # the comments do not change the values
    out = tmp / f"{kind}.xec.yaml"
    out.write_text(text)
    return out


def _tiny(tmp: Path, *extra: str) -> list[str]:
    return [f"checkpoint.dir={tmp / 'artifacts'}", f"tracking.uri=sqlite:///{tmp / 'ml.db'}",
            f"tracking.artifact_location={tmp / 'mla'}", "training.device=cpu",
            "training.epochs=1", "training.warmup_epochs=0", "training.log_every=1",
            "training.transform_fit_batches=1", "checkpoint.save_artifacts=false",
            "tracking.enabled=false", "model.outer_mode=split", *extra]  # fmt: skip


def _train_one_batch(kind: str, path: Path, tmp: Path, *extra: str) -> Path:
    cfg = load_config(kind, path, _tiny(tmp, f"tracking.run_name={kind}", *extra))
    res = train(cfg, toy_loaders(4, 4, batch_size=4, scheme=cfg.data.scheme))  # type: ignore[arg-type]
    assert res.history and all(v == v for _, v in res.history)  # one finite training loss
    return res.run_dir / "checkpoint_last.pth"


@pytest.fixture(scope="module")
def mae_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("mae")
    path = _migrate("mae", tmp)
    cfg = load_config("mae", path)
    assert (cfg.model.mask_ratio, cfg.recon.npho_threshold, cfg.data.scheme) == (0.65, 100, "new@1")
    assert (cfg.training.ema_decay, cfg.checkpoint.encoder_every) == (None, 10)
    return _train_one_batch("mae", path, tmp)


def test_regressor_config_from_the_docs_trains(tmp_path: Path) -> None:
    path = _migrate("regressor", tmp_path)
    cfg = load_config("regressor", path)
    assert cfg.data.scheme == "legacy@1" and cfg.data.store == "store.xec.zarr"
    assert cfg.tasks["angle"].loss_kwargs == {"beta": 1.0} and cfg.tasks["angle"].transform == (
        "identity"
    )
    assert cfg.tasks["energy"].loss == "relative_l1" and not cfg.tasks["energy"].enabled
    assert cfg.reweighting["angle"].bins == [20, 20] and cfg.reweighting["uvwFI"].bins == [10] * 3
    assert (cfg.training.scheduler, cfg.training.ema_decay, cfg.data.loader_threads) == (
        "cosine", 0.999, 8)  # fmt: skip
    ckpt = load_checkpoint(_train_one_batch("regressor", path, tmp_path))
    assert ckpt["scheme"]["id"] == "legacy@1" and ckpt["epoch"] == 1


def test_mae_and_inpainter_configs_from_the_docs_train(
    mae_checkpoint: Path, tmp_path: Path
) -> None:
    assert load_checkpoint(mae_checkpoint)["kind"] == "mae"
    path = _migrate("inpainter", tmp_path)
    cfg = load_config("inpainter", path)
    assert cfg.model.encoder_from == "artifacts/mae/checkpoint_best.pth"  # the docs' path
    assert cfg.model.freeze_encoder and cfg.model.mask_ratio == 0.05
    ckpt = _train_one_batch("inpainter", path, tmp_path, f"model.encoder_from={mae_checkpoint}")
    assert load_checkpoint(ckpt)["kind"] == "inpainter"


def _m(old: dict, **kw: str) -> tuple[dict, dict]:
    m = migrate_config(old, **kw)
    return m.values, dict(m.not_migrated)


def test_value_conversions_and_reasons() -> None:
    values, refused = _m({"tasks": {
        "energy": {"enabled": True, "loss_fn": "huber", "loss_beta": 0.5, "log_transform": True},
        "timing": {"enabled": True, "loss_fn": "l1", "loss_beta": 2.0}},
        "training": {"lr_scheduler": "plateau", "grad_clip": 0}})  # fmt: skip
    assert values["tasks.energy.loss_kwargs"] == {"delta": 0.5}
    assert values["tasks.energy.transform"] == "log"
    assert values["training.grad_clip"] is None
    assert "has no beta" in refused["tasks.timing.loss_beta = 2.0"]
    assert "'plateau' does not exist in xec" in refused["training.lr_scheduler = plateau"]
    assert "xec ingest" in _m({"data": {"train_path": "a.root"}})[1]["data.train_path = a.root"]
    values, refused = _m({"training": {"predict_channels": ["npho"], "loss_fn": "mse"},
                          "normalization": {"npho_scale": 7.0}}, kind="mae")  # fmt: skip
    assert values["recon.predict_time"] is False and values["recon.loss"] == "mse"
    assert "no registered scheme" in refused["normalization.npho_scale = 7.0"]
    assert _m({})[0]["data.scheme"] == "legacy@1"  # the earlier tool's default constants
    assert _m({"mask_ratio": 0.5})[0]["model.mask_ratio"] == 0.5  # flat MAE key, kind guessed
    assert _m({"batch_size": 16})[0]["data.batch_size"] == 16  # data. or training.: one meaning
    values, refused = _m({"data": {"batch_size": 64}, "training": {"batch_size": 32}})
    assert values["data.batch_size"] == 64 and "conflicts" in refused["training.batch_size"]
    refused = _m({"model": {"mask_ratio": 0.5}}, kind="regressor")[1]
    assert "applies to mae / inpainter" in refused["model.mask_ratio = 0.5"]


def test_unknown_and_invalid_configs_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"neither .* defines: training\.lrr \(did you mean"):
        migrate_config({"training": {"lrr": 1.0}})
    with pytest.raises(ConfigError, match=r"not valid.*training\.epochs"):
        migrate_config({"training": {"epochs": 0}})


def _cli(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args))
    return r.exit_code, r.stdout, r.stderr


def test_cli_migrate_show_and_the_train_hint(tmp_path: Path) -> None:
    old, new = LEGACY / FILES["regressor"], tmp_path / "new.yaml"
    code, out, err = _cli("train", "regressor", "-c", str(old))
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith("Error: ")
    assert f"xec config migrate {old} -o " in lines[0]
    assert _cli("train", "-c", str(old))[2] == err  # also without the model kind
    code, out, err = _cli("config", "migrate", str(old), "-o", str(new))
    assert code == 0 and "train it: xec train regressor -c" in out
    assert "not migrated: data.train_path" in err and "not migrated: data.chunksize" in err
    assert "# tasks.angle.loss_fn -> tasks.angle.loss" in new.read_text()
    code, _, err = _cli("config", "migrate", str(old), "-o", str(tmp_path / "x.yaml"), "--strict")
    assert code == 1 and "not migrated (--strict)" in err and not (tmp_path / "x.yaml").exists()
    code, out, _ = _cli("config", "show", "-c", str(new), "--set", "training.lr=1e-5")
    shown = yaml.safe_load(out)
    assert code == 0 and shown["training"]["lr"] == 1e-5 and shown["data"]["scheme"] == "legacy@1"
    assert shown["training"]["min_lr"] == 1e-6  # a default the file does not set
    code, out, _ = _cli("config", "migrate", "--keys")
    assert code == 0 and len(out.splitlines()) == len(OLD_KEYS)
