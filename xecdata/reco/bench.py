"""The reconstruction benchmark behind `xec bench reco` and benchmarks/reco.py.

In one process, on one core (BLAS limited to one thread; numba and uproot run one), for the
same simulated 52.8 MeV events:
- simulator: events/s of the in-memory simulator (``xecdata.sim.iter_blocks``), the baseline;
- whole command: events/s of ``xec reco``'s path (``reconstruct_files``: read the ROOT file,
  reconstruct, write the output ROOT file with the writer given, resolution summary), best of
  ``repeats`` runs, by process CPU time (per core) and wall clock, and its ratio to the
  simulator; the goal is >= ``GOAL`` events/s per core;
- stages: reading only (``inputs.iter_batches``), and the position fit, face sums and time
  estimate on the events in memory (CPU time each).
The numba kernels are compiled (or loaded) before any timing. Wall-clock figures need an idle
machine; CPU-time figures are robust to other load on a shared one.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from xecdata.geometry import uvw_to_xyz
from xecdata.machine import machine_info
from xecdata.reco.calibration import default_calibration
from xecdata.reco.energy import face_sums
from xecdata.reco.inputs import iter_batches
from xecdata.reco.position import fit_positions
from xecdata.reco.run import TableWriter, reconstruct_files
from xecdata.reco.timing import interaction_times
from xecdata.sim import iter_blocks, simulate

GOAL = 2000.0  # events/s per core, whole command
Writer = Callable[[Path, Mapping[str, np.ndarray]], TableWriter]  # (output path, first batch)


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall s, CPU s) of one call."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def _drain(blocks: Iterable[object]) -> None:
    for _ in blocks:
        pass


def _rates(n: int, runs: list[tuple[float, float]]) -> dict[str, Any]:
    return {"events_per_s_cpu": n / min(r[1] for r in runs),
            "events_per_s_wall": n / min(r[0] for r in runs),
            "runs_cpu_s": [r[1] for r in runs], "runs_wall_s": [r[0] for r in runs]}  # fmt: skip


def _stages(path: Path) -> dict[str, float]:
    """CPU µs per event of reading and of each reconstruction stage."""
    cal = default_calibration()
    batches: list = []
    _, read_cpu = _timed(lambda: batches.extend(iter_batches(path)))
    n = sum(len(b.npho) for b in batches)
    out = {"read": read_cpu}
    fits: list = []
    half, length = int(cal.settings["window_half"]), cal.attenuation_length
    out["position_fit"] = _timed(
        lambda: fits.extend(fit_positions(b.npho, half, length) for b in batches)
    )[1]
    pairs = list(zip(batches, fits, strict=True))
    out["face_sums"] = _timed(lambda: [face_sums(b.npho, f.dead_fill) for b, f in pairs])[1]
    par, points = cal.time.kernel_parameters(), [uvw_to_xyz(f.params[:, :3]) for f in fits]
    work = list(zip(batches, points, strict=True))
    out["time_estimate"] = _timed(lambda: [interaction_times(b.time, b.npho, x, par)
                                           for b, x in work])[1]  # fmt: skip
    return {f"{k}_us_per_event": 1e6 * v / n for k, v in out.items()}


def run_benchmark(writer: Writer, events: int = 8192, repeats: int = 3) -> dict[str, Any]:
    """Measure (see the module doc); writer(path, first batch) makes the output table (the CLI
    passes xectrain's TableRootWriter)."""
    info = machine_info(("scipy",))
    with threadpool_limits(limits=1), tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "sim.root", Path(tmp) / "reco.root"
        simulate(events, src, seed=11)
        for _ in iter_blocks(256, 99):  # warm the simulator's caches
            pass
        sim_runs = [_timed(partial(_drain, iter_blocks(events, s))) for s in range(repeats)]
        cal = default_calibration()
        summary: dict[str, Any] = {}

        def make(example: Mapping[str, np.ndarray]) -> TableWriter:
            return writer(out, example)

        def whole() -> None:
            summary.update(reconstruct_files([src], make, cal, say=lambda _: None))

        whole()  # load the kernels, warm the file cache

        reco_runs = [_timed(whole) for _ in range(repeats)]
        stages = _stages(src)
    sim, reco = _rates(events, sim_runs), _rates(events, reco_runs)
    info["load_average_1min_end"] = round(os.getloadavg()[0], 2)
    return {
        "benchmark": "reco", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": info, "events": events, "calibration": cal.id, "goal_events_per_s": GOAL,
        "simulator": sim, "reco_whole_command": reco,
        "reco_over_simulator_cpu": reco["events_per_s_cpu"] / sim["events_per_s_cpu"],
        "meets_goal_cpu": reco["events_per_s_cpu"] >= GOAL, "stages": stages,
        "reconstructed": summary.get("reconstructed"), "failed": summary.get("failed"),
    }  # fmt: skip


def format_report(r: dict[str, Any]) -> str:
    """A few lines for the terminal."""
    s, w = r["simulator"], r["reco_whole_command"]
    lines = [
        f"xec reco, whole command: {w['events_per_s_cpu']:.0f} events/s per core (CPU time), "
        f"{w['events_per_s_wall']:.0f} wall; goal {r['goal_events_per_s']:.0f}: "
        f"{'met' if r['meets_goal_cpu'] else 'NOT met'}",
        f"simulator: {s['events_per_s_cpu']:.0f} events/s per core; reco / simulator = "
        f"{r['reco_over_simulator_cpu']:.2f}",
        "stages (CPU µs/event): " + ", ".join(
            f"{k.removesuffix('_us_per_event')} {v:.0f}" for k, v in r["stages"].items()),
    ]  # fmt: skip
    return "\n".join(lines)
