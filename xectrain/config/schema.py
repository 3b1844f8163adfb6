"""JSON Schema of the run configuration, generated from the dataclasses (one source of truth).

`schemas/run_config.schema.json` is this function's output; a test regenerates it and compares,
so the file in the repository cannot drift from the code.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from .sections import RunConfig
from .typed import field_docs, field_types, is_optional, to_dict

SCHEMA_VERSION = 1
SCHEMA_PATH = Path("schemas") / "run_config.schema.json"


def run_config_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) every saved run config satisfies."""
    defs: dict[str, Any] = {}
    root = _object_schema(RunConfig, defs)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:xec:schema:run_config:{SCHEMA_VERSION}",
        "title": "xec run configuration",
        "description": "Resolved configuration of a training run (xectrain.config.RunConfig).",
        **root,
        "$defs": dict(sorted(defs.items())),
    }


def write_run_config_schema(path: str | Path = SCHEMA_PATH) -> Path:
    """Write the schema as stable, sorted-key JSON (what `schemas/` holds)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run_config_schema(), indent=2) + "\n")
    return path


def _object_schema(cls: Any, defs: dict[str, Any]) -> dict[str, Any]:
    docs, hints = field_docs(cls), field_types(cls)
    properties: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        prop = _type_schema(hints[f.name], defs, f.metadata.get("keys"))
        if "choices" in f.metadata:
            prop = _with_choices(prop, list(f.metadata["choices"]))
        if f.name in docs:
            prop = {"description": docs[f.name], **prop}
        default = _default(f)
        if default is not dataclasses.MISSING:
            prop["default"] = default
        properties[f.name] = prop
    return {"type": "object", "properties": properties, "additionalProperties": False}


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
        if dataclasses.is_dataclass(value):
            return dataclasses.MISSING  # nested sections document their own defaults
        if isinstance(value, dict):
            return {k: to_dict(v) if dataclasses.is_dataclass(v) else v for k, v in value.items()}
        return value
    return dataclasses.MISSING


def _type_schema(tp: Any, defs: dict[str, Any], keys: tuple[str, ...] | None = None) -> Any:
    optional, inner = is_optional(tp)
    schema = _inner_schema(inner, defs, keys)
    if optional:
        return {"anyOf": [schema, {"type": "null"}]}
    return schema


def _inner_schema(tp: Any, defs: dict[str, Any], keys: tuple[str, ...] | None) -> dict[str, Any]:
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        name = tp.__name__
        if name not in defs:
            defs[name] = {}  # placeholder stops recursion
            defs[name] = {"description": (tp.__doc__ or "").strip(), **_object_schema(tp, defs)}
        return {"$ref": f"#/$defs/{name}"}
    origin = get_origin(tp)
    if origin is Literal:
        return {"enum": list(get_args(tp))}
    if origin is list:
        return {"type": "array", "items": _type_schema(get_args(tp)[0], defs)}
    if origin is dict:
        out: dict[str, Any] = {
            "type": "object",
            "additionalProperties": _type_schema(get_args(tp)[1], defs),
        }
        if keys is not None:
            out["propertyNames"] = {"enum": list(keys)}
        return out
    simple = {bool: "boolean", int: "integer", float: "number", str: "string"}
    if tp in simple:
        return {"type": simple[tp]}
    raise TypeError(f"no JSON Schema for config type {tp!r}")


def _with_choices(prop: dict[str, Any], choices: list[str]) -> dict[str, Any]:
    """A string schema (or string-or-null) restricted to `choices`."""
    if "anyOf" in prop:
        return {"anyOf": [{"enum": choices}, {"type": "null"}]}
    return {"enum": choices}
