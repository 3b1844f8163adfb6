"""Distributed training helpers: one process per device under torchrun (NCCL on GPUs, gloo on
CPU), a no-op world of one otherwise. Only rank 0 writes files, logs and shows progress.

Multi-node with SLURM: one task per node, torchrun spawns one process per GPU, e.g.
    srun --nodes=2 --ntasks-per-node=1 torchrun --nnodes=2 --nproc-per-node=4 \
        --rdzv-backend=c10d --rdzv-endpoint=$(hostname):29500 -m xec_cli.main train regressor ...
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from xectrain.config import ConfigError


@dataclass(frozen=True)
class World:
    """This process's place: rank, world size, local rank and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes checkpoints, artifacts and MLflow records."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(preference: str, local_rank: int = 0) -> torch.device:
    """cuda:<local rank> when CUDA is wanted and present, else cpu; 'cuda' without CUDA fails."""
    if preference == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "device cuda (--device / training.device) but no CUDA device is visible here; "
            "use auto or cpu"
        )
    if preference in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def setup_world(device_preference: str = "auto") -> World:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK), if any."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_preference, local_rank)
    if device.type == "cpu":
        torch.set_flush_denormal(True)  # denormal activations slow CPU convolutions several-fold
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
            dist.init_process_group("nccl", device_id=device)  # bound: no guessing per call
        else:
            dist.init_process_group("gloo")
    return World(rank, world_size, local_rank, device)


def set_deterministic(on: bool) -> None:
    """Deterministic kernels for this process (training.deterministic): cuBLAS needs a fixed
    workspace, set before its first use; ops without a deterministic version warn."""
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(on, warn_only=True)
    torch.backends.cudnn.deterministic = on
    torch.backends.cudnn.benchmark = False if on else torch.backends.cudnn.benchmark


def teardown_world() -> None:
    """Leave the process group (end of training) and undo setup_world's process-wide CPU
    setting: flushed denormals would otherwise change every later float computation of the
    process (numpy's too: nextafter(0, 1) becomes 0), e.g. in tests or a notebook."""
    torch.set_flush_denormal(False)
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum `tensor` over ranks in place (identity in a world of one)."""
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def gather_to_main(obj: Any) -> list[Any]:
    """Every rank's `obj` as a list on rank 0 (other ranks get []); [obj] without a group."""
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return [obj]
    out: list[Any] | None = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(obj, out, dst=0)
    return out or []


def concat_gathered(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate per-rank dicts of arrays along the event axis."""
    if not parts:
        return {}
    return {k: np.concatenate([p[k] for p in parts], axis=0) for k in parts[0]}


def barrier() -> None:
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


def broadcast_from_main(obj: Any) -> Any:
    """Rank 0's `obj` on every rank (e.g. a run name that contains a time stamp)."""
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
