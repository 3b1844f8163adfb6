"""The GPU check's CPU-side pieces: it stops at once without a GPU, the FLOP counter counts
what a hand count gives (depthwise convolutions included), and the JSON is assembled from the
parts' outputs as documented. (The GPU parts themselves run only on a GPU machine.)"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from xecmodel import TASKS

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import flops  # noqa: E402
import gpu_check  # noqa: E402


def test_the_script_stops_at_once_without_a_gpu(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no nvidia-smi
    t0 = time.monotonic()
    res = subprocess.run(["bash", str(BENCH / "gpu_check.sh")], env=env, capture_output=True,
                         text=True, timeout=30)  # fmt: skip
    assert time.monotonic() - t0 < 5
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.strip() == ("Error: no NVIDIA GPU here (nvidia-smi finds none); run "
                                  "benchmarks/gpu_check.sh on a GPU node")  # fmt: skip


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is visible")
def test_a_gpu_without_cuda_torch_is_refused_too(capsys: pytest.CaptureFixture[str]) -> None:
    assert gpu_check.main(["--out", "/nonexistent/x.json"]) == gpu_check.NO_GPU_EXIT
    err = capsys.readouterr().err
    assert err.startswith(f"Error: torch {torch.__version__} sees no CUDA device;")


def test_flop_counts_equal_hand_counts_for_dense_and_depthwise_layers() -> None:
    torch.manual_seed(0)
    lin, x = torch.nn.Linear(8, 4), torch.randn(2, 8, requires_grad=True)
    assert flops.count(lambda: lin(x)) == 2 * 2 * 8 * 4
    assert flops.count(lambda: lin(x).sum().backward()) == 3 * 2 * 2 * 8 * 4
    for groups in (1, 8):  # torch's own backward formula counts 9x the forward at 8 groups
        conv = torch.nn.Conv2d(8, 8, 7, padding=3, groups=groups, bias=False)
        img = torch.randn(2, 8, 6, 6, requires_grad=True)
        forward = 2 * 2 * 6 * 6 * 8 * (8 // groups) * 49
        assert flops.count(lambda c=conv, i=img: c(i)) == forward
        assert flops.count(lambda c=conv, i=img: c(i).sum().backward()) == 3 * forward


def test_recorded_flops_cover_every_model() -> None:
    from xecmodel import list_models

    rows = json.loads((BENCH / "results" / "flops.json").read_text())["results"]
    assert {(r["kind"], r["size"]) for r in rows} == set(list_models())
    for r in rows:
        assert 2.5 < r["train_over_forward"] < 3.5, r  # backward ~ twice the forward
    by = {(r["kind"], r["size"]): r["forward_flops_per_event"] for r in rows}
    assert by["regressor", "tiny"] < by["regressor", "base"] < by["regressor", "large"]


JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests">
<testsuite name="pytest" errors="0" failures="1" skipped="2" tests="9" time="41.5">
</testsuite></testsuites>"""


def _loader_report(h2d: float = 50.0) -> dict[str, Any]:
    runs = [{"backend": "pinned", "events_per_s": 2e6, "gb_per_s": 38.0},
            {"backend": "pinned", "events_per_s": 1e6, "gb_per_s": 19.0},
            {"backend": "resident", "events_per_s": 2e7, "gb_per_s": 380.0},
            {"backend": "dali", "events_per_s": 1.8e6, "gb_per_s": 34.2}]  # fmt: skip
    cpu = {"device": "cpu", "runs": [{"backend": "cpu", "events_per_s": 1e5, "gb_per_s": 2.0}]}
    goals = {"pinned_vs_h2d": {"fraction": 0.76, "goal": 0.8}, "cpu_vs_root_default_profile": {}}
    cuda = {"device": "cuda", "runs": runs, "h2d_gb_per_s": h2d, "data_wait": []}
    return {"results": [cpu, cuda], "goals": goals}


