"""Model FLOPs per event of every registered model (kind x size), counted on the CPU with
torch.utils.flop_counter.FlopCounterMode: the forward pass (inference) and a training step
(forward + backward; the optimizer's elementwise work is not counted). With a GPU's peak
FLOP/s they put the GPU targets on paper, and benchmarks/gpu_check.sh turns measured events/s
into model FLOP utilisation with them.

    python benchmarks/flops.py [--batch 2] [--out benchmarks/results/flops.json]

Events are the toy events of benchmarks/model_throughput.py; the counter counts matrix
products, convolutions and attention (what dominates), per event = total / batch. torch's own
formula for convolution_backward counts a grouped (depthwise) convolution about `groups` times
over (65x the forward for a 64-group 7x7 convolution, against 2x for a dense one), and the
ConvNeXt blocks are depthwise, so it is replaced: the input gradient and the weight gradient
each cost one forward convolution.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/ scripts import each other
from model_throughput import make_batch, step_fn

from xecdata.machine import machine_info
from xecmodel import TASKS, count_parameters, create_model, list_models

OUT = Path(__file__).resolve().parent / "results" / "flops.json"
# Dense bf16 tensor-core peaks from NVIDIA's data sheets (TFLOP/s, no sparsity): the targets
# on paper; benchmarks/gpu_check.sh measures the bound a card really reaches.
PEAK_BF16_TFLOPS = {"A100": 312.0, "H100 SXM / H200 / GH200": 989.0}
TARGET_MFU = 0.4  # a good model FLOP utilisation for convolution-heavy training


def targets(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Events/s per GPU at TARGET_MFU of each card's peak: training and inference."""
    out: dict[str, Any] = {"mfu": TARGET_MFU, "peak_bf16_tflops": PEAK_BF16_TFLOPS}
    for r in rows:
        key = f"{r['kind']}/{r['size']}"
        out[key] = {
            card: {
                "train_events_per_s": round(
                    TARGET_MFU * peak * 1e12 / r["train_step_flops_per_event"]
                ),
                "infer_events_per_s": round(
                    TARGET_MFU * peak * 1e12 / r["forward_flops_per_event"]
                ),
            }
            for card, peak in PEAK_BF16_TFLOPS.items()
        }
    return out


def conv_backward_flops(
    grad_out_shape: list[int], x_shape: list[int], w_shape: list[int], _bias: Any, _stride: Any,
    _padding: Any, _dilation: Any, transposed: bool, _output_padding: Any, _groups: int,
    output_mask: list[bool], out_shape: Any = None,
) -> int:  # fmt: skip
    """aten.convolution_backward: one forward convolution per gradient asked for (input,
    weight); w_shape is (C_out, C_in / groups, *kernel), so grouped convolutions count right."""
    forward = conv_flop_count(x_shape, w_shape, grad_out_shape, transposed)
    return forward * (int(output_mask[0]) + int(output_mask[1]))


def count(fn: Any) -> int:
    """FLOPs of calling fn() (FlopCounterMode: matmuls, convolutions, attention)."""
    fixed = {torch.ops.aten.convolution_backward: conv_backward_flops}
    with FlopCounterMode(display=False, custom_mapping=fixed) as counter:
        fn()
    return int(counter.get_total_flops())


def flops_per_event(
    kind: str, size: str, batch: int = 2, tasks: list[str] | None = None
) -> dict[str, Any]:
    """Forward and training-step FLOPs per event of one model (`tasks`: the regressor's heads,
    default every task)."""
    torch.manual_seed(0)
    heads: list[Any] | None = (tasks or list(TASKS)) if kind == "regressor" else None
    model: Any = create_model(kind, size, scheme="new@1", tasks=heads)
    x, targets = make_batch(batch, "cpu")
    if kind == "regressor":
        targets = {k: v for k, v in targets.items() if k in model.task_names}
        model.fit_transforms({k: v.reshape(batch, -1).numpy() for k, v in targets.items()})
    loss_of = step_fn(model, kind, targets)
    model.eval()
    with torch.no_grad():
        forward = count(lambda: model(x))
    model.train()
    train = count(lambda: loss_of(x).backward())
    return {
        "kind": kind,
        "size": size,
        "parameters": count_parameters(model),
        "tasks": list(model.task_names) if kind == "regressor" else None,
        "forward_flops_per_event": forward / batch,
        "train_step_flops_per_event": train / batch,
        "train_over_forward": round(train / forward, 3) if forward else None,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=2, help="events per counted pass")
    p.add_argument("--models", default=None, help="comma list of kind:size (default: all)")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    pairs = [tuple(m.split(":")) for m in args.models.split(",")] if args.models else list_models()
    rows = []
    for kind, size in pairs:
        t0 = time.perf_counter()
        row = flops_per_event(kind, size, args.batch)
        row["count_seconds"] = round(time.perf_counter() - t0, 1)
        fwd, step = row["forward_flops_per_event"] / 1e9, row["train_step_flops_per_event"] / 1e9
        print(f"{kind:>9} {size:>5}: {fwd:8.3f} GFLOP forward, {step:8.3f} GFLOP train step/event")
        rows.append(row)
    report = {
        "benchmark": "flops",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/flops.py", *(argv or [])]),
        "machine": machine_info(),
        "counter": "torch.utils.flop_counter.FlopCounterMode",
        "batch": args.batch,
        "results": rows,
        "targets": targets(rows),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
