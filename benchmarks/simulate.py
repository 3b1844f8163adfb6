"""Throughput of the toy simulator (`xec simulate`) per CPU core.

Runs single-threaded (OMP / OpenBLAS / MKL threads = 1, set before numpy loads) and measures:
- generation: events/s of the in-memory simulator (xecdata.sim.iter_blocks), best of
  --repeats runs, wall clock and process CPU time (CPU time is the per-core figure that other
  processes on a shared machine disturb least), for the default run (the realistic detector,
  every detector effect on), the ideal detector (no effect) as the in-process baseline of the
  effects' cost, and with --pileup 4;
- the share of each stage (kinematics + shower, light kernel, sensor response) from a profile;
- end to end: events/s writing ROOT files with each compression (level 1) and bytes/event
  (realistic detector), and zstd for the ideal detector;
- the fast light kernel against a baseline in the same process: the same deposits with the
  exact solid angle for every sensor-deposit pair (float64), its speed and the largest
  relative difference of the expected photoelectrons per sensor (sensors above 10 pe).

    python benchmarks/simulate.py [--events 4096] [--repeats 3] \
        [--json benchmarks/results/simulate.json]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import cProfile  # noqa: E402
import json  # noqa: E402
import pstats  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from xecdata.geometry import N_SENSORS  # noqa: E402
from xecdata.machine import machine_info  # noqa: E402
from xecdata.sim import BLOCK_EVENTS, SimConfig, iter_blocks, simulate  # noqa: E402
from xecdata.sim.generate import block_rng  # noqa: E402
from xecdata.sim.kinematics import E_LINE, sample_gammas, shower_deposits  # noqa: E402
from xecdata.sim.optics import LIGHT_YIELD, light_and_first_time, sensor_optics  # noqa: E402
from xecdata.sim.solid_angle import exact_solid_angle  # noqa: E402


def _timed(fn) -> tuple[float, float]:
    """(wall s, process CPU s) of one call."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def generation(n: int, repeats: int, cfg: SimConfig) -> dict[str, object]:
    """Events/s of the in-memory simulator, best of `repeats` (different seeds)."""
    for _ in iter_blocks(BLOCK_EVENTS, 99, cfg):  # warm caches (geometry, optics tables)
        pass
    runs = [_timed(lambda s=s: [None for _ in iter_blocks(n, s, cfg)]) for s in range(repeats)]
    wall, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
    return {
        "events": n,
        "events_per_s_wall": n / wall,
        "events_per_s_cpu": n / cpu,
        "all_runs_wall_s": [r[0] for r in runs],
        "all_runs_cpu_s": [r[1] for r in runs],
    }


def stage_shares(n: int) -> dict[str, float]:  # the default (realistic) configuration
    """Fraction of the generation time spent in each stage (cProfile cumulative times)."""
    prof = cProfile.Profile()
    prof.enable()
    for _ in iter_blocks(n, 5):
        pass
    prof.disable()
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    cum = {func[2]: row[3] for func, row in stats.items()}
    total = cum["iter_blocks"]
    stages = {
        "kinematics_and_shower": cum["_gammas"] + cum["_deposits"],
        "light_kernel": cum["light_and_first_time"],
        "sensor_response": cum["sensor_response"],
    }
    stages["other"] = total - sum(stages.values())
    return {k: round(v / total, 3) for k, v in stages.items()}


def writing(n: int) -> dict[str, dict[str, float]]:
    """End-to-end events/s and bytes/event writing ROOT files, per compression (level 1),
    realistic detector; 'zstd_ideal' is the ideal detector."""
    out: dict[str, dict[str, float]] = {}
    runs = [(c, c, SimConfig()) for c in ("zstd", "lz4", "zlib")]
    runs.append(("zstd_ideal", "zstd", SimConfig(effects=())))
    with tempfile.TemporaryDirectory() as tmp:
        for name, comp, cfg in runs:
            path = Path(tmp) / f"{name}.root"
            wall, cpu = _timed(
                lambda c=comp, p=path, k=cfg: simulate(n, p, seed=1, config=k, compression=c)
            )
            out[name] = {"events_per_s_wall": n / wall, "events_per_s_cpu": n / cpu,
                         "bytes_per_event": path.stat().st_size / n}  # fmt: skip
    return out