def test_part_summaries_and_the_assembled_json(tmp_path: Path) -> None:
    (tmp_path / "gpu.xml").write_text(JUNIT)
    counts = {"tests": 9, "failures": 1, "errors": 0, "skipped": 2, "passed": 6, "seconds": 41.5}
    assert gpu_check.pytest_summary(tmp_path / "gpu.xml") == counts
    loader = gpu_check.loader_summary(_loader_report())
    assert loader["h2d_gb_per_s"] == 50.0 and loader["goals"] == {
        "pinned_vs_h2d": {"fraction": 0.76, "goal": 0.8}}  # fmt: skip
    assert loader["backends"]["pinned"] == {"events_per_s": 2e6, "gb_per_s": 38.0}  # the best
    assert sorted(loader["backends"]) == ["dali", "pinned", "resident"]
    cpu_only = json.loads((BENCH / "results" / "loader.json").read_text())
    with pytest.raises(ValueError, match="no CUDA results"):
        gpu_check.loader_summary(cpu_only)
    train = {"results": [{"backend": "pinned", "events_per_s": 40000.0, "data_wait_fraction": 0.02,
                          "tasks": ["angle"]}]}  # fmt: skip
    t = gpu_check.train_summary(train, flops_per_event=2.5e9, peak_flop_s=8e14)
    assert t["achieved_tflop_s"] == 100.0 and t["model_flop_utilisation"] == 0.125
    assert t["bf16_matmul_peak_tflop_s"] == 800.0 and t["data_wait_fraction"] == 0.02

    parts = {p: {"status": "ok"} for p in gpu_check.SHARES}
    figures = {"pytest": {"failures": 0, "errors": 0}, "ort": {"ok": True}}
    started = time.monotonic()
    report = gpu_check.assemble(parts, figures, {"cpu": "x"}, 420.0, started)
    assert report["all_ok"] and report["benchmark"] == "gpu_check" and report["budget_s"] == 420.0
    json.dumps(report)  # JSON-able
    for broken in ({"pytest": {"failures": 1, "errors": 0}}, {"ort": {"ok": False}},
                   {"pytest": {"error": "FileNotFoundError: gpu.xml"}}):  # fmt: skip
        assert not gpu_check.assemble(parts, figures | broken, {}, 420.0, started)["all_ok"]
    late = parts | {"train": {"status": "timed out after 147 s"}}
    assert not gpu_check.assemble(late, figures, {}, 420.0, started)["all_ok"]


def test_parts_run_the_existing_benchmarks_within_the_budget(tmp_path: Path) -> None:
    cmds = gpu_check.part_commands(tmp_path, 4096)
    assert list(cmds) == list(gpu_check.SHARES) and sum(gpu_check.SHARES.values()) == 1.0
    scripts = {name: Path(c[1]).name for name, c in cmds.items() if name != "pytest"}
    assert scripts == {"loader": "loader.py", "train": "train.py", "ort": "gpu_check.py"}
    assert cmds["pytest"][1:5] == ["-m", "pytest", "-m", "gpu"]
    assert {"--amp", "bf16", "--compile", "--size", "base"} <= set(cmds["train"])
    res = gpu_check.run_part("sleepy", ["sleep", "5"], 0.5, tmp_path / "s.log")
    assert res["status"] == "timed out after 0.5 s" and res["seconds"] < 3
    res = gpu_check.run_part("echo", ["sh", "-c", "echo hi; exit 3"], 10, tmp_path / "e.log")
    assert res["status"] == "failed (exit 3)" and res["log_tail"] == ["hi"]


@pytest.mark.slow  # an ONNX export: about a minute on 2 busy cores
def test_ort_parity_part_on_the_cpu_provider(tmp_path: Path) -> None:
    """The ort part's code path, with onnxruntime's CPU provider in place of CUDA's."""
    res = gpu_check.ort_parity(tmp_path / "m.onnx", "tiny", 4, "CPUExecutionProvider")
    assert res["provider"] == "CPUExecutionProvider" and res["ok"], res
    assert set(res["max_relative_difference"]) == set(TASKS)  # every head compared
    assert res["ort_events_per_s"] > 0
