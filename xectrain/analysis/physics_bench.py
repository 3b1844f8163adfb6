"""The physics benchmark (`xec bench physics`, benchmarks/physics.py): the regressor against the
conventional reconstruction on the same simulated events.

1. simulate the training set (flat 15-60 MeV, the realistic default detector) and ingest it;
2. simulate the reference sets (the 52.8 MeV line and the flat 15-60 MeV spectrum, other
   seeds) with the conventional reconstruction (`xec simulate --reco`, shipped calibration);
3. train the regressor (energy, uvwFI, timing, angle) on the training store;
4. predict the reference sets with the best checkpoint's EMA weights;
5. compare both with the truth on the same events (``xectrain.analysis.physics``) and write
   the JSON result, a markdown table and a PDF.

Two profiles: `cpu` (a tiny model on a small set: about 10 minutes on 2 quiet cores, several
times that on a loaded machine; a small-scale ML, not what ML can reach) and `gpu`
(the base model on the full-size set, for one GPU). The result records the profile, the
settings, the time of every stage and the machine.
"""

from __future__ import annotations

import json
import os
import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from xecdata.machine import machine_info
from xecdata.sim.kinematics import E_FLAT, E_LINE
from xecdata.store.runner import worker_pool

SCHEME = "new@1"
# loss and transform per task: the relative error of E (log transform), the opening angle of
# the direction (unit vectors of theta, phi), smooth L1 on standardized positions and times
TASK_SETTINGS = {
    "energy": ("relative_l1", "log+standardize"),
    "uvwFI": ("smooth_l1", "standardize"),
    "timing": ("smooth_l1", "standardize"),
    "angle": ("angular", "standardize"),
}
REFERENCE_SETS = {"52.8 MeV": ((E_LINE, E_LINE), 201), "15-60 MeV": (E_FLAT, 202)}
TRAIN_SEED = 101


@dataclass(frozen=True)
class Profile:
    """Sizes of one benchmark run."""

    name: str
    train_events: int
    val_events: int  # per reference set
    epochs: int
    size: str
    batch_size: int
    lr: float
    device: str
    workers: int  # simulation processes
    extra: tuple[str, ...] = field(default_factory=tuple)  # further --set overrides


PROFILES = {
    "cpu": Profile(
        "cpu", 16384, 2048, 5, "tiny", 32, 1e-3, "cpu", 2, ("training.warmup_epochs=0.3",)
    ),
    "gpu": Profile(
        "gpu", 262144, 16384, 40, "base", 1024, 5e-4, "cuda", 16, ("training.compile=true",)
    ),
}


def get_profile(name: str, **overrides: Any) -> Profile:
    """A profile by name, with some sizes replaced (None keeps the profile's)."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return replace(PROFILES[name], **{k: v for k, v in overrides.items() if v is not None})


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and its finished children (the simulation
    workers): on a shared machine it says what the run costs, whatever the load."""
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@contextmanager
def _stage(times: dict[str, Any], name: str, log: Callable[[str], None]) -> Iterator[None]:
    log(f"[physics] {name} ...")
    t0, c0 = time.perf_counter(), cpu_seconds()
    yield
    times[name] = {"wall_s": round(time.perf_counter() - t0, 1),
                   "cpu_s": round(cpu_seconds() - c0, 1)}  # fmt: skip
    log(f"[physics] {name}: {times[name]['wall_s']:.0f} s (CPU {times[name]['cpu_s']:.0f} s)")


