"""Speed of the conventional reconstruction (`xec reco`) per CPU core, against the simulator.

Runs single-threaded (OMP / OpenBLAS / MKL threads = 1, set before numpy loads) and measures,
in one process (``xecdata.reco.bench``): the whole command's events/s (read a simulated ROOT
file, reconstruct, write the output ROOT file), the simulator's events/s, their ratio, and
the CPU time per event of reading and of each reconstruction stage. Goal: >= 2,000 events/s
per core for the whole command.

    python benchmarks/reco.py [--events 8192] [--repeats 3] \
        [--json benchmarks/results/reco.json]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from xecdata.reco.bench import format_report, run_benchmark  # noqa: E402
from xectrain.artifacts.rootio import TableRootWriter  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=8192)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks/results/reco.json")
    args = ap.parse_args()
    result = run_benchmark(lambda path, example: TableRootWriter(path, example, tree="reco"),
                           events=args.events, repeats=args.repeats)  # fmt: skip
    result["command"] = "python benchmarks/reco.py " + " ".join(sys.argv[1:])
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(format_report(result))
    print(f"written to {args.json}")


if __name__ == "__main__":
    main()
