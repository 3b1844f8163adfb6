"""The GPU check: every GPU code path on one GPU within 8 minutes, one
JSON (benchmarks/results/gpu_check.json). Run it through benchmarks/gpu_check.sh.

Parts, each a subprocess with its own share of the budget (one that runs out is recorded as
such, the others still run):
  pytest   `pytest -m gpu` (the GPU loader backends against the CPU one)
  loader   benchmarks/loader.py on CUDA: pinned, DALI and resident against the host-to-device
           bandwidth it measures itself (its `goals`)
  train    benchmarks/train.py: the base regressor with bf16 autocast and torch.compile through
           the real training loop: events/s, data-wait fraction, and model FLOP utilisation =
           events/s x training FLOPs per event (benchmarks/flops.py) / the bf16 matrix-product
           FLOP/s measured here (8192^3 matmuls: the bound this GPU reaches)
  ort      onnxruntime's CUDA provider against torch on the same exported model (parity)

    benchmarks/gpu_check.sh [--budget 420] [--events 32768] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "gpu_check.json"
SHARES = {"pytest": 0.25, "loader": 0.3, "train": 0.35, "ort": 0.1}  # of the budget
NO_GPU_EXIT = 2


def no_gpu_reason() -> str | None:
    """Why this process cannot run the check (None: a CUDA device is usable)."""
    import torch

    if not torch.cuda.is_available():
        return (f"torch {torch.__version__} sees no CUDA device; run benchmarks/gpu_check.sh on "
                "a GPU node with a CUDA build of torch")  # fmt: skip
    return None


def run_part(name: str, cmd: list[str], seconds: float, log: Path) -> dict[str, Any]:
    """Run one part's command with a time limit; its output goes to `log`."""
    t0 = time.monotonic()
    with log.open("w") as fh:
        try:
            rc = subprocess.run(
                cmd, stdout=fh, stderr=subprocess.STDOUT, timeout=seconds
            ).returncode
            status = "ok" if rc == 0 else f"failed (exit {rc})"
        except subprocess.TimeoutExpired:
            status = f"timed out after {seconds:.1f} s"
    tail = log.read_text(errors="replace").splitlines()[-5:]
    return {"part": name, "status": status, "seconds": round(time.monotonic() - t0, 1),
            "command": " ".join(cmd), "log_tail": tail}  # fmt: skip


def pytest_summary(junit: Path) -> dict[str, Any]:
    """Counts of a pytest --junitxml report."""
    root = ET.parse(junit).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    assert suite is not None, f"{junit}: no testsuite"
    n = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    return n | {"passed": n["tests"] - n["failures"] - n["errors"] - n["skipped"],
                "seconds": float(suite.get("time", 0.0))}  # fmt: skip


def loader_summary(report: dict[str, Any]) -> dict[str, Any]:
    """The CUDA figures of a benchmarks/loader.py report: per backend events/s and GB/s, the
    measured host-to-device bound, and the goals it evaluated."""
    cuda = [r for r in report["results"] if r["device"] == "cuda"]
    if not cuda:
        raise ValueError("the loader report has no CUDA results")
    best: dict[str, dict[str, Any]] = {}
    for run in cuda[0]["runs"]:
        if run["events_per_s"] > best.get(run["backend"], {}).get("events_per_s", -1):
            best[run["backend"]] = run
    return {
        "h2d_gb_per_s": cuda[0]["h2d_gb_per_s"],
        "backends": {
            b: {"events_per_s": r["events_per_s"], "gb_per_s": r["gb_per_s"]}
            for b, r in sorted(best.items())
        },
        "goals": {
            k: report["goals"][k]
            for k in ("pinned_vs_h2d", "resident_events_per_s", "dali_vs_pinned", "data_wait")
            if k in report["goals"]
        },
    }


def train_summary(
    report: dict[str, Any], flops_per_event: float, peak_flop_s: float
) -> dict[str, Any]:
    """Events/s, data wait and model FLOP utilisation of a benchmarks/train.py report."""
    row = max(report["results"], key=lambda r: r["events_per_s"])
    achieved = row["events_per_s"] * flops_per_event
    return {
        "backend": row["backend"],
        "events_per_s": row["events_per_s"],
        "data_wait_fraction": row["data_wait_fraction"],
        "train_flops_per_event": flops_per_event,
        "achieved_tflop_s": achieved / 1e12,
        "bf16_matmul_peak_tflop_s": peak_flop_s / 1e12,
        "model_flop_utilisation": achieved / peak_flop_s,
    }


def matmul_peak(n: int = 8192, repeats: int = 20) -> float:
    """bf16 FLOP/s of n x n matrix products on the current GPU (best of `repeats`)."""
    import torch

    a, b = (torch.randn(n, n, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        a @ b
        end.record()
        end.synchronize()
        best = min(best, start.elapsed_time(end) / 1000)
    return 2 * n**3 / best


def ort_parity(
    out: Path, size: str = "base", batch: int = 64, provider: str = "CUDAExecutionProvider"
) -> dict[str, Any]:
    """Export the `size` regressor, run it with onnxruntime's `provider` (refused if another
    one runs it) and compare with torch on the provider's device."""
    import numpy as np
    import torch
    from model_throughput import make_batch

    from xecmodel import TASKS, create_model, export_onnx
    from xectrain.serving.infer import open_model, run_batch

    torch.manual_seed(0)
    model: Any = create_model("regressor", size, scheme="new@1", tasks=list(TASKS))
    x, targets = make_batch(batch, "cpu")
    model.fit_transforms({k: v.reshape(batch, -1).numpy() for k, v in targets.items()})
    model.eval()
    export_onnx(model, out)
    onnx = open_model(out, providers=[provider])
    running = onnx.session.get_providers()[0]
    if running != provider:
        raise RuntimeError(f"onnxruntime ran on {running}, not {provider}")
    got = run_batch(onnx, x.numpy())
    device = "cuda" if provider.startswith("CUDA") else "cpu"
    with torch.no_grad():
        want = model.to(device).predict(x.to(device))
    diffs = {}
    for task in model.task_names:
        a, b = (
            got[f"pred_{task}"],
            want[task].float().cpu().numpy().reshape(got[f"pred_{task}"].shape),
        )
        diffs[task] = float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))
    t0 = time.perf_counter()
    for _ in range(10):
        run_batch(onnx, x.numpy())
    return {"provider": provider, "batch": batch, "max_relative_difference": diffs,
            "ok": max(diffs.values()) < 1e-3,
            "ort_events_per_s": 10 * batch / (time.perf_counter() - t0)}  # fmt: skip


