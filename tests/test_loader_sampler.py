"""The sampler alone (pure functions, no store): coverage, determinism, ranks, windows."""

from __future__ import annotations

import numpy as np
import pytest

from xecdata.loaders.sampler import SamplerConfig, SplitLayout, n_batches, plan_epoch

# a split that is not chunk-aligned: two ranges cutting into chunks, a short last chunk
LAYOUT = SplitLayout.from_split([[5, 100], [130, 1000]], 64, 1010)
SPLIT = np.r_[5:100, 130:1000]


def epoch_indices(cfg: SamplerConfig, epoch: int = 0, layout: SplitLayout = LAYOUT) -> list:
    plan = plan_epoch(layout, cfg, epoch)
    return [plan.global_index(*plan.batch(j)) for j in range(plan.n_batches)]


def test_layout_counts_split_events_per_chunk() -> None:
    assert LAYOUT.n_split == len(SPLIT)
    assert LAYOUT.chunk_counts.sum() == len(SPLIT)
    assert list(LAYOUT.chunk_counts[:3]) == [59, 36, 62]  # 5..63, 64..99, 130..191
    assert np.array_equal(LAYOUT.local_indices(2), np.arange(130 - 128, 64))
    idx = SplitLayout.from_split(np.r_[3:9, 20:22], 4, 30)
    assert idx.ranges.tolist() == [[3, 9], [20, 22]]


def test_each_event_exactly_once_per_epoch() -> None:
    cfg = SamplerConfig(batch_size=50, seed=3, drop_last=False, window=128)
    idx = np.concatenate(epoch_indices(cfg))
    assert len(idx) == len(SPLIT)
    assert np.array_equal(np.sort(idx), SPLIT)


def test_drop_last_yields_full_batches_only() -> None:
    cfg = SamplerConfig(batch_size=50, seed=3, drop_last=True, window=128)
    batches = epoch_indices(cfg)
    assert len(batches) == len(SPLIT) // 50 == n_batches(len(SPLIT), cfg)
    assert all(len(b) == 50 for b in batches)
    flat = np.concatenate(batches)
    assert len(np.unique(flat)) == len(flat) and np.isin(flat, SPLIT).all()


def test_same_seed_same_order_epochs_and_seeds_differ() -> None:
    cfg = SamplerConfig(batch_size=50, seed=7, window=128)
    a, b = np.concatenate(epoch_indices(cfg, 0)), np.concatenate(epoch_indices(cfg, 0))
    assert np.array_equal(a, b)
    c = np.concatenate(epoch_indices(cfg, 1))
    d = np.concatenate(epoch_indices(SamplerConfig(batch_size=50, seed=8, window=128), 0))
    assert not np.array_equal(a, c) and not np.array_equal(a, d)
    # shuffled within windows too: consecutive events are not all consecutive in the store
    assert np.mean(np.diff(a) == 1) < 0.2


def test_no_shuffle_is_store_order() -> None:
    cfg = SamplerConfig(batch_size=50, shuffle=False, drop_last=False)
    assert np.array_equal(np.concatenate(epoch_indices(cfg)), SPLIT)


@pytest.mark.parametrize("world", [2, 3])
def test_rank_shards_disjoint_complete_equal_batches(world: int) -> None:
    layout = SplitLayout.from_split([[0, 960]], 64, 1000)  # 960 divides by 2 and 3
    per_rank = []
    for rank in range(world):
        cfg = SamplerConfig(
            batch_size=40, seed=1, drop_last=False, rank=rank, world_size=world, window=100
        )
        per_rank.append(epoch_indices(cfg, 2, layout))
    assert len({len(b) for b in per_rank}) == 1  # equal batch counts
    flat = [np.concatenate(b) for b in per_rank]
    union = np.concatenate(flat)
    assert len(union) == 960 and np.array_equal(np.sort(union), np.arange(960))


def test_uneven_ranks_pad_by_wrapping_and_keep_batch_counts() -> None:
    per_rank = []
    for rank in range(2):
        cfg = SamplerConfig(batch_size=50, seed=1, drop_last=False, rank=rank, world_size=2)
        per_rank.append(np.concatenate(epoch_indices(cfg)))
    assert len(per_rank[0]) == len(per_rank[1]) == -(-len(SPLIT) // 2)
    union = np.concatenate(per_rank)
    assert np.array_equal(np.unique(union), SPLIT)  # complete; one event repeats (odd count)
    assert len(union) - len(SPLIT) == 1


@pytest.mark.parametrize(("world", "shuffle"), [(2, True), (3, False), (7, True)])
def test_uneven_batches_give_every_event_exactly_once_over_the_ranks(
    world: int, shuffle: bool
) -> None:
    """even_batches=False (validation): no padding, no repeat; batch counts differ by <= 1."""
    per_rank, counts = [], []
    for rank in range(world):
        cfg = SamplerConfig(batch_size=50, seed=1, shuffle=shuffle, drop_last=False, rank=rank,
                            world_size=world, window=128, even_batches=False)  # fmt: skip
        batches = epoch_indices(cfg)
        assert len(batches) == n_batches(len(SPLIT), cfg)
        per_rank.append(np.concatenate(batches))
        counts.append(len(batches))
    union = np.concatenate(per_rank)
    assert len(union) == len(SPLIT) and np.array_equal(np.sort(union), SPLIT)
    sizes = [len(p) for p in per_rank]
    assert max(sizes) - min(sizes) <= 1 and max(counts) - min(counts) <= 1
    if not shuffle:  # contiguous pieces of the store order
        assert np.array_equal(union, SPLIT)
    one = SamplerConfig(batch_size=50, seed=1, shuffle=shuffle, drop_last=False, window=128)
    alone = np.concatenate(epoch_indices(one))  # a world of one: the same as padded
    solo = SamplerConfig(batch_size=50, seed=1, shuffle=shuffle, drop_last=False, window=128,
                         even_batches=False)  # fmt: skip
    assert np.array_equal(np.concatenate(epoch_indices(solo)), alone)


def test_windows_bound_what_a_batch_needs() -> None:
    cfg = SamplerConfig(batch_size=50, seed=5, window=192)
    plan = plan_epoch(LAYOUT, cfg, 0)
    for j in range(plan.n_batches):
        g0, g1 = plan.batch_windows(j)
        assert g1 - g0 <= 1
    sizes = np.diff(plan.group_pos)
    assert (sizes[:-1] >= 192).all()
    # two windows of ~3 full chunks plus partial chunks at most
    assert plan.live_segments() <= 2 * (192 // 64 + 2) + LAYOUT.n_partial_chunks()


def test_too_small_split_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="lower batch_size"):
        plan_epoch(LAYOUT, SamplerConfig(batch_size=2000), 0)


def test_engine_releases_the_last_batch_when_the_consumer_stops_early() -> None:
    """A consumer that breaks out of the epoch still gives its last batch back (on a GPU the
    release marks the consumer's stream, so that output slot is not refilled under it)."""
    from xecdata.loaders.engine import Prefetcher

    plan = plan_epoch(LAYOUT, SamplerConfig(batch_size=16, seed=1), 0)
    released: list[int] = []
    engine = Prefetcher(plan, 0, plan.live_segments() + 1, lambda seg, slot: None,
                        lambda j, slot, seg_slot: None, threads=1, n_out=3,
                        release=released.append)  # fmt: skip
    seen = []
    for j in engine:
        seen.append(j)
        if len(seen) == 5:
            break
    assert seen == [0, 1, 2, 3, 4] and released == [0, 1, 2, 0, 1]  # slots j % 3, the last too
