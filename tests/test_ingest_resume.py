"""Crash safety: kill -9 mid-ingest, re-run the same command, get the same bytes; an unfinished
store is never opened as complete; another command cannot hijack an unfinished store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xecdata.ingest import IngestError, ingest
from xecdata.store import IncompleteStoreError, open_store
from xecdata.store.describe import describe

from .rootfiles import array_bytes, write_uproot

ARGS = [
    "--chunk-events",
    "32",
    "--shard-chunks",
    "2",
    "--keep-raw",
    "--scheme",
    "new@1",
    "--scheme",
    "legacy@1",
    "--quiet",
]


def _markers(store) -> int:
    units = store / "_xec" / "units"
    return len(list(units.glob("u*.json"))) if units.exists() else 0


def _run_and_kill(cmd: list[str], store, after_markers: int) -> bool:
    """Start the ingest in its own session; SIGKILL the whole group once `after_markers` unit
    markers exist. Returns False if it finished first."""
    proc = subprocess.Popen(cmd, start_new_session=True)
    deadline = time.monotonic() + 120
    while proc.poll() is None and _markers(store) < after_markers and time.monotonic() < deadline:
        time.sleep(0.005)
    if proc.poll() is not None:
        return False
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return True


def test_kill_9_then_rerun_gives_the_bytes_of_an_uninterrupted_run(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        write_uproot(src / f"f{i}.root", 400, seed=20 + i, baskets=5)
    ref = tmp_path / "ref.xec.zarr"
    ingest(
        [src],
        ref,
        schemes=["new@1", "legacy@1"],
        keep_raw=True,
        workers=1,
        chunk_events=32,
        shard_chunks=2,
        progress=False,
    )
    out = tmp_path / "out.xec.zarr"
    cmd = [sys.executable, "-m", "xec_cli.main", "ingest", str(src), "-o", str(out), *ARGS]
    killed = _run_and_kill([*cmd, "--workers", "2"], out, after_markers=2)
    assert killed, "the ingest finished before it could be killed; make the input larger"
    with pytest.raises(IncompleteStoreError, match="Re-run the same `xec ingest`"):
        open_store(out)
    pending = describe(out)["pending"]
    assert pending["action"] == "ingest" and 2 <= pending["units_done"] < pending["units"]
    with pytest.raises(IngestError, match="unfinished"):  # another request cannot take over
        ingest([src], out, schemes=["legacy@1"], progress=False)
    _run_and_kill([*cmd, "--workers", "1"], out, after_markers=pending["units_done"] + 3)
    done = subprocess.run([*cmd, "--workers", "2"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "already done" in done.stdout
    assert open_store(out).complete
    assert array_bytes(out) == array_bytes(ref)
    assert not list(out.rglob(".*.tmp-*"))


def _alive_in_group(pgid: int) -> list[str]:
    """'pid state command' of the live (not zombie) processes of process group `pgid`."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # exited meanwhile
            continue
        comm_end = text.rindex(")")
        state, _ppid, group = text[comm_end + 2 :].split()[:3]
        if int(group) == pgid and state != "Z":
            out.append(f"{stat.parent.name} {state} {text[: comm_end + 1]}")
    return out


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_kill_9_of_the_ingest_process_takes_its_workers_and_forkserver_along(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        write_uproot(src / f"f{i}.root", 400, seed=30 + i, baskets=5)
    out = tmp_path / "out.xec.zarr"
    cmd = [sys.executable, "-m", "xec_cli.main", "ingest", str(src), "-o", str(out), *ARGS,
           "--workers", "2"]  # fmt: skip
    proc = subprocess.Popen(cmd, start_new_session=True)  # its own group: pgid == pid
    deadline = time.monotonic() + 120
    while proc.poll() is None and _markers(out) < 1 and time.monotonic() < deadline:
        time.sleep(0.005)
    helpers = [p for p in _alive_in_group(proc.pid) if not p.startswith(f"{proc.pid} ")]
    assert proc.poll() is None and len(helpers) >= 3, helpers  # forkserver + 2 workers (+ tracker)
    os.kill(proc.pid, signal.SIGKILL)  # the main process only, as a batch system or OOM might
    proc.wait()
    deadline = time.monotonic() + 5
    while (left := _alive_in_group(proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for p in left:  # do not leave them behind, whatever the outcome
        os.kill(int(p.split()[0]), signal.SIGKILL)
    assert not left, f"processes outlived the killed ingest: {left}"
