"""Histogram reweighting: mean 1, flat weighted training histograms, combination, cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xecdata.reweight import (
    ReweightConfig,
    Reweighter,
    fit,
    fit_reweighter,
    reweight_command,
    write_reweighter,
)


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

    def __init__(self, path: Path, truth: dict[str, np.ndarray], train: int):
        self.path, self.truth, self.reads = path, truth, 0
        self.metadata = {"content_id": "fake-1"}
        self.train = np.array([[0, train]])

    def read_array(self, name: str, start: int, stop: int) -> np.ndarray:
        self.reads += 1
        return self.truth[name][start:stop]

    def split(self, name: str) -> np.ndarray:
        return self.train


def test_xec_reweight_writes_once_readers_read_and_fit_in_memory_otherwise(tmp_path):
    store = FakeStore(tmp_path, skewed_truth(3000), 2500)
    config = ReweightConfig(energy=12)
    in_memory = fit_reweighter(store, config, store.train)
    assert not (tmp_path / "_xec").exists()  # readers never write
    _, path, written = write_reweighter(store, config)
    assert written and path.parent == tmp_path / "_xec" / "reweight"
    assert not list(path.parent.glob(".*tmp*"))  # atomic: no temporary left
    reads = store.reads
    cached = fit_reweighter(store, ReweightConfig(energy=(12,)), store.train)  # same bins
    assert store.reads == reads  # served from the cache
    assert np.array_equal(cached.weights(store.truth), in_memory.weights(store.truth))
    assert write_reweighter(store, config)[2] is False  # already there
    fit_reweighter(store, ReweightConfig(energy=13), store.train)
    assert store.reads > reads and len(list(path.parent.iterdir())) == 1  # other key, no write
    assert reweight_command(store, ReweightConfig(angle=(5, 6), uvw=(4, 5), eps=1e-3)) == (
        f"xec reweight {tmp_path} --task angle=5,6 --task uvw=4,5,5 --eps 0.001"
    )


def test_loaders_and_xec_reweight_on_a_read_only_store(tmp_path, monkeypatch, toy_store):
    import shutil

    from click.testing import CliRunner

    import xecdata.reweight as reweight
    from tests.readonly import read_only
    from xec_cli.main import main
    from xecdata.loaders import open_loader

    store = shutil.copytree(toy_store, tmp_path / "a.xec.zarr")  # xec reweight writes to it

    def weights() -> np.ndarray:
        rw = ReweightConfig(energy=10)
        loader = open_loader(store, scheme="new@1", batch_size=100, drop_last=False,
                             reweight=rw, targets=["energyTruth"])  # fmt: skip
        return np.concatenate([b.weights.numpy() for b in loader])

    with read_only(store):
        fitted_here = weights()  # fitted in memory, nothing written
        res = CliRunner().invoke(main, ["reweight", str(store), "--task", "energy=10"])
        assert res.exit_code != 0 and "Error:" in res.output  # the writer says it cannot
    assert abs(fitted_here.mean() - 1) < 0.05
    res = CliRunner().invoke(main, ["reweight", str(store), "--task", "energy=10"])
    assert res.exit_code == 0 and "written to" in res.output, res.output
    monkeypatch.setattr(reweight, "fit", lambda *a: pytest.fail("refitted despite the cache"))
    with read_only(store):
        assert np.array_equal(weights(), fitted_here)
