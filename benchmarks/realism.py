"""Intrinsic resolution limits of the simulated detector, detector effect by effect.

Not a reconstruction: the estimators of ``xecdata.sim.limits`` use the truth, so they bound
from below what any reconstruction (``xec reco``, a model) can reach on the same events, and
show which effect costs what. 52.8 MeV gammas (seed 11), group weights fitted on an ideal
sample (seed 99); fiducial volume, split at w = 2 cm.

    python benchmarks/realism.py [--events 2048] [--json benchmarks/results/realism.json]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from xecdata.machine import machine_info  # noqa: E402
from xecdata.sim import EFFECTS, SimConfig, simulate_events  # noqa: E402
from xecdata.sim.limits import energy_limits, fit_group_weights, time_limits  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=2048)
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks/results/realism.json")
    args = ap.parse_args()
    calib = simulate_events(args.events, seed=99, config=SimConfig(effects=()))
    weights = fit_group_weights(calib["npho"])
    configs = {"none": (), **{e: (e,) for e in EFFECTS}, "all (default)": EFFECTS}
    rows = {}
    for name, effects in configs.items():
        ev = simulate_events(args.events, seed=11, config=SimConfig(effects=effects))
        rows[name] = {"energy_pct": energy_limits(ev, weights), "time_ps": time_limits(ev)}
        e, t = rows[name]["energy_pct"], rows[name]["time_ps"]
        print(f"{name:16s} E sigma68 {e['w<2']['sigma68']:.2f} / {e['w>2']['sigma68']:.2f} %"
              f"  t sigma68 {t['w<2']['sigma68']:.1f} / {t['w>2']['sigma68']:.1f} ps",
              flush=True)  # fmt: skip
    result = {
        "benchmark": "realism",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/realism.py " + " ".join(sys.argv[1:]),
        "machine": machine_info(),
        "events": args.events,
        "note": "truth-based limits (w<2 / w>2 cm, fiducial), not a reconstruction",
        "configs": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
