"""docs/store-format.md is complete: a reader written from it alone (tests/store_spec_reader.py,
plain zarr + numpy) gets the loaders' batches bit for bit, the raw arrays, the statistics and
the physical values, for every scheme, both splits and two codec profiles."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from tests.rootfiles import fake_events, write_uproot
from tests.store_spec_reader import SpecStore
from xecdata.ingest import ingest
from xecdata.loaders import open_loader
from xecdata.store import open_store

TARGETS = ("emiAng", "energyTruth", "uvwTruth", "nGamma", "run", "event")


@pytest.fixture(scope="module", params=["fast", "gpu"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two files (one jagged), two schemes, raw arrays kept, a val split, short last chunk."""
    root = tmp_path_factory.mktemp(f"spec_{request.param}")
    write_uproot(root / "a.root", 45, seed=7, baskets=2)
    write_uproot(root / "b.root", 38, seed=8, jagged=True)
    out = root / "s.xec.zarr"
    ingest([root / "a.root", root / "b.root"], out, schemes=["new@1", "legacy@1"],
           keep_raw=True, codec=request.param, val_fraction=0.25, chunk_events=8,
           shard_chunks=2, workers=1, progress=False)  # fmt: skip
    return out


@pytest.mark.parametrize("scheme", ["new@1", "legacy@1"])
@pytest.mark.parametrize("split", ["train", "val"])
def test_spec_reader_batches_equal_the_loaders(store: Path, scheme: str, split: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # plain zarr opens the store without a warning
        spec = SpecStore(store)
        got = list(spec.batches(scheme, split, 12, TARGETS))
    loader = open_loader(store, scheme=scheme, split=split, batch_size=12, backend="cpu",
                         shuffle=False, drop_last=False, targets=TARGETS)  # fmt: skip
    want = [b.clone() for b in loader]
    assert len(got) == len(want) > 1
    for (x, cols, idx), b in zip(got, want, strict=True):
        assert np.array_equal(idx, b.index.numpy())
        bits = b.sensors.numpy().view(np.uint32)  # bit for bit, NaN-safe
        assert x.dtype == np.float32 and np.array_equal(x.view(np.uint32), bits)
        for name in TARGETS:
            assert cols[name].dtype == b.targets[name].numpy().dtype, name
            assert np.array_equal(cols[name], b.targets[name].numpy()), name


def test_spec_reader_raw_stats_splits_and_units(store: Path) -> None:
    spec, st = SpecStore(store), open_store(store)
    assert spec.n_events == 83
    train, val = spec.split_events("train"), spec.split_events("val")
    assert len(train) + len(val) == 83 and not set(train) & set(val) and len(val) >= 8
    everything = np.arange(83)
    a, b = fake_events(45, seed=7), fake_events(38, seed=8)
    for channel, branch in (("npho", "npho"), ("time", "relative_time")):
        raw = spec.group[spec.meta["raw"]["arrays"][channel]][...]
        assert np.array_equal(raw, np.concatenate([a[branch], b[branch]]))
    energy = spec.column("energyTruth", everything)
    assert np.array_equal(energy, np.concatenate([a["energyTruth"], b["energyTruth"]]))
    for scheme in ("new@1", "legacy@1"):
        stats = spec.group[spec.meta["schemes"][scheme]["stats"]["array"]][...]
        want = st.stats(scheme)
        for i, name in enumerate(spec.meta["schemes"][scheme]["stats"]["fields"]):
            np.testing.assert_array_equal(stats[i], want[name])
        x = spec.sensors(scheme, everything)
        npho, time = spec.physical(scheme, x)
        ref_npho, ref_time = st.scheme(scheme).denormalize(x)
        np.testing.assert_array_equal(npho, ref_npho)
        np.testing.assert_array_equal(time, ref_time)
        raw = np.concatenate([a["npho"], b["npho"]]).astype(np.float64)
        ok = np.isfinite(npho) & (raw > 1) & (raw < 1e5)
        tol = np.maximum(0.1 * np.sqrt(raw[ok]), 1e-3 * raw[ok])  # the documented precision
        assert np.all(np.abs(npho[ok] - raw[ok]) <= tol)
