"""Loader throughput: events/s and GB/s per backend and codec profile with 1..N threads, against
(a) the root backend on the same events and (b) a plain memory-mapped read of the same bytes
uncompressed (the machine's bound), all in one run. With CUDA also the GPU backends (pinned,
resident, dali on the device), the measured pinned H2D bandwidth and the fraction of time a
synthetic consumer (a GPU step of 1 ms per 4096-event batch) waits for data.

Creates its own data: simulated ROOT files (xecdata.sim) ingested once per codec profile.
On a GPU give it enough events for several 4096-event batches per epoch (e.g. --events 262144).

    python benchmarks/loader.py [--events 16384] [--profiles fast,none,dense,gpu] \
        [--threads 1,2] [--batch-size 1024] [--repeats 3] [--workdir DIR] \
        [--out benchmarks/results/loader.json] [--only checksum]

`checksum_cost` (benchmarks/checksum.py): decode and cpu-loader throughput with and without the
per-chunk crc32c check, same process, per profile. `--only checksum` measures just that and
replaces that entry of an existing results file (its own date, command and machine).

GB/s counts the store's uncompressed sensor bytes (19040 B/event, 16-bit codes), the bytes
the mmap bound reads; `out_gb_per_s` counts the float32 batches delivered (twice as many).
`events_per_cpu_s` divides by the process CPU time: on a shared machine it is the figure that
other load disturbs least (for dali it leaves out the worker processes' CPU). For the
uncompressed profile three output-side references are measured too (not bounds):
`mmap_float32` reads the decoded float32 tensor (38080 B/event, what the loader delivers);
`mmap_to_batch_uint16` copies the codes into a ring of three batch-sized buffers, and
`mmap_to_batch_float32` casts them to float32 on the way: the least any loader handing out
float32 batches must do (batches do not fit in cache, so their bytes go to memory, where the
bound's chunk buffer stays in cache). Each configuration keeps its best of --repeats runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from xecdata.loaders.bench import run_store_benchmark
from xecdata.machine import machine_info

DEFAULT_PROFILE = "fast"


def make_stores(workdir: Path, events: int, profiles: list[str]) -> dict[str, Path]:
    """Simulate `events` into ROOT files and ingest one store per codec profile (reused)."""
    from xecdata.ingest import ingest
    from xecdata.sim import simulate

    sim = workdir / "sim"
    files = sorted(sim.glob("*.root"))
    if not files:
        files = simulate(events, sim, seed=1, events_per_file=max(1, events // 4))
    stores = {}
    for profile in profiles:
        path = workdir / f"{profile}.xec.zarr"
        if not (path / "_xec" / "complete.json").exists():
            ingest(files, path, schemes=["new@1"], codec=profile, progress=False)
        stores[profile] = path
    return stores


def best_of(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge repeated runs of one store: the best events/s of each (backend, threads)."""
    merged = dict(results[0])
    for key in ("mmap", "mmap_float32", "mmap_to_batch", "runs"):
        if key not in merged:
            continue
        best: dict[tuple, dict] = {}
        for res in results:
            for r in res[key]:
                k = (r["backend"], r["threads"], r.get("device"))
                if k not in best or r["events_per_s"] > best[k]["events_per_s"]:
                    best[k] = r
        merged[key] = list(best.values())
    bound = max(r["events_per_s"] for r in merged["mmap"])
    for r in merged["runs"]:
        r["fraction_of_mmap"] = round(r["events_per_s"] / bound, 4)
    return merged


def measure(stores: dict[str, Path], args: argparse.Namespace) -> list[dict[str, Any]]:
    threads = tuple(int(t) for t in args.threads.split(","))
    out = []
    for profile, path in stores.items():
        backends = ["cpu", "resident", "dali"] + (["root"] if profile == DEFAULT_PROFILE else [])
        runs = [
            run_store_benchmark(path, backends=tuple(backends), threads=threads,
                                batch_size=args.batch_size, root_events=args.root_events)
            for _ in range(args.repeats)
        ]  # fmt: skip
        out.append(best_of(runs) | {"store": path.name})
        if torch.cuda.is_available():
            gpu = [
                run_store_benchmark(path, backends=("pinned", "resident", "dali"),
                                    threads=threads[-1:], batch_size=4096, device="cuda")
                for _ in range(args.repeats)
            ]  # fmt: skip
            extra = {k: gpu[-1][k] for k in ("h2d_gb_per_s", "data_wait")}
            out.append(best_of(gpu) | extra | {"store": path.name})
        for result in out[-2:] if torch.cuda.is_available() else out[-1:]:
            print_summary(result)
    return out


