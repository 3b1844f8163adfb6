"""One store filled by N processes (`xec ingest --part K/N`): the same plan, disjoint units, the
last part completes it (or --finalize), and the bytes equal a one-go ingest whatever the order."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from xec_cli.main import main
from xecdata.ingest import IngestError, ingest
from xecdata.store import IncompleteStoreError, open_store
from xecdata.store.parts import part_files, part_units, plan_id_of
from xecdata.store.plan import read_plan

from .rootfiles import array_bytes, write_uproot

OPTS = {"schemes": ["new@1"], "chunk_events": 32, "shard_chunks": 2, "keep_raw": True}
FLAGS = ["--scheme", "new@1", "--chunk-events", "32", "--shard-chunks", "2", "--keep-raw"]


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for i, n in enumerate((230, 170, 150)):  # 550 events: 9 units of 64
        write_uproot(src / f"f{i}.root", n, seed=60 + i, baskets=3)
    return src


@pytest.fixture(scope="module")
def one_go(sources: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "s.xec.zarr"
    ingest([sources], out, workers=1, progress=False, **OPTS)
    return out


def _sha256s(store: Path) -> list[str]:
    return [s["sha256"] for s in open_store(store).metadata["sources"]]


@pytest.mark.parametrize("order", [(3, 1, 2), (2, 3, 1)])
def test_parts_in_any_order_give_the_bytes_of_a_one_go_ingest(sources, one_go, tmp_path, order):
    out = tmp_path / "p.xec.zarr"
    for n, k in enumerate(order, 1):
        res = ingest([sources], out, workers=1, progress=False, part=(k, 3), **OPTS)
        assert res.complete == (n == 3) and res.units_run == 3  # 9 units in 3 parts
        if n < 3:
            assert "still to run" in res.notes[-1]
            with pytest.raises(IncompleteStoreError):
                open_store(out)
    assert array_bytes(out) == array_bytes(one_go)
    assert _sha256s(out) == _sha256s(one_go)
    assert not list((out / "_xec").glob("complete.*.claim")) and not list(out.rglob(".*.tmp-*"))


def test_units_and_input_hashes_are_shared_out_exactly_once(sources, tmp_path):
    out = tmp_path / "p.xec.zarr"
    ingest([sources], out, workers=1, progress=False, part=(1, 4), **OPTS)
    plan = read_plan(out)
    assert plan is not None and plan["plan_id"] == plan_id_of(plan)
    units = [u for k in range(1, 5) for u in part_units(plan, (k, 4))]
    assert units == list(range(9))  # contiguous blocks, each unit once
    files = sorted(i for k in range(1, 5) for i in part_files(plan, (k, 4)))
    assert files == [0, 1, 2]
    with pytest.raises(IngestError, match=r"units 2-8 are not done"):
        ingest([sources], out, workers=1, progress=False, finalize=True, **OPTS)
    with pytest.raises(IngestError, match="unfinished"):  # other options, other request
        other = OPTS | {"keep_raw": False}
        ingest([sources], out, workers=1, progress=False, part=(2, 4), **other)


def test_concurrent_part_processes_then_finalize(sources, one_go, tmp_path):
    """Three `xec ingest --part` processes at once (they plan concurrently); a stale claim
    keeps them from completing, as if the claiming part had died; --finalize completes."""
    out = tmp_path / "p.xec.zarr"
    out.mkdir()
    (out / "_xec").mkdir()
    base = [sys.executable, "-m", "xec_cli.main", "ingest", str(sources), "-o", str(out),
            *FLAGS, "--workers", "1", "--quiet"]  # fmt: skip
    procs = [subprocess.Popen([*base, "--part", f"{k}/3"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for k in (1, 2, 3)]  # fmt: skip
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    for rc, _, err in results:
        assert rc == 0, err
    assert sum("now holds 550 events" in o for _, o, _ in results) == 1  # one completed
    assert array_bytes(out) == array_bytes(one_go)
    # again, with a claim left behind by a "dead" part: nobody completes, --finalize does
    out2 = tmp_path / "q.xec.zarr"
    ingest([sources], out2, workers=1, progress=False, part=(1, 3), **OPTS)
    plan_id = read_plan(out2)["plan_id"]
    (out2 / "_xec" / f"complete.{plan_id}.claim").write_text("{}")
    for k in (2, 3):
        assert not ingest([sources], out2, workers=1, progress=False, part=(k, 3), **OPTS).complete
    res = CliRunner().invoke(main, ["ingest", str(sources), "-o", str(out2), *FLAGS, "--finalize"])
    assert res.exit_code == 0 and "now holds 550 events" in res.output, res.output
    assert array_bytes(out2) == array_bytes(one_go) and _sha256s(out2) == _sha256s(one_go)
