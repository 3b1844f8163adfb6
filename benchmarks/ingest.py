"""Ingestion benchmark: `python benchmarks/ingest.py [--events 16384] [--workers N]`.

Same as `xec bench ingest --output benchmarks/results/ingest.json`; the measurements are
described in xecdata/store/bench.py. Writes benchmarks/results/ingest.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from xecdata.store.bench import format_report, run_benchmark

RESULT = Path(__file__).resolve().parent / "results" / "ingest.json"


def main() -> None:
    ap = argparse.ArgumentParser(description="xec ingestion benchmark")
    ap.add_argument("--events", type=int, default=16384)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--json", type=Path, default=RESULT)
    args = ap.parse_args()
    result = run_benchmark(events=args.events, workers=args.workers)
    result["command"] = f"python benchmarks/ingest.py --events {args.events}"
    print(format_report(result))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
