"""Model training-step throughput: forward + backward + optimizer step on random-like events.

    python benchmarks/model_throughput.py --kind regressor --size base --batch 32 [--device cuda]
        [--amp bf16] [--compile] [--steps 10] [--warmup 3] [--threads N]

Events are toy photon counts / times normalized with the scheme (new@1), generated once on the
device; the loop times `steps` full training steps after `warmup` untimed ones and prints events/s
(and appends a JSON line to benchmarks/results/model_throughput.jsonl with --record).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from xecdata.schemes import get_scheme
from xecdata.tasks import CLASSIFICATION, DIRECTION, Task
from xecmodel import TASKS, count_parameters, create_model

RESULTS = Path(__file__).resolve().parent / "results" / "model_throughput.jsonl"


def fake_target(task: Task, batch: int, g: torch.Generator) -> torch.Tensor:
    """Targets of the task's shape: class indices, unit vectors, or values (> 0 for a positive
    task); their values do not change the throughput."""
    if task.kind == CLASSIFICATION:
        return torch.randint(0, task.dim, (batch,), generator=g)
    v = torch.randn(batch, task.dim, generator=g)
    if task.kind == DIRECTION:
        return torch.nn.functional.normalize(v, dim=-1)
    v = v.abs() + 0.1 if task.positive else v
    return v[:, 0] if task.dim == 1 else v


def make_batch(batch: int, device: str) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(B, 4760, 2) normalized events and targets of every task."""
    g = torch.Generator().manual_seed(0)
    npho = torch.empty(batch, 4760).exponential_(1 / 400.0, generator=g)
    npho[torch.rand(batch, 4760, generator=g) < 0.15] = 0.0
    time_s = torch.randn(batch, 4760, generator=g) * 3e-8
    x = get_scheme("new@1").normalize_torch(npho, time_s).to(device)
    targets = {name: fake_target(task, batch, g) for name, task in TASKS.items()}
    return x, {k: v.to(device) for k, v in targets.items()}


def step_fn(model: Any, kind: str, targets: dict[str, torch.Tensor]):
    """A function x -> loss for the kind."""
    if kind == "regressor":
        return lambda x: model.loss(model(x), targets)[0]
    return lambda x: model(x)[0]


def run(args: argparse.Namespace) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    tasks: list[Any] | None = list(TASKS) if args.kind == "regressor" else None
    model: Any = create_model(args.kind, args.size, scheme="new@1", tasks=tasks).to(args.device)
    x, targets = make_batch(args.batch, args.device)
    if args.kind == "regressor":
        model.fit_transforms(
            {k: v.reshape(args.batch, -1).cpu().numpy() for k, v in targets.items()}
        )
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_of = step_fn(model, args.kind, targets)
    if args.compile:
        loss_of = torch.compile(loss_of)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.amp)
    dev = torch.device(args.device).type

    def step() -> None:
        with torch.autocast(dev, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = loss_of(x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    if dev == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    if dev == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    return {
        "kind": args.kind,
        "size": args.size,
        "batch": args.batch,
        "device": args.device,
        "amp": args.amp,
        "compile": args.compile,
        "threads": torch.get_num_threads(),
        "parameters": count_parameters(model),
        "steps": args.steps,
        "events_per_s": args.batch * args.steps / seconds,
        "torch": torch.__version__,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description="xecmodel training-step throughput")
    ap.add_argument("--kind", default="regressor", choices=["regressor", "mae", "inpainter"])
    ap.add_argument("--size", default="base")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--amp", default=None, choices=[None, "bf16", "fp16"])
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--record", action="store_true", help=f"append the result to {RESULTS.name}")
    args = ap.parse_args()
    result = run(args)
    print(json.dumps(result))
    if args.record:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        with RESULTS.open("a") as f:
            f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
