"""Shared fixtures. Reference geometry tables live beside the checkout (../shared/data/geometry)
or wherever XEC_GEOMETRY_TABLES points; tests that need them skip when they are absent."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from xecdata.schemes import registry as _scheme_registry

REPO = Path(__file__).resolve().parents[1]
_BUILTIN_SCHEMES = dict(_scheme_registry._REGISTRY)  # as imported: the built-ins only


@pytest.fixture(autouse=True)
def isolated_scheme_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts with the built-in schemes only; registrations never leak."""
    monkeypatch.setattr(_scheme_registry, "_REGISTRY", dict(_BUILTIN_SCHEMES))


def _geometry_tables() -> Path | None:
    env = os.environ.get("XEC_GEOMETRY_TABLES")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data" / "geometry")
    for c in candidates:
        if (c / "sensor_positions.txt").is_file() and (c / "sensor_directions.txt").is_file():
            return c
    return None


@pytest.fixture(scope="session")
def geometry_tables() -> Path:
    path = _geometry_tables()
    if path is None:
        pytest.skip("reference geometry tables not found (set XEC_GEOMETRY_TABLES)")
    return path


@pytest.fixture(scope="session")
def toy_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The session's shared store (tests/loader_stores.py: 1200 toy events in two ROOT files,
    scheme new@1), built once for every module that only reads a store. A test that writes to
    a store copies it first (`shutil.copytree`); the fixture checks at the end that nothing
    changed it."""
    from tests.loader_stores import build_store
    from tests.readonly import snapshot

    store = build_store(tmp_path_factory.mktemp("toy_store"))
    before = snapshot(store)
    yield store
    assert snapshot(store) == before, f"a test changed the shared store {store}; copy it first"
