"""Histogram reweighting: mean 1, flat weighted training histograms, combination, cache."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from xecdata.reweight import ReweightConfig, Reweighter, fit, fit_reweighter


def skewed_truth(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Strongly non-uniform truth: the reweighting has something to flatten."""
    rng = np.random.default_rng(seed)
    theta = 90 + 25 * rng.standard_normal(n).clip(-2.5, 2.5)
    phi = rng.triangular(-60, -60, 60, n)
    return {
        "emiAng": np.stack([theta, phi], 1).astype(np.float32),
        "energyTruth": (0.015 + rng.exponential(0.01, n)).astype(np.float32),
        "timeTruth": rng.normal(0, 1, n).astype(np.float32),
        "uvwTruth": np.stack(
            [rng.uniform(-20, 20, n), rng.normal(0, 30, n), rng.exponential(3, n)], 1
        ).astype(np.float32),
    }


def fitted(config: ReweightConfig, truth: dict[str, np.ndarray]) -> Reweighter:
    return fit(config, lambda: iter([truth]))


def weighted_hist(rw: Reweighter, task: str, truth: dict, w: np.ndarray) -> np.ndarray:
    table = rw.tables[task]
    name = {"angle": "emiAng", "energy": "energyTruth", "timing": "timeTruth"}[task]
    idx = table.bin_index(np.asarray(truth[name], np.float64).reshape(len(w), -1))
    return np.bincount(idx, weights=w, minlength=table.factor.size)


@pytest.mark.parametrize("task", ["angle", "energy", "timing"])
def test_single_task_weights_have_mean_one_and_flatten(task: str) -> None:
    truth = skewed_truth(20000)
    rw = fitted(ReweightConfig.defaults(task), truth)
    w = rw.weights(truth)
    assert abs(w.mean() - 1) < 1e-6
    counts = rw.tables[task].counts.ravel()
    before = counts[counts > 0]
    after = weighted_hist(rw, task, truth, w)[counts > 0]
    assert before.max() / before.min() > 20  # the input was far from flat
    assert after.max() / after.min() < 1.0001  # ...and is flat after weighting
    chi2 = np.sum((after - after.mean()) ** 2 / after.mean())
    assert chi2 / (len(after) - 1) < 1e-6


def test_bins_follow_the_configuration() -> None:
    truth = skewed_truth(5000)
    rw = fitted(ReweightConfig(angle=(20, 20), energy=30, uvw=(10, 8)), truth)
    assert rw.tables["angle"].factor.shape == (20, 20)
    assert rw.tables["energy"].factor.shape == (30,)
    assert rw.tables["uvw"].factor.shape == (10, 8, 8)  # a 2-tuple: w uses the v count
    assert rw.tables["angle"].lo == pytest.approx(truth["emiAng"].min(0), rel=1e-6)


def test_tasks_multiply_and_the_product_is_renormalized() -> None:
    truth = skewed_truth(10000)
    both = fitted(ReweightConfig(angle=(10, 10), energy=20), truth)
    a = fitted(ReweightConfig(angle=(10, 10)), truth).weights(truth).astype(np.float64)
    e = fitted(ReweightConfig(energy=20), truth).weights(truth).astype(np.float64)
    w = both.weights(truth)
    assert abs(w.mean() - 1) < 1e-6
    expected = a * e / np.mean(a * e)
    np.testing.assert_allclose(w, expected, rtol=1e-5)


def test_invalid_truth_gets_zero_and_outside_range_gets_edge_bins() -> None:
    truth = skewed_truth(4000)
    rw = fitted(ReweightConfig(energy=10), truth)
    probe = {"energyTruth": np.array([np.nan, 1e10, -1.0, 10.0], np.float32)}
    w = rw.weights(probe)
    assert w[0] == 0 and w[1] == 0
    low = rw.tables["energy"].factor[0] / rw.norm
    high = rw.tables["energy"].factor[-1] / rw.norm
    assert w[2] == pytest.approx(low, rel=1e-6) and w[3] == pytest.approx(high, rel=1e-6)


def test_round_trip_through_dict() -> None:
    truth = skewed_truth(3000)
    rw = fitted(ReweightConfig(angle=(5, 6), timing=7), truth)
    back = Reweighter.from_dict(rw.to_dict())
    assert np.array_equal(back.weights(truth), rw.weights(truth))


class FakeStore:
    """The slice of the Store API the reweighter reads, counting reads."""

    def __init__(self, path: Path, truth: dict[str, np.ndarray]):
        self.path, self.truth, self.reads = path, truth, 0
        self.metadata = {"content_id": "fake-1"}

    def read_array(self, name: str, start: int, stop: int) -> np.ndarray:
        self.reads += 1
        return self.truth[name][start:stop]


def test_fit_is_cached_in_the_store_and_keyed_by_settings(tmp_path: Path) -> None:
    import zarr

    zarr.open_group(str(tmp_path / "s.zarr"), mode="w")
    store = FakeStore(tmp_path / "s.zarr", skewed_truth(3000))
    ranges = np.array([[0, 2500]])
    first = fit_reweighter(store, ReweightConfig(energy=12), ranges)
    reads = store.reads
    again = fit_reweighter(store, ReweightConfig(energy=12), ranges)
    assert store.reads == reads  # served from the cache
    assert np.array_equal(again.weights(store.truth), first.weights(store.truth))
    fit_reweighter(store, ReweightConfig(energy=13), ranges)
    assert store.reads > reads  # other settings, other key
    group = zarr.open_group(str(tmp_path / "s.zarr"), mode="r")
    assert len(list(group["cache/reweight"].group_keys())) == 2


def test_unwritable_store_keeps_weights_in_memory_and_warns(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-store"
    blocker.write_text("a file where the store directory should be")
    store = FakeStore(blocker, skewed_truth(2000))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rw = fit_reweighter(store, ReweightConfig(timing=8), np.array([[0, 2000]]))
    assert any("kept in memory" in str(c.message) for c in caught)
    assert abs(rw.weights(store.truth).mean() - 1) < 1e-6
