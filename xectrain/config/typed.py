"""Typed conversion between plain dicts (YAML, `--set` overrides) and the config dataclasses.

Every value is checked against the annotated type of its field; a wrong key or value raises
`ConfigError` naming the dotted key, the allowed values and, for typos, the closest match.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import inspect
import itertools
import math
import types
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from xecdata.errors import XecError


class ConfigError(XecError, ValueError):
    """A configuration key or value is wrong; the message says which and how to fix it."""


def did_you_mean(word: str, choices: typing.Iterable[str]) -> str:
    """' (did you mean X?)' when a choice is close to `word`, else ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


@cache
def field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings of a dataclass: the string literal right below each annotated field."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, nxt in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


@cache
def field_types(cls: type) -> dict[str, Any]:
    """Resolved annotations of a dataclass (the sections use postponed annotations)."""
    return get_type_hints(cls)


def is_optional(tp: Any) -> tuple[bool, Any]:
    """(True, X) for `X | None`, else (False, tp)."""
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(get_args(tp)) == 2:
            return True, args[0]
    return False, tp


def type_name(tp: Any, meta: Mapping[str, Any] | None = None) -> str:
    """Human-readable type for help texts and errors."""
    optional, inner = is_optional(tp)
    if optional:
        return f"{type_name(inner, meta)} or null"
    if meta and meta.get("choices"):
        return "one of " + ", ".join(meta["choices"])
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in get_args(tp))
    if origin is list:
        return f"list of {type_name(get_args(tp)[0])}"
    if origin is dict:
        return f"mapping to {type_name(get_args(tp)[1])}"
    return getattr(tp, "__name__", str(tp))


def _bad(key: str, value: Any, tp: Any) -> ConfigError:
    return ConfigError(f"{key}: {value!r} is not a valid {type_name(tp)}")


def coerce(value: Any, tp: Any, key: str, meta: Mapping[str, Any] | None = None) -> Any:
    """Check `value` against type `tp` (converting numeric strings); return the typed value.

    `meta` is the field's metadata: "keys" (allowed names of a mapping) or "choices" (allowed
    values of a string taken from a registry of another package)."""
    meta = meta or {}
    optional, inner = is_optional(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{key}: null is not allowed here; give a {type_name(tp)}")
    tp = inner
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)  # type: ignore[arg-type]
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            hint = did_you_mean(str(value), [str(a) for a in allowed])
            choices = ", ".join(str(a) for a in allowed)
            raise ConfigError(f"{key}: {value!r} is not one of {choices}{hint}")
        return value
    if origin is list:
        if not isinstance(value, list | tuple):
            raise _bad(key, value, tp)
        (item,) = get_args(tp)
        return [coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        return _coerce_dict(value, tp, key, meta.get("keys"))
    out = _coerce_scalar(value, tp, key)
    registry = meta.get("choices")
    if registry is not None and out not in registry:
        hint = did_you_mean(str(out), registry)
        raise ConfigError(f"{key}: {out!r} is not one of {', '.join(registry)}{hint}")
    return out


def _coerce_dict(value: Any, tp: Any, key: str, keys: tuple[str, ...] | None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(key, value, tp)
    _, item = get_args(tp)
    out = {}
    for name, v in value.items():
        if keys is not None and name not in keys:
            raise ConfigError(
                f"{key}.{name}: unknown name{did_you_mean(str(name), keys)}; "
                f"allowed: {', '.join(keys)}"
            )
        out[str(name)] = coerce(v, item, f"{key}.{name}")
    return out


def _coerce_scalar(value: Any, tp: Any, key: str) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: {value!r} is not a boolean; use true or false")
    if tp is int:
        if isinstance(value, bool):
            raise _bad(key, value, tp)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise _bad(key, value, tp)
    if tp is float:
        if isinstance(value, bool):
            raise _bad(key, value, tp)
        try:
            out = float(value)
        except (TypeError, ValueError):
            raise _bad(key, value, tp) from None
        if math.isnan(out):
            raise ConfigError(f"{key}: NaN is not allowed")
        return out
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise _bad(key, value, tp)
    if tp is Any:
        return value
    raise TypeError(f"{key}: config type {tp!r} is not supported")  # a bug, not user input


def from_dict(cls: type, data: Any, prefix: str = "") -> Any:
    """Build dataclass `cls` from a mapping; unknown keys are refused with a did-you-mean."""
    where = prefix or "config"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of keys, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = field_types(cls)
    kwargs = {}
    for name, value in data.items():
        key = f"{prefix}.{name}" if prefix else str(name)
        if name not in fields:
            raise ConfigError(
                f"{key}: unknown key{did_you_mean(str(name), fields)}; "
                f"allowed keys of {where}: {', '.join(fields)}"
            )
        kwargs[name] = coerce(value, hints[name], key, fields[name].metadata)
    return cls(**kwargs)


def to_dict(obj: Any) -> Any:
    """Plain-python (YAML-ready) form of a config dataclass."""
    return dataclasses.asdict(obj)


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """`base` updated by `update`, recursing into nested mappings (new dict; inputs untouched)."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out
