"""Typed run configuration: sections, YAML + `--set` loading, validation, JSON Schema.

Typical use::

    cfg = load_config("regressor", "configs/regressor.yaml", ["training.lr=1e-4"])
    save_config(cfg, run_dir / "config.yaml")
"""

from .loading import (
    config_from_dict,
    default_config,
    load_config,
    options_help,
    parse_override,
    read_yaml,
    save_config,
)
from .schema import SCHEMA_PATH, run_config_schema, write_run_config_schema
from .sections import (
    KINDS,
    TASK_NAMES,
    AugmentConfig,
    CheckpointConfig,
    DataConfig,
    ModelConfig,
    ReconstructionConfig,
    ReweightConfig,
    RunConfig,
    TaskConfig,
    TrackingConfig,
    TrainingConfig,
)
from .typed import ConfigError, field_docs, to_dict
from .validate import validate

__all__ = [
    "KINDS",
    "SCHEMA_PATH",
    "TASK_NAMES",
    "AugmentConfig",
    "CheckpointConfig",
    "ConfigError",
    "DataConfig",
    "ModelConfig",
    "ReconstructionConfig",
    "ReweightConfig",
    "RunConfig",
    "TaskConfig",
    "TrackingConfig",
    "TrainingConfig",
    "config_from_dict",
    "default_config",
    "field_docs",
    "load_config",
    "options_help",
    "parse_override",
    "read_yaml",
    "run_config_schema",
    "save_config",
    "to_dict",
    "validate",
    "write_run_config_schema",
]
