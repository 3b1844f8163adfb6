"""The loader benchmark: its memory-mapped bound and references copy what they claim, and
`xec bench loader` reports every backend against them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from xec_cli.main import main
from xecdata.loaders.bench import _parallel_copy


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_batch_reference_fills_the_ring_as_a_loader_fills_its_output_slots(threads: int) -> None:
    """Event s lands in row s % B of buffer (s // B) % 3 (cast to the ring's dtype), whatever
    the thread split; blocks that straddle a batch boundary are cut there, none is skipped."""
    n, rows, block = 1000, 64, 7  # 1000 events, batches of 64, 7-event pieces
    mm = np.arange(n * 3, dtype=np.uint16).reshape(n, 3)
    ring = [np.full((rows, 3), -1, np.float32) for _ in range(3)]
    _parallel_copy(mm, threads, block, ring, shared=True)
    for k in range(3):  # each row holds the last event routed to it
        for r in range(rows):
            s = max(e for e in range(r, n, rows) if (e // rows) % 3 == k)
            assert ring[k][r].tolist() == mm[s].astype(np.float32).tolist()


def test_bound_copies_every_event_through_per_thread_buffers() -> None:
    mm = np.arange(100 * 2, dtype=np.uint16).reshape(100, 2)
    ring = [np.zeros((16, 2), np.uint16) for _ in range(2)]
    _parallel_copy(mm, 2, 16, ring, shared=False)
    # thread 0 copied events 0..49 in pieces of 16 (last piece 48..49), thread 1 50..99
    assert ring[0][:2].tolist() == mm[48:50].tolist()
    assert ring[0][2:].tolist() == mm[34:48].tolist()
    assert ring[1][:2].tolist() == mm[98:100].tolist()


@pytest.fixture(scope="module")
def plain_store(toy_plain_store: Path) -> Path:
    return toy_plain_store


def test_bench_loader_cli_reports_backends_against_the_bound(plain_store: Path) -> None:
    args = ["bench", "loader", str(plain_store), "--backend", "cpu", "--threads", "1,2",
            "--batch-size", "50", "--json"]  # fmt: skip
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["profile"] == "none" and out["scheme"] == "new@1"
    n_train = sum(b - a for a, b in _train_ranges(plain_store))
    assert [r["threads"] for r in out["mmap"]] == [1, 2]
    assert {r["events"] for r in out["mmap"]} == {n_train}  # the training events, no more
    names = sorted(r["backend"] for r in out["mmap_to_batch"])
    assert names == ["mmap_to_batch_float32"] * 2 + ["mmap_to_batch_uint16"] * 2
    assert [r["threads"] for r in out["runs"]] == [1, 2]
    bound = max(r["events_per_s"] for r in out["mmap"])
    for run in out["runs"]:
        assert run["backend"] == "cpu" and run["events"] >= n_train - 50
        assert run["gb_per_s"] == pytest.approx(run["events_per_s"] * 19040 / 1e9, rel=1e-3)
        assert run["fraction_of_mmap"] == pytest.approx(run["events_per_s"] / bound, abs=1e-4)


def _train_ranges(path: Path) -> list[tuple[int, int]]:
    from xecdata.store import open_store

    return list(open_store(path).split("train"))


def test_machine_info_names_the_machine_and_the_versions() -> None:
    from xecdata.machine import machine_info

    info = machine_info(("no_such_package_xec", "json"))
    assert info["versions"]["numpy"] == np.__version__
    assert "no_such_package_xec" not in info["versions"]  # absent packages are left out
    assert "json" in info["versions"]
    assert info["cpus"] >= 1 and info["memory_gb"] > 0 and info["cuda"] in (True, False)
    assert len(info["git_commit"]) >= 7 or info["git_commit"] == "unknown"
