"""The ingestion benchmark behind `xec bench ingest` and benchmarks/ingest.py.

In one run, on the same simulated ROOT files (ZLIB level 1, ROOT's default compression):
- bare read: uproot reads the branches the ingest reads into numpy, whole files, one process;
- ingest events/s with 1 worker and with all cores (everything included: pre-pass with
  checksums, units, finalize), and the 1-worker ratio to the bare read (goal >= 0.7);
- bytes/event of each codec profile (the scheme tensor, and the whole store) against the
  source file's bytes/event and its npho + time branches (goal: `fast` <= the zlib source);
- decode speed: `Store.read_chunk_into` over every chunk, 1 thread and all cores, against the
  bare read (goal >= 5x at 1 thread);
- peak RSS per worker.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from xecdata.geometry import N_SENSORS
from xecdata.ingest import ingest
from xecdata.rootio import ID_BRANCHES, RECO_BRANCHES, TRUTH_BRANCHES
from xecdata.store import open_store
from xecdata.store.codecs import PROFILE_NAMES

SCHEME = "new@1"


def machine_info() -> dict[str, Any]:
    """Where the figures were taken."""
    import numcodecs
    import uproot
    import zarr

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "zarr": zarr.__version__,
        "numcodecs": numcodecs.__version__,
        "uproot": uproot.__version__,
        "load_average_1min": os.getloadavg()[0],
        "git_commit": commit,
    }


def bare_read(files: list[Path]) -> float:
    """Seconds for uproot to read the ingested branches of every file into numpy."""
    import uproot

    t0 = time.perf_counter()
    for path in files:
        tree = uproot.open(path)["tree"]
        keep = [b for b in (*TRUTH_BRANCHES, *RECO_BRANCHES, *ID_BRANCHES) if b in tree.keys()]
        tree.arrays(["npho", "relative_time", *keep], library="np")
        tree.file.close()
    return time.perf_counter() - t0


def decode_rate(store_path: Path, threads: int) -> float:
    """Events/s of read_chunk_into over every chunk of the scheme tensor."""
    st = open_store(store_path)
    bufs = [np.empty((st.chunk_events, N_SENSORS, 2), np.float32) for _ in range(threads)]

    def work(t: int) -> int:
        return sum(st.read_chunk_into(SCHEME, c, bufs[t]) for c in range(t, st.n_chunks, threads))

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        n = sum(pool.map(work, range(threads)))
    return n / (time.perf_counter() - t0)


def _ingest(files: list[Path], out: Path, workers: int, codec: str) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    res = ingest(
        [str(f) for f in files],
        out,
        schemes=[SCHEME],
        workers=workers,
        codec=codec,
        progress=False,
        command="xec bench ingest",
    )
    seconds = time.perf_counter() - t0
    meta = open_store(out).metadata
    tensor = meta["arrays"][meta["schemes"][SCHEME]["array"]]["bytes_per_event"]
    total = sum(a["bytes"] for a in meta["arrays"].values()) / meta["n_events"]
    return {
        "events_per_s": res.n_events / seconds,
        "seconds": seconds,
        "peak_rss_mb_per_worker": res.peak_rss_mb,
        "tensor_bytes_per_event": tensor,
        "store_bytes_per_event": total,
    }


def run_benchmark(
    events: int = 8192,
    workers: int | None = None,
    files: int = 4,
    workdir: str | Path | None = None,
) -> dict[str, Any]:
    """Run every measurement; returns the result dict (see module doc)."""
    import uproot

    from xecdata.sim import simulate

    all_cores = workers or os.cpu_count() or 1
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        src = simulate(
            events,
            Path(tmp) / "src",
            seed=7,
            events_per_file=-(-events // files),
            compression="zlib",
            compression_level=1,
        )
        src_bytes = sum(p.stat().st_size for p in src) / events
        branch_bytes = 0.0
        for p in src:
            tree = uproot.open(p)["tree"]
            branch_bytes += sum(tree[b].compressed_bytes for b in ("npho", "relative_time"))
        bare_read(src)  # warm the page cache for every contender
        read_s = min(bare_read(src) for _ in range(2))
        one = _ingest(src, Path(tmp) / "w1.xec.zarr", 1, "fast")
        many = _ingest(src, Path(tmp) / "wn.xec.zarr", all_cores, "fast")
        profiles = {
            "fast": {k: many[k] for k in ("tensor_bytes_per_event", "store_bytes_per_event")}
        }
        for codec in PROFILE_NAMES:
            if codec != "fast":
                r = _ingest(src, Path(tmp) / f"{codec}.xec.zarr", all_cores, codec)
                profiles[codec] = {
                    k: r[k] for k in ("tensor_bytes_per_event", "store_bytes_per_event")
                }
                profiles[codec]["ingest_events_per_s_all_cores"] = r["events_per_s"]
        dec1 = max(decode_rate(Path(tmp) / "w1.xec.zarr", 1) for _ in range(2))
        decn = max(decode_rate(Path(tmp) / "w1.xec.zarr", all_cores) for _ in range(2))
    bare = events / read_s
    return {
        "benchmark": "ingest",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "events": events,
        "files": len(src),
        "scheme": SCHEME,
        "all_cores": all_cores,
        "source": {
            "compression": "ZLIB level 1",
            "bytes_per_event": src_bytes,
            "npho_time_branch_bytes_per_event": branch_bytes / events,
        },
        "bare_uproot_read_events_per_s": bare,
        "ingest_1_worker": one,
        "ingest_all_cores": many,
        "ratio_1_worker_to_bare_read": one["events_per_s"] / bare,
        "codec_profiles": profiles,
        "decode_events_per_s_1_thread": dec1,
        "decode_events_per_s_all_cores": decn,
        "decode_1_thread_over_bare_read": dec1 / bare,
        "goals": {
            "ratio_1_worker >= 0.7": one["events_per_s"] / bare >= 0.7,
            "fast <= zlib source bytes/event": profiles["fast"]["store_bytes_per_event"]
            <= src_bytes,
            "decode >= 5x bare read": dec1 / bare >= 5,
        },
    }


def format_report(r: dict[str, Any]) -> str:
    """Text summary of run_benchmark()."""
    src = r["source"]
    lines = [
        f"{r['events']} simulated events in {r['files']} files ({src['compression']}, "
        f"{src['bytes_per_event']:.0f} B/event; npho+time branches {src['npho_time_branch_bytes_per_event']:.0f} B/event)",
        f"bare uproot read          {r['bare_uproot_read_events_per_s']:9.0f} events/s",
        f"ingest 1 worker           {r['ingest_1_worker']['events_per_s']:9.0f} events/s "
        f"(ratio {r['ratio_1_worker_to_bare_read']:.2f}; peak RSS {r['ingest_1_worker']['peak_rss_mb_per_worker']:.0f} MB)",
        f"ingest {r['all_cores']} workers         {r['ingest_all_cores']['events_per_s']:9.0f} events/s "
        f"(peak RSS per worker {r['ingest_all_cores']['peak_rss_mb_per_worker']:.0f} MB)",
        f"decode 1 thread           {r['decode_events_per_s_1_thread']:9.0f} events/s "
        f"({r['decode_1_thread_over_bare_read']:.1f}x the bare read); all cores "
        f"{r['decode_events_per_s_all_cores']:.0f} events/s",
    ]
    for name, p in r["codec_profiles"].items():
        lines.append(
            f"profile {name:6s} tensor {p['tensor_bytes_per_event']:7.0f} B/event, "
            f"whole store {p['store_bytes_per_event']:7.0f} B/event"
        )
    lines.append(
        "goals: " + ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in r["goals"].items())
    )
    return "\n".join(lines)