def goals(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's goals, evaluated on this run."""
    by = {(r["profile"], r["device"]): r for r in results}
    out: dict[str, Any] = {}
    fast, none = by.get((DEFAULT_PROFILE, "cpu")), by.get(("none", "cpu"))
    if fast is not None:
        cpu = max((r for r in fast["runs"] if r["backend"] == "cpu"), key=_rate)
        root = max((r for r in fast["runs"] if r["backend"] == "root"), key=_rate)
        out["cpu_vs_root_default_profile"] = {
            "ratio": round(_rate(cpu) / _rate(root), 2),
            "ratio_per_cpu_second": round(cpu["events_per_cpu_s"] / root["events_per_cpu_s"], 2),
            "goal": 10,
        }
    if none is not None:
        cpu = max((r for r in none["runs"] if r["backend"] == "cpu"), key=_rate)
        bound = max(none["mmap"], key=_rate)
        out["cpu_vs_mmap_uncompressed"] = {
            "fraction": round(_rate(cpu) / _rate(bound), 3),
            "fraction_of_float32_mmap": round(
                _rate(cpu) / _rate(max(none["mmap_float32"], key=_rate)), 3
            ),
            "fraction_per_cpu_second": round(
                cpu["events_per_cpu_s"] / bound["events_per_cpu_s"], 3
            ),
            "goal": 0.5,
        }
        refs = {r["backend"]: r for r in sorted(none.get("mmap_to_batch", []), key=_rate)}
        for name, ref in refs.items():  # the best of each kind (sorted ascending)
            out["cpu_vs_mmap_uncompressed"][f"{name}_fraction_of_mmap"] = round(
                _rate(ref) / _rate(bound), 3
            )
            out["cpu_vs_mmap_uncompressed"][f"fraction_of_{name}"] = round(
                _rate(cpu) / _rate(ref), 3
            )
    gpu = by.get((DEFAULT_PROFILE, "cuda"))
    if gpu is not None:
        rate = {r["backend"]: r for r in gpu["runs"]}
        out["pinned_vs_h2d"] = {
            "fraction": round(rate["pinned"]["gb_per_s"] / gpu["h2d_gb_per_s"], 3),
            "goal": 0.8,
        }
        out["resident_events_per_s"] = {"value": rate["resident"]["events_per_s"], "goal": 1e7}
        out["dali_vs_pinned"] = {
            "ratio": round(_rate(rate["dali"]) / _rate(rate["pinned"]), 3),
            "goal": 0.8,
        }
        out["data_wait"] = {w["backend"]: w["wait_fraction"] for w in gpu["data_wait"]} | {
            "goal": 0.05
        }
    return out


def measure_checksums(stores: dict[str, Path], args: argparse.Namespace) -> list[dict[str, Any]]:
    from checksum import checksum_cost  # benchmarks/checksum.py, beside this file

    threads = max(int(t) for t in args.threads.split(","))
    out = []
    for path in stores.values():
        out.append(checksum_cost(path, threads, args.batch_size, args.repeats))
        print(json.dumps(out[-1]), flush=True)
    return out


def _public_args(argv: list[str] | None) -> list[str]:
    """The command line without --workdir (a path of the measuring machine)."""
    args, out = list(argv if argv is not None else sys.argv[1:]), []
    skip = False
    for a in args:
        if skip:
            skip = False
        elif a == "--workdir":
            skip = True
        elif not a.startswith("--workdir="):
            out.append(a)
    return out


def _rate(r: dict[str, Any]) -> float:
    return float(r["events_per_s"])


def print_summary(result: dict[str, Any]) -> None:
    from xecdata.loaders.bench import format_report

    print(format_report(result), flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=16384)
    p.add_argument("--profiles", default="fast,none,dense,gpu")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--root-events", type=int, default=8192)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/loader.json"))
    p.add_argument("--only", choices=["checksum"], default=None, help="Measure just this part.")
    args = p.parse_args(argv)
    load_before = os.getloadavg()  # other work on a shared machine shows in the figures
    command = " ".join(["python", "benchmarks/loader.py", *_public_args(argv)])
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        stores = make_stores(workdir, args.events, args.profiles.split(","))
        costs = measure_checksums(stores, args)
        results = measure(stores, args) if args.only is None else None
    machine = machine_info(("nvidia.dali",)) | {
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
    }
    checksums = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                 "command": command, "machine": machine, "events": args.events,
                 "results": costs}  # fmt: skip
    if results is None:  # update the checksum entry of the recorded results
        report = json.loads(args.out.read_text()) if args.out.exists() else {}
        report["checksum_cost"] = checksums
    else:
        report = {
            "benchmark": "loader",
            "date": checksums["date"],
            "command": command,
            "machine": machine,
            "events": args.events,
            "batch_size": args.batch_size,
            "results": results,
            "goals": goals(results),
            "checksum_cost": checksums,
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report.get("goals", {}), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