def assemble(
    parts: dict[str, dict[str, Any]], figures: dict[str, Any], machine: dict[str, Any],
    budget: float, started: float,
) -> dict[str, Any]:  # fmt: skip
    """The one JSON of a check: each part's status and figures, and whether all passed."""
    ok = all(p["status"] == "ok" for p in parts.values()) and len(parts) == len(SHARES)
    ok = ok and figures.get("pytest", {}).get("failures", 1) == 0
    ok = ok and figures.get("pytest", {}).get("errors", 1) == 0
    ok = ok and bool(figures.get("ort", {}).get("ok"))
    return {
        "benchmark": "gpu_check",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "budget_s": budget,
        "seconds": round(time.monotonic() - started, 1),
        "all_ok": ok,
        "parts": parts,
        "figures": figures,
    }


def part_commands(tmp: Path, events: int) -> dict[str, list[str]]:
    """The command of each part (the benchmarks themselves, not copies of them)."""
    py, data = sys.executable, str(tmp / "data")
    return {
        "pytest": [py, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider",
                   f"--junitxml={tmp / 'gpu.xml'}", "tests"],
        "loader": [py, str(HERE / "loader.py"), "--events", str(events), "--profiles", "fast",
                   "--threads", "4", "--repeats", "1", "--root-events", "4096",
                   "--workdir", data, "--out", str(tmp / "loader.json")],
        "train": [py, str(HERE / "train.py"), "--events", str(events), "--batch-size", "1024",
                  "--batches", "24", "--size", "base", "--backends", "pinned", "--repeats", "1",
                  "--amp", "bf16", "--compile", "--workdir", data,
                  "--out", str(tmp / "train.json")],
        "ort": [py, str(Path(__file__).resolve()), "--part", "ort", "--out", str(tmp / "ort.json")],
    }  # fmt: skip


def figures_of(tmp: Path, parts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each finished part's figures from the files it wrote (errors recorded, not raised)."""
    from flops import flops_per_event

    readers = {
        "pytest": lambda: pytest_summary(tmp / "gpu.xml"),
        "loader": lambda: loader_summary(json.loads((tmp / "loader.json").read_text())),
        "ort": lambda: json.loads((tmp / "ort.json").read_text()),
    }
    out: dict[str, Any] = {}
    for name, read in readers.items():
        try:
            out[name] = read()
        except Exception as err:  # a part that failed or ran out of time wrote nothing
            out[name] = {"error": f"{type(err).__name__}: {err}"}
    try:
        report = json.loads((tmp / "train.json").read_text())
        tasks = report["results"][0]["tasks"]
        flops = flops_per_event("regressor", "base", tasks=tasks)["train_step_flops_per_event"]
        out["train"] = train_summary(report, flops, matmul_peak())
    except Exception as err:
        out["train"] = {"error": f"{type(err).__name__}: {err}"}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--budget",
        type=float,
        default=420.0,
        help="seconds for the parts (the FLOP "
        "count and the matmul bound take about half a minute more)",
    )
    p.add_argument("--events", type=int, default=32768, help="simulated events (loader, train)")
    p.add_argument("--part", choices=["ort"], help=argparse.SUPPRESS)  # one part, in-process
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    reason = no_gpu_reason()
    if reason is not None:
        print(f"Error: {reason}", file=sys.stderr)
        return NO_GPU_EXIT
    if args.part == "ort":
        with tempfile.TemporaryDirectory() as tmp:
            result = ort_parity(Path(tmp) / "regressor.onnx")
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        return 0
    from xecdata.machine import machine_info

    started = time.monotonic()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        parts: dict[str, dict[str, Any]] = {}
        order = list(SHARES)
        for k, (part, cmd) in enumerate(part_commands(tmp, args.events).items()):
            # its share plus what earlier parts left unused; the later parts keep theirs
            later = sum(SHARES[q] for q in order[k + 1 :]) * args.budget
            seconds = max(args.budget - (time.monotonic() - started) - later, 1.0)
            print(f"gpu_check: {part} (up to {seconds:.0f} s)", flush=True)
            parts[part] = run_part(part, cmd, seconds, tmp / f"{part}.log")
        figures = figures_of(tmp, parts)
    report = assemble(parts, figures, machine_info(("nvidia.dali", "onnxruntime")), args.budget,
                      started)  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(figures, indent=1))
    print(f"wrote {args.out}; all parts ok: {report['all_ok']}")
    return 0 if report["all_ok"] else 1


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))  # flops.py and model_throughput.py
    raise SystemExit(main(sys.argv[1:]))
