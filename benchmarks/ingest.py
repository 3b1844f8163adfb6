"""Ingestion benchmark: `python benchmarks/ingest.py [--events 16384] [--workers N]`.

Same as `xec bench ingest --output benchmarks/results/ingest.json`; the measurements are
described in xecdata/store/bench.py. Writes benchmarks/results/ingest.json. `--only scaling`
measures just the main-process CPU per event and the units-phase scaling over worker counts and
puts them into the recorded results (with their own date and machine).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from xecdata.store.bench import format_report, run_benchmark, run_scaling_benchmark

RESULT = Path(__file__).resolve().parent / "results" / "ingest.json"


def main() -> None:
    ap = argparse.ArgumentParser(description="xec ingestion benchmark")
    ap.add_argument("--events", type=int, default=16384)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--json", type=Path, default=RESULT)
    ap.add_argument("--only", choices=["scaling"], default=None)
    args = ap.parse_args()
    command = f"python benchmarks/ingest.py --events {args.events}"
    if args.only == "scaling":
        part = run_scaling_benchmark(events=args.events, workers=args.workers)
        part["scaling_measured"]["command"] = command + " --only scaling"
        result = json.loads(args.json.read_text()) | part
        result["goals"]["main process <= 2 us CPU/event"] = (
            part["main_process_cpu"]["us_per_event"] <= 2.0
        )
    else:
        result = run_benchmark(events=args.events, workers=args.workers)
        result["command"] = command
    print(format_report(result))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
