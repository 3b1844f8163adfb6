"""Building a run configuration: kind defaults <- YAML file <- `--set key=value` overrides.

The result is validated (`validate.py`) and can be saved as YAML beside the run; the same dict
goes into every checkpoint so a checkpoint always knows how it was trained.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml

from xecdata.errors import yaml_problem
from xecdata.tasks import DEFAULT_TASK

from .keys import migrate_hint, old_style_keys, resolve_key
from .sections import KINDS, RunConfig
from .typed import (
    ConfigError,
    coerce,
    deep_merge,
    field_docs,
    field_types,
    from_dict,
    is_optional,
    to_dict,
    type_name,
)
from .validate import validate

# Differences from the dataclass defaults per model kind (everything else is shared).
_KIND_DEFAULTS: dict[str, dict[str, Any]] = {
    "regressor": {},
    "mae": {"model": {"mask_ratio": 0.6}, "tasks": {DEFAULT_TASK: {"enabled": False}}},
    "inpainter": {"model": {"mask_ratio": 0.05}, "tasks": {DEFAULT_TASK: {"enabled": False}}},
}


def default_config(kind: str) -> RunConfig:
    """The built-in configuration of a model kind (regressor, mae, inpainter)."""
    if kind not in KINDS:
        raise ConfigError(f"model kind {kind!r} is not one of {', '.join(KINDS)}")
    tree = deep_merge(to_dict(RunConfig()), _KIND_DEFAULTS[kind])
    tree["model"]["kind"] = kind
    return from_dict(RunConfig, tree)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML config file as a mapping (an empty file is an empty mapping)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({yaml_problem(err)}); fix the file") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return data


def parse_override(text: str) -> tuple[str, Any]:
    """'training.lr=1e-4' -> ('training.lr', 0.0001), parsed and checked against the key's type."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set training.lr=1e-4")
    try:
        tp, meta = resolve_key(key)
    except ConfigError as err:
        raise ConfigError(f"--set {text}: {err}") from None
    optional, inner = is_optional(tp)
    raw = raw.strip()
    if optional and raw.lower() in ("null", "none", "~"):
        return key, None
    if inner is str:
        value: Any = raw
    else:
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            value = raw
        if get_origin(inner) is list and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
    try:
        return key, coerce(value, tp, key, meta)
    except ConfigError as err:
        raise ConfigError(f"--set {text}: {err}") from None


def set_key(tree: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """Copy of `tree` with dotted `key` set to `value` (a dataclass value becomes a dict)."""
    out = copy.deepcopy(tree)
    node = out
    *parents, last = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = to_dict(value) if dataclasses.is_dataclass(value) else value
    return out


def load_config(
    kind: str, path: str | Path | None = None, overrides: Sequence[str] = ()
) -> RunConfig:
    """Kind defaults, updated by the YAML file at `path`, then by `KEY=VALUE` overrides."""
    tree = to_dict(default_config(kind))
    if path is not None:
        user = read_yaml(path)
        earlier = old_style_keys(user)
        if earlier:
            raise ConfigError(migrate_hint(path, earlier))
        file_kind = (user.get("model") or {}).get("kind", kind)
        if file_kind != kind:
            raise ConfigError(
                f"{path}: model.kind is {file_kind!r} but the command trains {kind!r}; "
                f"use `xec train {file_kind}` or remove model.kind from the file"
            )
        tree = deep_merge(tree, user)
        try:
            from_dict(RunConfig, tree)
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None
    for text in overrides:
        key, value = parse_override(text)
        tree = set_key(tree, key, value)
    cfg = from_dict(RunConfig, tree)
    if cfg.model.kind != kind:
        raise ConfigError(f"model.kind: a `{kind}` run cannot become {cfg.model.kind!r}")
    validate(cfg)
    return cfg


def config_from_dict(data: dict[str, Any]) -> RunConfig:
    """A saved configuration (from a run folder or a checkpoint), checked again."""
    cfg = from_dict(RunConfig, data)
    validate(cfg)
    return cfg


def save_config(cfg: RunConfig, path: str | Path) -> Path:
    """Write the resolved configuration as YAML (the file `xec train --config` accepts back)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# Resolved xec run configuration (defaults + file + overrides).\n"
    path.write_text(header + yaml.safe_dump(to_dict(cfg), sort_keys=False))
    return path


def options_help(kind: str = "regressor") -> str:
    """Every settable key with its type, default for `kind` and description (for --options)."""
    lines: list[str] = []
    _describe(RunConfig, to_dict(default_config(kind)), "", lines)
    return "\n".join(lines)


def _describe(cls: Any, defaults: dict[str, Any], prefix: str, lines: list[str]) -> None:
    docs, hints = field_docs(cls), field_types(cls)
    for f in dataclasses.fields(cls):
        key, tp = f"{prefix}{f.name}", hints[f.name]
        inner = is_optional(tp)[1]
        if dataclasses.is_dataclass(inner):
            lines.append(f"\n[{key}] {docs.get(f.name, '')}")
            _describe(inner, defaults[f.name], f"{key}.", lines)
        elif get_origin(inner) is dict and f.metadata.get("keys"):
            item = get_args(inner)[1]
            first = next(iter(defaults[f.name]))
            lines.append(f"\n[{key}.<name>] {docs.get(f.name, '')} (defaults of {key}.{first})")
            _describe(item, defaults[f.name][first], f"{key}.<name>.", lines)
        else:
            value = yaml.safe_dump(defaults[f.name], default_flow_style=True).strip()
            value = value.removesuffix("...").strip()
            lines.append(f"  {key} ({type_name(tp, f.metadata)}; default {value})")
            lines.append(f"      {docs.get(f.name, '')}")
