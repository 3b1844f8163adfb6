"""A store opened with plain Zarr: every node listed without a warning (xec's private `_xec`
folder is an empty Zarr array), and stores of format 1 (a plain `_xec` folder) still open and
are upgraded by the next append."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import zarr

from tests.rootfiles import write_uproot
from xecdata.ingest import ingest
from xecdata.store import open_store
from xecdata.store.format import FORMAT_VERSION, META_NODE
from xecdata.store.metadata import read_metadata, write_complete, write_metadata


def _store(root: Path) -> Path:
    write_uproot(root / "a.root", 200, seed=1, baskets=2)
    out = root / "s.xec.zarr"
    ingest([root / "a.root"], out, schemes=["new@1"], chunk_events=64, shard_chunks=2,
           workers=1, progress=False)  # fmt: skip
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _store(tmp_path_factory.mktemp("plainzarr"))


def _walk_with_plain_zarr(path: Path) -> tuple[dict[str, object], list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        group = zarr.open_group(str(path), mode="r")
        members = dict(group.members(max_depth=None))
    return members, [str(w.message) for w in caught]


def test_plain_zarr_lists_every_node_without_warnings(store: Path) -> None:
    members, messages = _walk_with_plain_zarr(store)
    assert messages == []
    assert {"sensors/new@1", "columns/float32", "splits/train", "stats/new@1"} <= set(members)
    private = members["_xec"]
    assert isinstance(private, zarr.Array) and private.shape == (0,)
    assert "holds no data" in private.attrs["xec"]
    sensors = members["sensors/new@1"]
    assert isinstance(sensors, zarr.Array) and sensors.shape == (200, 4760, 2)
    assert open_store(store).metadata["format_version"] == FORMAT_VERSION == 2


def test_a_format_1_store_opens_and_an_append_upgrades_it(store: Path, tmp_path: Path) -> None:
    import shutil

    old = tmp_path / "old.xec.zarr"
    shutil.copytree(store, old)
    (old / META_NODE).unlink()  # format 1: _xec is a plain folder
    meta = read_metadata(old)
    assert meta is not None
    meta["format_version"] = 1
    write_metadata(old, meta)
    write_complete(old, meta)
    _, messages = _walk_with_plain_zarr(old)
    assert any("Object at _xec is not recognized" in m for m in messages)  # what 1 did
    st = open_store(old)
    assert st.metadata["format_version"] == 1 and st.n_events == 200
    before = st.read_array("emiAng", 0, 200)
    write_uproot(tmp_path / "b.root", 70, seed=2, baskets=1)
    ingest([tmp_path / "b.root"], old, append=True, workers=1, progress=False)
    st = open_store(old)
    assert st.metadata["format_version"] == 2 and st.n_events == 270
    assert np.array_equal(st.read_array("emiAng", 0, 200), before)
    assert json.loads((old / META_NODE).read_text())["node_type"] == "array"
    assert _walk_with_plain_zarr(old)[1] == []