def _deposits(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Deposit positions (n, D, 3) and photons (n, D) of n 52.8 MeV showers."""
    rng = block_rng(11, 0)
    _, dirs, conv = sample_gammas(rng, n)
    pos, e_dep, _ = shower_deposits(rng, conv, dirs, np.full(n, E_LINE), 8)
    return pos, e_dep * LIGHT_YIELD


def exact_light(pos: np.ndarray, photons: np.ndarray) -> np.ndarray:
    """Baseline: expected photoelectrons (E, S) with the exact solid angle of every pair."""
    opt = sensor_optics()
    ids = np.arange(N_SENSORS)
    mu = np.zeros((len(pos), N_SENSORS))
    for e in range(len(pos)):
        for d in range(pos.shape[1]):
            if photons[e, d] > 0:
                omega = exact_solid_angle(np.broadcast_to(pos[e, d], (N_SENSORS, 3)), ids)
                mu[e] += photons[e, d] * omega / (4 * np.pi)
    return mu * opt.efficiency


def fast_vs_exact(n: int) -> dict[str, float]:
    """Speed and agreement of the fast light kernel against the exact baseline."""
    pos, photons = _deposits(n)
    t_emit = np.where(photons > 0, 0.0, np.inf)
    light_and_first_time(pos, photons, t_emit)  # warm
    fast_s, _ = _timed(lambda: light_and_first_time(pos, photons, t_emit))
    exact_s, _ = _timed(lambda: exact_light(pos, photons))
    mu_fast, _ = light_and_first_time(pos, photons, t_emit)
    mu_exact = exact_light(pos, photons)
    bright = mu_exact > 10
    rel = np.abs(mu_fast[bright] / mu_exact[bright] - 1)
    return {
        "events": n, "fast_events_per_s": n / fast_s, "exact_events_per_s": n / exact_s,
        "speedup": exact_s / fast_s, "max_rel_diff_mu_above_10pe": float(rel.max()),
        "median_rel_diff_mu_above_10pe": float(np.median(rel)),
        "rel_diff_total_light": float(abs(mu_fast.sum() / mu_exact.sum() - 1)),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=4096)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--exact-events", type=int, default=16)
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks/results/simulate.json")
    args = ap.parse_args()
    result: dict[str, Any] = {
        "benchmark": "simulate",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/simulate.py " + " ".join(sys.argv[1:]),
        "machine": machine_info(("scipy",)),
        "generation": generation(args.events, args.repeats, SimConfig()),
        "generation_ideal": generation(args.events, args.repeats, SimConfig(effects=())),
        "generation_pileup4": generation(args.events // 4, args.repeats, SimConfig(pileup=4)),
        "stage_shares": stage_shares(min(args.events, 1024)),
        "write_end_to_end": writing(min(args.events, 2048)),
        "fast_vs_exact_light": fast_vs_exact(args.exact_events),
    }
    result["machine"]["load_average_1min_end"] = os.getloadavg()[0]
    result["effects_cost"] = {
        "realistic_over_ideal_generation_cpu": result["generation"]["events_per_s_cpu"]
        / result["generation_ideal"]["events_per_s_cpu"],
        "realistic_over_ideal_zstd_end_to_end_cpu": result["write_end_to_end"]["zstd"][
            "events_per_s_cpu"
        ]
        / result["write_end_to_end"]["zstd_ideal"]["events_per_s_cpu"],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    gen = result["generation"]
    print(json.dumps(result, indent=2))
    print(f"\ngeneration (realistic): {gen['events_per_s_cpu']:.0f} events/s per core (CPU), "
          f"{gen['events_per_s_wall']:.0f} wall; written to {args.json}")  # fmt: skip


if __name__ == "__main__":
    main()
