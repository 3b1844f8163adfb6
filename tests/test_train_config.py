"""Run configuration: defaults, YAML + overrides, validation messages, schema in sync."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from xectrain.config import (
    KINDS,
    SCHEMA_PATH,
    ConfigError,
    RunConfig,
    config_from_dict,
    default_config,
    field_docs,
    load_config,
    options_help,
    parse_override,
    run_config_schema,
    save_config,
    to_dict,
)
from xectrain.config.typed import field_types, is_optional

ROOT = Path(__file__).resolve().parents[1]


def test_schema_file_is_in_sync_with_the_dataclasses() -> None:
    on_disk = json.loads((ROOT / SCHEMA_PATH).read_text())
    assert on_disk == run_config_schema(), (
        "regenerate: python -c 'from xectrain.config import \
write_run_config_schema as w; w()'"
    )


@pytest.mark.parametrize("kind", KINDS)
def test_example_configs_load_and_satisfy_the_schema(kind: str) -> None:
    cfg = load_config(kind, ROOT / "configs" / f"{kind}.yaml")
    assert cfg.model.kind == kind
    jsonschema.validate(to_dict(cfg), run_config_schema())
    raw = yaml.safe_load((ROOT / "configs" / f"{kind}.yaml").read_text())
    jsonschema.validate(raw, {**run_config_schema(), "required": []})


def test_kind_defaults() -> None:
    assert default_config("regressor").enabled_tasks == ["angle"]
    assert default_config("mae").model.mask_ratio == 0.6
    assert default_config("inpainter").model.mask_ratio == 0.05
    assert default_config("mae").enabled_tasks == []


def test_overrides_are_parsed_by_the_type_of_their_key() -> None:
    assert parse_override("training.lr=1e-4") == ("training.lr", 1e-4)
    assert parse_override("training.epochs=7") == ("training.epochs", 7)
    assert parse_override("training.compile=true") == ("training.compile", True)
    assert parse_override("training.grad_clip=null") == ("training.grad_clip", None)
    assert parse_override("model.outer_fine_pool=5,4") == ("model.outer_fine_pool", [5, 4])
    assert parse_override("model.outer_fine_pool=[1, 1]") == ("model.outer_fine_pool", [1, 1])
    assert parse_override("tracking.run_name=2024") == ("tracking.run_name", "2024")
    cfg = load_config("regressor", overrides=["tasks.energy.enabled=yes", "tasks.energy.weight=2"])
    assert cfg.enabled_tasks == ["angle", "energy"] and cfg.tasks["energy"].weight == 2.0


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("training.lrr=1", "training.lrr: unknown key (did you mean 'lr'?)"),
        ("training.scheduler=cosin", "'cosin' is not one of cosine, onecycle, cosine_restarts"),
        ("tasks.energi.enabled=true", "tasks.energi: unknown name (did you mean 'energy'?)"),
        ("training.epochs=abc", "training.epochs: 'abc' is not a valid int"),
        ("training.compile=maybe", "training.compile: 'maybe' is not a boolean"),
        ("training.lr", "expected KEY=VALUE"),
        ("model.size=huge", "model.size: 'huge' is not one of tiny, base, large"),
        ("tasks.energy.loss=l3", "'l3' is not one of smooth_l1, huber, l1, mse, l2, relative_l1"),
        ("training.lr.x=1", "training.lr.x: training.lr has no sub-keys"),
    ],
)
def test_bad_overrides_name_the_key_and_the_choices(override: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=r"^--set ") as err:
        load_config("regressor", overrides=[override])
    assert expected in str(err.value)


def test_unknown_key_in_a_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("training:\n  epoch: 3\n")
    with pytest.raises(ConfigError) as err:
        load_config("regressor", path)
    expected = f"{path}: training.epoch: unknown key (did you mean 'epochs'?)"
    assert str(err.value).startswith(expected)


def test_file_of_another_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mae.yaml"
    path.write_text("model:\n  kind: mae\n")
    with pytest.raises(ConfigError, match="use `xec train mae`"):
        load_config("regressor", path)


def test_validation_collects_every_problem() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(
            "regressor",
            overrides=[
                "training.epochs=0",
                "tasks.angle.enabled=false",
                "model.outer_fine_pool=4,4",
                "checkpoint.refresh_lr=true",
                "tasks.timing.loss=cross_entropy",
            ],
        )
    text = str(err.value)
    for key in (
        "training.epochs: must be > 0, got 0",
        "tasks: no task is enabled",
        "model.outer_fine_pool: [4, 4] must divide the fine outer grid [45, 72]",
        "checkpoint.refresh_lr: only applies when resuming",
        "tasks.timing: task timing: loss 'cross_entropy' does not serve regression tasks",
    ):
        assert key in text


def test_tasks_belong_to_the_regressor() -> None:
    with pytest.raises(ConfigError, match=r"tasks: \['energy'\] enabled, but tasks apply"):
        load_config("mae", overrides=["tasks.energy.enabled=true"])


def test_inpainter_freeze_needs_an_encoder() -> None:
    with pytest.raises(ConfigError, match=r"model\.freeze_encoder: true needs a trained encoder"):
        load_config("inpainter", overrides=["model.freeze_encoder=true"])
    cfg = load_config(
        "inpainter", overrides=["model.freeze_encoder=true", "model.encoder_from=mae.pth"]
    )
    assert cfg.model.freeze_encoder


def test_saved_config_round_trips(tmp_path: Path) -> None:
    cfg = load_config("mae", overrides=["training.lr=2e-4", "recon.time_weight=0.5"])
    path = save_config(cfg, tmp_path / "config.yaml")
    assert load_config("mae", path) == cfg
    assert config_from_dict(yaml.safe_load(path.read_text())) == cfg


def _sections(cls: type) -> list[type]:
    out = [cls]
    for f in dataclasses.fields(cls):
        tp = is_optional(field_types(cls)[f.name])[1]
        args = getattr(tp, "__args__", ())
        for sub in (tp, *args):
            if dataclasses.is_dataclass(sub) and sub not in out:
                out += _sections(sub)  # type: ignore[arg-type]
    return out


def test_every_key_is_documented_for_the_cli_help() -> None:
    for section in _sections(RunConfig):
        names = {f.name for f in dataclasses.fields(section)}
        assert names == set(field_docs(section)), section.__name__
    text = options_help("regressor")
    assert "training.lr (float; default 0.0003)" in text
    assert "Peak learning rate" in text


def test_augment_section_matches_the_loader_augmenter() -> None:
    from xecdata.loaders.augment import AugmentConfig as LoaderAugment
    from xectrain.config import AugmentConfig

    ours = {f.name: f.default for f in dataclasses.fields(AugmentConfig)}
    theirs = {f.name: f.default for f in dataclasses.fields(LoaderAugment)}
    assert ours == theirs


def test_readout_threshold_reaches_the_model_and_is_range_checked() -> None:
    from xecdata.schemes import get_scheme
    from xectrain.engine.steps import build_model

    cfg = load_config("regressor", overrides=["model.readout_dim=4", "model.readout_threshold=0.3"])
    model = build_model(cfg, get_scheme(cfg.data.scheme))
    assert model.readout is not None and model.readout.threshold == 0.3
    with pytest.raises(ConfigError, match=r"model\.readout_threshold: must lie in \[0, 1\)"):
        load_config("regressor", overrides=["model.readout_threshold=1.5"])


def test_time_mask_preference_for_the_inpainter_needs_the_npho_pool() -> None:
    over = ["model.time_mask_ratio_scale=3"]
    with pytest.raises(ConfigError, match=r"only with model.mask_pool=valid_npho"):
        load_config("inpainter", overrides=over)
    cfg = load_config("inpainter", overrides=[*over, "model.mask_pool=valid_npho"])
    from xecdata.schemes import get_scheme
    from xectrain.engine.steps import build_model

    assert build_model(cfg, get_scheme(cfg.data.scheme)).time_mask_ratio_scale == 3.0