def _simulate_part(args: tuple[int, Path, int, tuple[float, float], bool]) -> list[str]:
    from xecdata.reco import default_calibration
    from xecdata.sim import SimConfig, simulate

    n, out, seed, energy, reco = args
    cal = default_calibration() if reco else None
    paths = simulate(
        n,
        out,
        seed=seed,
        config=SimConfig(energy=energy),
        reco=cal,
        events_per_file=max(n // 2, 1) if out.suffix != ".root" else None,
    )
    return [str(p) for p in paths]


def simulate_parallel(
    n: int, out: Path, seed: int, energy: tuple[float, float], workers: int, reco: bool = False
) -> list[Path]:
    """n events in `workers` processes (part k: seed*1000+k, its own folder); one part, the
    plain seed, when workers is 1."""
    if workers <= 1:
        return [Path(p) for p in _simulate_part((n, out, seed, energy, reco))]
    sizes = [n // workers + (k < n % workers) for k in range(workers)]
    jobs = [(m, out / f"part{k}", seed * 1000 + k, energy, reco) for k, m in enumerate(sizes)]
    with worker_pool(workers) as pool:  # its workers die with this process, even on kill -9
        assert pool is not None
        return [Path(p) for part in pool.map(_simulate_part, jobs) for p in part]


def training_overrides(profile: Profile, store: Path, runs: Path) -> list[str]:
    """The `--set` overrides of the benchmark's training run."""
    sets = [
        f"data.store={store}",
        f"data.scheme={SCHEME}",
        f"data.batch_size={profile.batch_size}",
        f"model.size={profile.size}",
        f"training.epochs={profile.epochs}",
        f"training.lr={profile.lr}",
        f"training.device={profile.device}",
        f"checkpoint.dir={runs}",
        "tracking.enabled=false",
        "checkpoint.save_artifacts=false",
        "tracking.run_name=physics",
    ]
    for task, (loss, transform) in TASK_SETTINGS.items():
        sets += [
            f"tasks.{task}.enabled=true",
            f"tasks.{task}.loss={loss}",
            f"tasks.{task}.transform={transform}",
        ]
    return sets + list(profile.extra)


def predict_file(
    model: Any, path: Path, batch: int, device: str
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(predictions {task: (N, D)}, the file's truth and reco columns) of one ROOT file."""
    import torch

    from xectrain.serving.infer import input_batches

    preds: dict[str, list[np.ndarray]] = {}
    cols: dict[str, list[np.ndarray]] = {}
    with torch.inference_mode():
        for x, c, _ in input_batches(path, model.scheme, batch):
            out = model.predict(torch.from_numpy(x).to(device))
            for k, v in out.items():
                preds.setdefault(k, []).append(v.float().cpu().numpy())
            for k, v in c.items():
                cols.setdefault(k, []).append(v)
    return (
        {k: np.concatenate(v) for k, v in preds.items()},
        {k: np.concatenate(v) for k, v in cols.items()},
    )


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def run_physics(
    profile: Profile, workdir: Path, log: Callable[[str], None] = print
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the benchmark in `workdir`; returns (result for JSON, residuals for the PDF)."""
    import torch

    from xecdata.ingest import ingest
    from xecdata.reco.resolution import depth_regions
    from xectrain.analysis.physics import compare, residual_arrays
    from xectrain.checkpoint import load_checkpoint
    from xectrain.config import load_config
    from xectrain.run.fit import train
    from xectrain.serving.checkpoints import model_from_checkpoint

    times: dict[str, Any] = {}
    start, cpu_start = time.perf_counter(), cpu_seconds()
    machine = machine_info(("scipy",))  # the load average at the start
    with _stage(times, "simulate training set", log):
        files = simulate_parallel(
            profile.train_events, workdir / "train", TRAIN_SEED, E_FLAT, profile.workers
        )
    with _stage(times, "ingest", log):
        store = workdir / "train.xec.zarr"
        ingest(
            files,
            store,
            schemes=[SCHEME],
            chunk_events=min(128, max(16, profile.train_events // 80)),  # val split: >= 8 chunks
            progress=False,
            workers=min(profile.workers, os.cpu_count() or 1),
        )
    with _stage(times, "simulate and reconstruct reference sets", log):
        val_files = {
            name: simulate_parallel(
                profile.val_events, workdir / f"ref{seed}", seed, energy, profile.workers, reco=True
            )
            for name, (energy, seed) in REFERENCE_SETS.items()
        }
    with _stage(times, "train", log):
        cfg = load_config("regressor", None, training_overrides(profile, store, workdir / "runs"))
        run = train(cfg)
    with _stage(times, "predict reference sets", log):
        model = model_from_checkpoint(
            load_checkpoint(run.run_dir / "checkpoint_best.pth"), profile.device
        )
        predicted = {
            name: [predict_file(model, p, 4 * profile.batch_size, profile.device) for p in paths]
            for name, paths in val_files.items()
        }
    sets, residuals = {}, {}
    for name, parts in predicted.items():
        preds, cols = _concat([p for p, _ in parts]), _concat([c for _, c in parts])
        sets[name] = compare(preds, cols)
        residuals[name] = residual_arrays(preds, cols, depth_regions(cols)["w>2"])
    times["total"] = {"wall_s": round(time.perf_counter() - start, 1),
                      "cpu_s": round(cpu_seconds() - cpu_start, 1)}  # fmt: skip
    result = {
        "benchmark": "physics",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "profile": asdict(profile),
        "tasks": {t: {"loss": loss, "transform": tr} for t, (loss, tr) in TASK_SETTINGS.items()},
        "scheme": SCHEME,
        "reference_sets": {
            n: {"energy_mev": list(e), "seed": s} for n, (e, s) in REFERENCE_SETS.items()
        },
        "training": {
            "best_metric": run.best_metric,
            "epochs_run": profile.epochs,
            "threads": torch.get_num_threads(),
        },
        "seconds": times,
        "machine": machine | {"load_average_1min_end": round(os.getloadavg()[0], 2)},
        "sets": sets,
    }
    return result, residuals


def write_outputs(
    result: dict[str, Any],
    residuals: dict[str, Any],
    json_path: Path,
    md_path: Path,
    pdf_path: Path,
    command: str,
) -> None:
    """The JSON result, the markdown table (with the command) and the PDF."""
    from xectrain.analysis.physics import markdown_report
    from xectrain.analysis.physics_pdf import write_pdf

    result["command"] = command
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=1) + "\n")
    p = result["profile"]
    title = (
        f"Physics benchmark, profile {p['name']}: ML ({p['size']} regressor, "
        f"{p['train_events']} training events, {p['epochs']} epochs) vs conventional"
    )
    machine = result["machine"]
    where = f"{machine['cpus']} CPUs" + (f", {machine['gpu']}" if machine.get("gpu") else "")
    md = markdown_report(result["sets"], title)
    total = result["seconds"]["total"]
    md += (f"\nReproduce: `{command}` ({total['wall_s'] / 60:.1f} min on {where}, load average "
           f"{machine['load_average_1min']:.1f} at the start; CPU time {total['cpu_s'] / 60:.1f} "
           "min).\n")  # fmt: skip
    md_path.write_text(md)
    write_pdf(result["sets"], residuals, pdf_path)
