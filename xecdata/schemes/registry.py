"""The scheme registry: built-ins shipped as data, user schemes from YAML/JSON files, id lookup.

Built-in definitions are the `<name>@<version>.json` files of this package; a user file has the
same keys (see schemas/scheme.schema.json, shipped here as scheme.schema.json).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import yaml

from xecdata.errors import XecError, yaml_problem
from xecdata.schemes.scheme import NAME_PATTERN, Scheme

PACKAGE_DIR = Path(__file__).parent
SCHEMA_FILE = PACKAGE_DIR / "scheme.schema.json"  # a link to schemas/scheme.schema.json
_ID = re.compile(rf"({NAME_PATTERN})(?:@([1-9][0-9]*))?")
_REGISTRY: dict[str, Scheme] = {}


class SchemeError(XecError, ValueError):
    """A scheme id, definition or file a user supplied is wrong; the message says how to fix."""


class UnknownSchemeError(SchemeError, LookupError):
    """No registered scheme has the requested id."""


class SchemeConflictError(SchemeError):
    """A different definition was registered under an id that already exists."""


def parse_scheme_id(scheme_id: str) -> tuple[str, int | None]:
    """`"new@1"` -> ("new", 1); `"new"` -> ("new", None) meaning the latest version."""
    match = _ID.fullmatch(scheme_id) if isinstance(scheme_id, str) else None
    if match is None:
        raise SchemeError(
            f"bad scheme id {scheme_id!r}: write 'name@version' (e.g. 'new@1') or just 'name' "
            "for its latest version; the name starts with a letter, the version is >= 1"
        )
    version = match.group(2)
    return match.group(1), None if version is None else int(version)


def list_schemes() -> list[Scheme]:
    """Every registered scheme, sorted by name then version."""
    return sorted(_REGISTRY.values(), key=lambda s: (s.name, s.version))


def get_scheme(scheme_id: str) -> Scheme:
    """The scheme `name@version`, or the highest registered version for a bare `name`."""
    name, version = parse_scheme_id(scheme_id)
    if version is None:
        versions = [s for s in _REGISTRY.values() if s.name == name]
        if versions:
            return max(versions, key=lambda s: s.version)
    elif f"{name}@{version}" in _REGISTRY:
        return _REGISTRY[f"{name}@{version}"]
    known = ", ".join(s.id for s in list_schemes()) or "none"
    raise UnknownSchemeError(
        f"unknown normalization scheme {scheme_id!r}; known: {known}. Define a new one in a "
        "YAML/JSON file (keys: schemas/scheme.schema.json) and load it with load_scheme_file"
    )


def register_scheme(scheme: Scheme) -> Scheme:
    """Add a scheme; identical re-registration is a no-op, a changed definition is refused.

    Returns the registered instance (the earlier one when the definition is identical).
    """
    existing = _REGISTRY.get(scheme.id)
    if existing is None:
        _REGISTRY[scheme.id] = scheme
        return scheme
    if existing.hash == scheme.hash:
        return existing
    free = 1 + max(s.version for s in _REGISTRY.values() if s.name == scheme.name)
    raise SchemeConflictError(
        f"scheme {scheme.id} is already registered with other parameters ({existing.hash} vs "
        f"{scheme.hash}); the parameters of a version are frozen, so give the new definition "
        f"a new version: set version: {free} (id {scheme.name}@{free})"
    )


def scheme_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a scheme definition."""
    schema: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return schema


def validate_scheme_dict(d: Any, source: str) -> None:
    """Check a definition against the JSON Schema; SchemeError naming each bad key otherwise."""
    import jsonschema  # imported here: only user files need it

    validator = jsonschema.Draft202012Validator(scheme_json_schema())
    problems = []
    for err in sorted(validator.iter_errors(d), key=lambda e: list(map(str, e.path))):
        key = ".".join(map(str, err.path)) or "<top level>"
        hint = ""
        if isinstance(err.instance, str) and _looks_numeric(err.instance):
            hint = f" (YAML reads {err.instance} as text: write it with a dot, e.g. 1.0e-7)"
        problems.append(f"  key '{key}': {err.message}{hint}")
    if problems:
        raise SchemeError(
            f"{source}: invalid scheme definition (format: schemas/scheme.schema.json):\n"
            + "\n".join(problems)
        )


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def scheme_from_file(path: str | os.PathLike[str]) -> Scheme:
    """Read and validate a scheme definition from a .yaml/.yml/.json file (not registered)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SchemeError(f"cannot read scheme file {path}: {exc.strerror}") from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        kind = "JSON" if path.suffix == ".json" else "YAML"
        raise SchemeError(f"{path}: not valid {kind} ({yaml_problem(exc)}); fix the file") from exc
    validate_scheme_dict(data, str(path))
    try:
        return Scheme.from_dict(data)
    except ValueError as exc:
        raise SchemeError(f"{path}: {exc}") from exc


def load_scheme_file(path: str | os.PathLike[str], register: bool = True) -> Scheme:
    """Read a user scheme from YAML/JSON, validate it and (by default) register it."""
    scheme = scheme_from_file(path)
    if not register:
        return scheme
    try:
        return register_scheme(scheme)
    except SchemeConflictError as exc:
        raise SchemeConflictError(f"{path}: {exc}") from exc


def builtin_scheme_files() -> list[Path]:
    """The packaged definitions, one `<name>@<version>.json` per built-in scheme."""
    return sorted(p for p in PACKAGE_DIR.iterdir() if re.fullmatch(r".+@\d+\.json", p.name))


def _register_builtins() -> None:
    for path in builtin_scheme_files():
        scheme = Scheme.from_dict(json.loads(path.read_text(encoding="utf-8")))
        if path.name != f"{scheme.id}.json":
            raise RuntimeError(f"built-in scheme file {path.name} defines {scheme.id}")
        register_scheme(scheme)


_register_builtins()
