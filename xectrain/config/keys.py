"""Dotted keys of the run configuration: their types, and telling an xec configuration from one
of the earlier tool (xec-ml-wl), whose keys `legacy.py` lists.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, get_args, get_origin

from .legacy import find_old_key
from .sections import RunConfig
from .typed import ConfigError, did_you_mean, field_types, is_optional


def resolve_key(key: str) -> tuple[Any, Mapping[str, Any]]:
    """Annotated type and field metadata of a dotted key (e.g. training.lr, tasks.energy.loss)."""
    cls: Any = RunConfig
    parts = key.split(".")
    tp: Any = None
    meta: Mapping[str, Any] = {}
    i = 0
    while i < len(parts):
        name, done = parts[i], ".".join(parts[: i + 1])
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise ConfigError(f"{done}: {'.'.join(parts[:i])} has no sub-keys")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if name not in fields:
            raise ConfigError(
                f"{done}: unknown key{did_you_mean(name, fields)}; allowed: {', '.join(fields)}"
            )
        tp, meta = field_types(cls)[name], fields[name].metadata
        names = meta.get("keys")
        if names is not None and i + 1 < len(parts):
            entry = parts[i + 1]
            if entry not in names:
                raise ConfigError(
                    f"{done}.{entry}: unknown name{did_you_mean(entry, names)}; "
                    f"allowed: {', '.join(names)}"
                )
            tp, meta = get_args(is_optional(tp)[1])[1], {}
            i += 1
        cls = is_optional(tp)[1]
        i += 1
    return tp, meta


def _free_mapping(key: str) -> bool:
    """True for xec keys holding a mapping of free names (e.g. tasks.angle.loss_kwargs)."""
    try:
        tp, meta = resolve_key(key)
    except ConfigError:
        return False
    return get_origin(is_optional(tp)[1]) is dict and not meta.get("keys")


def is_xec_key(key: str) -> bool:
    """Whether a dotted key is a key of the xec run configuration."""
    try:
        resolve_key(key)
        return True
    except ConfigError:
        parent = key.rpartition(".")[0]
        return bool(parent) and _free_mapping(parent)


def leaves(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every leaf of a nested mapping (xec's free mappings are leaves)."""
    for name, value in tree.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict) and value and not _free_mapping(key):
            yield from leaves(value, f"{key}.")
        else:
            yield key, value


def old_style_keys(tree: Mapping[str, Any]) -> list[str]:
    """Keys of `tree` that only the earlier tool knows (empty for an xec configuration)."""
    return [k for k, _ in leaves(tree) if not is_xec_key(k) and find_old_key(k) is not None]


def migrate_hint(path: str | Path, keys: list[str]) -> str:
    """The one-line message that tells a user to migrate an earlier configuration."""
    path = Path(path)
    shown = ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")
    new = path.with_name(f"{path.stem}.xec{path.suffix or '.yaml'}")
    return (
        f"{path} is a configuration of the earlier tool (xec-ml-wl; keys {shown}); convert it "
        f"with: xec config migrate {path} -o {new}"
    )
