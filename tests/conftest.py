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
def toy_sources(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The two toy ROOT files (700 + 500 events) behind the shared stores below."""
    from tests.loader_stores import write_sources

    return write_sources(tmp_path_factory.mktemp("toy_sources"))


def _shared_store(sources: list[Path], out: Path, codec: str | None) -> Iterator[Path]:
    from tests.loader_stores import ingest_store
    from tests.readonly import snapshot

    store = ingest_store(sources, out, codec)
    before = snapshot(store)
    yield store
    assert snapshot(store) == before, f"a test changed the shared store {store}; copy it first"


@pytest.fixture(scope="session")
def toy_store(toy_sources: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The session's shared store of the toy sources (tests/loader_stores.py: scheme new@1,
    chunks of 64 events, default codec), built once for every module that only reads a store.
    A test that writes to a store copies it first (`shutil.copytree`); the fixture checks at
    the end that nothing changed it."""
    yield from _shared_store(toy_sources, tmp_path_factory.mktemp("toy") / "s.xec.zarr", None)


@pytest.fixture(scope="session")
def toy_plain_store(
    toy_sources: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """`toy_store`'s uncompressed twin (codec profile none): the same events, mappable shards."""
    yield from _shared_store(toy_sources, tmp_path_factory.mktemp("toy") / "p.xec.zarr", "none")
