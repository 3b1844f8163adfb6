"""Shared fixtures. Reference geometry tables live beside the checkout (../shared/data/geometry)
or wherever XEC_GEOMETRY_TABLES points; tests that need them skip when they are absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


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
