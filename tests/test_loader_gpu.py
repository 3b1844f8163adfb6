"""GPU backends (run with `pytest -m gpu` where CUDA is available): pinned, resident on the
device and DALI on the device yield the cpu backend's batches exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from xecdata.loaders import Batch, ReweightConfig, open_loader

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]
TARGETS = ["energyTruth", "emiAng", "run"]


@pytest.fixture(scope="module")
def store_path(toy_store: Path) -> Path:
    return toy_store


def epoch(path: Path, **kw: Any) -> list[Batch]:
    opts = {
        "scheme": "new@1",
        "batch_size": 100,
        "seed": 5,
        "shuffle_window": 128,
        "targets": TARGETS,
        "reweight": ReweightConfig(energy=10),
        "drop_last": False,
    } | kw
    out = []
    for b in open_loader(path, **opts):
        assert b.sensors.device.type == torch.device(opts.get("device", "cpu")).type
        # clone: the loaders reuse their output buffers (and .cpu() of a CPU tensor is itself)
        cpu = {k: v.clone().cpu() for k, v in b.targets.items()}
        out.append(Batch(b.sensors.clone().cpu(), cpu, b.weights.clone().cpu(),
                         b.index.clone().cpu()))  # fmt: skip
    return out


def lagging_epoch(path: Path, backend: str) -> list[Batch]:
    """The consumer's stream lags far behind the loader (a long sleep kernel per batch) and the
    batches are cloned on the device without a host sync: a loader that refilled an output
    slot before the consumer's stream had read it would show here as different values."""
    kept = []
    loader = open_loader(path, scheme="new@1", batch_size=100, seed=5, shuffle_window=128,
                         targets=TARGETS, drop_last=False, backend=backend,
                         device="cuda", threads=2)  # fmt: skip
    for b in loader:
        torch.cuda._sleep(20_000_000)  # ~10 ms of GPU time before the clones run
        kept.append(Batch(b.sensors.clone(), {k: v.clone() for k, v in b.targets.items()},
                          b.weights.clone(), b.index.clone()))  # fmt: skip
    torch.cuda.synchronize()
    return [Batch(k.sensors.cpu(), {n: v.cpu() for n, v in k.targets.items()}, k.weights.cpu(),
                  k.index.cpu()) for k in kept]  # fmt: skip


def same(a: list[Batch], b: list[Batch]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x.index, y.index) and torch.equal(x.sensors, y.sensors)
        assert torch.equal(x.weights, y.weights)
        assert all(torch.equal(x.targets[k], y.targets[k]) for k in TARGETS)


@pytest.mark.parametrize("backend", ["pinned", "resident", "dali", "auto"])
def test_gpu_backends_equal_cpu(store_path: Path, backend: str) -> None:
    ref = epoch(store_path, backend="cpu")
    same(ref, epoch(store_path, backend=backend, device="cuda", threads=2))


@pytest.mark.parametrize("backend", ["pinned", "resident", "dali"])
def test_a_lagging_consumer_still_gets_its_own_batches(store_path: Path, backend: str) -> None:
    reweight = {"reweight": None}
    ref = epoch(store_path, backend="cpu", **reweight)
    got = lagging_epoch(store_path, backend)
    assert len(got) == len(ref)
    for x, y in zip(ref, got, strict=True):
        assert torch.equal(x.index, y.index) and torch.equal(x.sensors, y.sensors)


def test_auto_picks_a_device_backend(store_path: Path) -> None:
    loader = open_loader(store_path, scheme="new@1", batch_size=64, device="cuda")
    assert loader.info.backend in ("resident", "pinned")


def test_pinned_bf16_and_two_epochs(store_path: Path) -> None:
    ref = epoch(store_path, backend="cpu", dtype=torch.bfloat16)
    same(ref, epoch(store_path, backend="pinned", device="cuda", dtype=torch.bfloat16))
    loader = open_loader(store_path, scheme="new@1", batch_size=64, backend="pinned", device="cuda")
    n = [sum(1 for _ in loader) for _ in range(2)]
    assert n == [len(loader)] * 2
    assert loader.host_bytes() < 64 << 20  # pinned staging + indices only
