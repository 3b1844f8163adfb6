"""Loader backends on a real (small) store: same events, same order, coverage, ranks, resume,
weights, refusals, bounded memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.loader_stores import unfinished_copy
from xecdata.loaders import Batch, ReweightConfig, open_loader
from xecdata.store import IncompleteStoreError, SchemeMismatchError, open_store

TARGETS = ["energyTruth", "emiAng", "uvwTruth", "run"]


@pytest.fixture(scope="session")
def store_path(toy_store: Path) -> Path:
    return toy_store


def epoch(path: Any, **kw: Any) -> list[Batch]:
    """All batches of one epoch, cloned (loaders reuse their output buffers)."""
    opts = {"scheme": "new@1", "batch_size": 100, "seed": 3, "shuffle_window": 128} | kw
    loader = open_loader(path, **opts)
    return [b.clone() for b in loader]


def cat(batches: list[Batch], field: str) -> torch.Tensor:
    return torch.cat([getattr(b, field) for b in batches])


def targets(batches: list[Batch], name: str) -> torch.Tensor:
    return torch.cat([b.targets[name] for b in batches])


def assert_same_batches(a: list[Batch], b: list[Batch]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x.index, y.index)
        assert torch.equal(x.sensors, y.sensors)
        assert torch.equal(x.weights, y.weights)
        assert x.targets.keys() == y.targets.keys()
        assert all(torch.equal(x.targets[k], y.targets[k]) for k in x.targets)


def test_cpu_resident_dali_identical_and_root_within_quantization(store_path: Path) -> None:
    kw = {"targets": TARGETS, "reweight": ReweightConfig(energy=10), "drop_last": False}
    ref = epoch(store_path, backend="cpu", **kw)
    assert_same_batches(ref, epoch(store_path, backend="resident", **kw))
    assert_same_batches(ref, epoch(store_path, backend="dali", threads=2, **kw))
    root = epoch(store_path, backend="root", **kw)
    assert torch.equal(cat(ref, "index"), cat(root, "index"))
    assert torch.equal(cat(ref, "weights"), cat(root, "weights"))
    for k in TARGETS:
        assert torch.equal(targets(ref, k), targets(root, k))
    precision = open_store(store_path).precision("new@1")
    x, y = cat(ref, "sensors"), cat(root, "sensors")
    for ch, name in enumerate(("npho", "time")):
        tol = 0.5 * precision[name]["step"] * (1 + 1e-3) + 1e-6
        diff = (x[..., ch] - y[..., ch]).abs()
        assert diff.max().item() <= tol
        assert torch.equal(x[..., ch] == -1.0, y[..., ch] == -1.0)  # same invalid channels


def test_each_training_event_exactly_once(store_path: Path) -> None:
    batches = epoch(store_path, drop_last=False)
    idx = np.sort(cat(batches, "index").numpy())
    ranges = open_store(store_path).split("train")
    expected = np.concatenate([np.arange(a, b) for a, b in ranges])
    assert np.array_equal(idx, expected)
    assert all(len(b) == 100 for b in batches[:-1]) and len(batches[-1]) == len(idx) % 100


def test_sensors_and_targets_match_the_store(store_path: Path) -> None:
    st = open_store(store_path)
    batch = epoch(store_path, targets=TARGETS)[2]
    for i in (0, 17, 99):
        g = int(batch.index[i])
        np.testing.assert_array_equal(
            batch.sensors[i].numpy(), st.read_sensors("new@1", g, g + 1)[0]
        )
        for k in TARGETS:
            want = st.read_array(k, g, g + 1)[0]
            np.testing.assert_array_equal(batch.targets[k][i].numpy(), want)
    assert batch.targets["run"].dtype == torch.int64 and batch.weights.eq(1).all()


def test_same_seed_same_order_epochs_differ(store_path: Path) -> None:
    a, b = epoch(store_path), epoch(store_path)
    assert_same_batches(a, b)
    loader = open_loader(store_path, scheme="new@1", batch_size=100, seed=3, shuffle_window=128)
    first = cat([x.clone() for x in loader], "index")
    second = cat([x.clone() for x in loader], "index")  # a finished epoch moves on by itself
    assert torch.equal(first, cat(a, "index")) and not torch.equal(first, second)
    loader.set_epoch(0)
    assert torch.equal(cat([x.clone() for x in loader], "index"), first)
    other = cat(epoch(store_path, seed=4), "index")
    assert not torch.equal(first, other)


def test_two_ranks_disjoint_complete_equal_batch_counts(store_path: Path) -> None:
    shards = [epoch(store_path, rank=r, world_size=2, drop_last=False) for r in range(2)]
    assert len(shards[0]) == len(shards[1])
    idx = [cat(s, "index").numpy() for s in shards]
    assert not set(idx[0]) & set(idx[1])
    n_train = int(np.diff(open_store(store_path).split("train")).sum())
    assert len(np.union1d(idx[0], idx[1])) == n_train == len(idx[0]) + len(idx[1])


@pytest.mark.parametrize("backend", ["cpu", "resident", "dali"])
def test_three_ranks_without_padding_give_the_split_exactly_once(
    store_path: Path, backend: str
) -> None:
    """even_batches=False (validation under DDP): the val split exactly once over the ranks,
    each event's sensors equal to the single-process loader's."""
    kw = {"split": "val", "shuffle": False, "drop_last": False, "backend": backend}
    alone = epoch(store_path, **kw)
    shards = [epoch(store_path, rank=r, world_size=3, even_batches=False, **kw) for r in range(3)]
    idx = np.concatenate([cat(s, "index").numpy() for s in shards])
    assert np.array_equal(idx, cat(alone, "index").numpy())  # unshuffled: the store order
    assert torch.equal(torch.cat([cat(s, "sensors") for s in shards]), cat(alone, "sensors"))


def test_resume_mid_epoch_reproduces_the_rest(store_path: Path) -> None:
    kw = {"scheme": "new@1", "batch_size": 100, "seed": 9, "shuffle_window": 128}
    full = [b.clone() for b in open_loader(store_path, **kw)]
    loader = open_loader(store_path, **kw)
    it = iter(loader)
    head = [next(it).clone() for _ in range(4)]
    state = loader.state_dict()
    it.close()
    assert state["epoch"] == 0 and state["batches"] == 4
    resumed = open_loader(store_path, **kw)
    resumed.load_state_dict(state)
    assert_same_batches(full, head + [b.clone() for b in resumed])


def test_weights_mean_one_and_flatten_the_training_histogram(store_path: Path) -> None:
    batches = epoch(
        store_path, targets=["energyTruth"], drop_last=False, reweight=ReweightConfig(energy=8)
    )
    w = cat(batches, "weights").double().numpy()
    e = targets(batches, "energyTruth").double().numpy()
    assert abs(w.mean() - 1) < 1e-5
    edges = np.linspace(e.min(), e.max(), 9)
    counts = np.histogram(e, edges)[0]
    flat = np.histogram(e, edges, weights=w)[0]
    assert counts.max() / counts.min() > 1.1  # something to flatten...
    assert flat.max() / flat.min() < 1.001  # ...flat after weighting


def test_other_scheme_and_unfinished_store_are_refused(store_path: Path, tmp_path: Path) -> None:
    with pytest.raises(SchemeMismatchError, match=r"legacy@1.*new@1.*xec renormalize"):
        open_loader(store_path, scheme="legacy@1", batch_size=10)
    broken = unfinished_copy(store_path, tmp_path / "u.xec.zarr")
    with pytest.raises(IncompleteStoreError, match="not complete"):
        open_loader(broken, scheme="new@1", batch_size=10)


def test_bfloat16_batches_are_the_float32_ones_rounded(store_path: Path) -> None:
    f32, bf16 = epoch(store_path), epoch(store_path, dtype=torch.bfloat16)
    assert bf16[0].sensors.dtype == torch.bfloat16
    assert torch.equal(cat(f32, "sensors").to(torch.bfloat16), cat(bf16, "sensors"))


class ShiftedSplit:
    """A store whose training split is not chunk-aligned (cuts into chunks at both ends)."""

    def __init__(self, store: Any, ranges: list[list[int]]):
        self._store, self._ranges = store, np.array(ranges)

    def split(self, name: str) -> np.ndarray:
        return self._ranges

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def test_split_not_chunk_aligned(store_path: Path) -> None:
    store = ShiftedSplit(open_store(store_path), [[5, 300], [333, 1190]])
    a = epoch(store, backend="cpu", drop_last=False)
    assert_same_batches(a, epoch(store, backend="resident", drop_last=False))
    idx = np.sort(cat(a, "index").numpy())
    assert np.array_equal(idx, np.r_[5:300, 333:1190])


def test_resident_refuses_a_split_that_does_not_fit(store_path: Path, monkeypatch: Any) -> None:
    from xecdata.loaders.backends import resident

    monkeypatch.setattr(resident, "free_bytes", lambda device: 1_000_000)
    with pytest.raises(MemoryError, match=r"needs .* GB .* only 0.00 GB are free.*pinned"):
        open_loader(store_path, scheme="new@1", batch_size=10, backend="resident")


def test_host_memory_is_bounded_by_the_buffers(store_path: Path) -> None:
    import tracemalloc

    kw = {"scheme": "new@1", "batch_size": 50, "shuffle_window": 64, "ring": 1, "threads": 2}
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        loader = open_loader(store_path, **kw)
        for _ in range(2):
            for _batch in loader:
                pass
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    st = open_store(store_path)
    split_bytes = int(np.diff(st.split("train")).sum()) * 4760 * 2 * 4
    bound = loader.host_bytes()
    assert bound < split_bytes / 3  # the bound is far below the data it streams
    # numpy buffers are traced (the ring); the torch outputs are not, but are in the bound
    chunk = st.chunk_events * 4760 * 2 * 2
    assert peak < bound + 4 * chunk + (8 << 20)
    ring = loader.backend.ring
    assert ring.nbytes == ring.slots * st.chunk_events * (4760 * 2 * 2 + 4)


def test_augment_in_the_loader_is_seeded_and_off_by_default(store_path: Path) -> None:
    from xecdata.loaders import AugmentConfig

    plain = epoch(store_path)
    assert_same_batches(plain, epoch(store_path, augment=AugmentConfig()))
    cfg = AugmentConfig(channel_dropout=0.2)
    a, b = epoch(store_path, augment=cfg), epoch(store_path, augment=cfg)
    assert_same_batches(a, b)
    x, x0 = cat(a, "sensors"), cat(plain, "sensors")
    changed = (x != x0).any(-1)
    assert changed.float().mean() > 0.1 and bool((x[changed] == -1.0).all())


def test_uncompressed_store_read_through_maps_gives_the_same_batches(
    store_path: Path, toy_plain_store: Path
) -> None:
    """Uncompressed stores: cpu gathers from the mapped shards (fused kernel and fallback)."""
    import xecdata.store.decoder as codes
    from xecdata.loaders.source import MappedChunks

    plain = toy_plain_store
    loader = open_loader(plain, scheme="new@1", batch_size=100, seed=3, shuffle_window=128)
    assert isinstance(loader.backend.source.chunks, MappedChunks)
    assert loader.backend.source.zero_copy  # gathered straight from the shard maps
    ref = epoch(store_path)
    assert_same_batches(ref, [b.clone() for b in loader])
    assert loader.backend.ring.sensors.size == 0  # no ring copy of the codes
    kernel, codes._SCATTER = codes._SCATTER, None  # the numpy fallback of the same path
    try:
        assert_same_batches(ref, epoch(plain))
    finally:
        codes._SCATTER = kernel
    assert_same_batches(ref, epoch(plain, backend="resident"))


def test_numpy_fallback_decoder_equals_the_fused_kernel(store_path: Path, monkeypatch: Any) -> None:
    import xecdata.store.decoder as codes

    fused = epoch(store_path)
    monkeypatch.setattr(codes, "_KERNEL", None)
    assert_same_batches(fused, epoch(store_path))


def test_dali_callback_survives_pickling_for_spawned_workers(store_path: Path) -> None:
    import pickle
    from types import SimpleNamespace

    from xecdata.loaders.backends.dali import ChunkCallback
    from xecdata.loaders.sampler import plan_epoch

    loader = open_loader(store_path, scheme="new@1", batch_size=100, backend="dali", seed=3)
    be = loader.backend
    callback = pickle.loads(pickle.dumps(ChunkCallback(be.make_source, be.layout, be.cfg, 2, 1)))
    raw, weights = callback(SimpleNamespace(idx_in_epoch=0))[:2]
    plan = plan_epoch(loader.layout, loader.cfg, 2)
    st = open_store(store_path)
    start = int(plan.seg_chunk[1]) * st.chunk_events
    want = st.read_sensors("new@1", start, start + len(raw))
    got = np.empty(want.shape, np.float32)
    be.source.decoder.decode_into(raw.view(np.uint16), got)
    assert np.array_equal(got, want) and weights.tolist() == [1.0] * len(raw)
    with pytest.raises(StopIteration):
        callback(SimpleNamespace(idx_in_epoch=plan.n_segments))


def test_device_assembly_path_on_cpu_equals_the_host_path(store_path: Path) -> None:
    """The torch gather + decode that pinned / resident / dali run on a GPU, run on the CPU."""
    from xecdata.loaders.backends.pinned import DeviceOut, DeviceRing, assemble_device
    from xecdata.loaders.sampler import plan_epoch

    kw = {"targets": TARGETS, "reweight": ReweightConfig(energy=10), "drop_last": False}
    ref = epoch(store_path, **kw)
    loader = open_loader(
        store_path, scheme="new@1", batch_size=100, seed=3, shuffle_window=128, **kw
    )
    source, cpu = loader.backend.source, torch.device("cpu")
    plan = plan_epoch(loader.layout, loader.cfg, 0)
    ring = DeviceRing(plan.n_segments, source, cpu)
    for seg in range(plan.n_segments):
        sensors, targets, weights = ring.views(seg)
        source.read(
            int(plan.seg_chunk[seg]),
            sensors.numpy().view(np.uint16),
            {k: v.numpy() for k, v in targets.items()},
            weights.numpy(),
        )
    out = DeviceOut(2, 100, source, torch.float32, cpu)
    got = []
    for j in range(plan.n_batches):
        assemble_device(plan, j, j % 2, np.arange(plan.n_segments), ring, out, source.decoder)
        got.append(out.batch(j % 2).clone())
    assert_same_batches(ref, got)
