"""DDP on CPU (gloo): two processes produce the gradients of one process on the same events."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from tests.trainhelpers import ListLoader, toy_events
from xecdata.schemes import get_scheme
from xectrain.config import load_config
from xectrain.engine.distributed import setup_world, teardown_world
from xectrain.engine.steps import StepOps, build_model
from xectrain.run.loop import _no_sync

EVENTS, MICRO, ACCUM = 16, 4, 2  # per rank: two micro-batches of 4, summed before the step


def _model_and_ops() -> tuple[torch.nn.Module, StepOps]:
    torch.manual_seed(0)
    cfg = load_config("regressor", overrides=["tasks.energy.enabled=true"])
    model = build_model(cfg, get_scheme("new@1"))
    events = toy_events(EVENTS)
    model.fit_transforms({"angle": events["emiAng"], "energy": events["energyTruth"][:, None]})
    return model, StepOps(cfg)


def _grads(model: torch.nn.Module) -> dict[str, np.ndarray]:
    return {
        n: p.grad.detach().numpy().copy() for n, p in model.named_parameters() if p.grad is not None
    }


def _rank(rank: int, world: int, port: int, out: str) -> None:
    os.environ |= {"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
                   "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}  # fmt: skip
    torch.set_num_threads(1)
    w = setup_world("cpu")
    model, ops = _model_and_ops()
    ddp = DistributedDataParallel(model)
    loader = ListLoader(toy_events(EVENTS), MICRO, shuffle=False, rank=w.rank, world_size=world)
    for i, batch in enumerate(loader):
        with _no_sync(SimpleNamespace(model=ddp), sync=i + 1 == ACCUM):  # type: ignore[arg-type]
            loss, _ = ops.loss(ddp, model, batch)
            (loss / ACCUM).backward()
    np.savez(Path(out) / f"rank{rank}.npz", **_grads(model))
    teardown_world()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_processes_give_the_gradients_of_one(tmp_path: Path) -> None:
    mp.spawn(_rank, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    model, ops = _model_and_ops()
    loader = ListLoader(toy_events(EVENTS), MICRO, shuffle=False)  # the same 16 events, 1 rank
    for batch in loader:
        loss, _ = ops.loss(model, model, batch)
        (loss / (EVENTS // MICRO)).backward()
    single = _grads(model)
    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in range(2)]
    assert set(ranks[0].files) == set(single) and len(single) > 10
    for name, grad in single.items():
        assert np.array_equal(ranks[0][name], ranks[1][name]), name  # all-reduced: identical
        assert np.allclose(ranks[0][name], grad, rtol=1e-4, atol=1e-6), name


def _train_rank(rank: int, world: int, ports: tuple[int, int], tmp: str, store: str) -> None:
    """One rank of a DDP run on a real store: an MAE, then a regressor, 1 train batch each."""
    from tests.trainhelpers import tiny_config
    from xectrain.run.fit import train

    os.environ |= {"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
                   "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(ports[0])}  # fmt: skip
    torch.set_num_threads(1)
    common = ("tracking.enabled=false", "training.epochs=1", "checkpoint.save_artifacts=true",
              f"data.store={store}", "data.max_train_batches=1", "data.loader_threads=1",
              "data.val_batch_size=32")  # fmt: skip
    train(tiny_config("mae", Path(tmp), *common, "tracking.run_name=mae"))
    os.environ["MASTER_PORT"] = str(ports[1])  # a fresh rendezvous for the second run
    train(tiny_config("regressor", Path(tmp), *common, "tracking.run_name=reg",
                      "tasks.energy.enabled=true", "checkpoint.worst_events=2"))  # fmt: skip


def test_ddp_validation_counts_every_event_once(tmp_path: Path) -> None:
    """Under DDP the validation split is shared out without repeats: the MAE predictions of
    the three ranks' ROOT files and the regressor's CSV hold each validation event once (64
    events over 3 ranks: padding to equal batch counts would have repeated two)."""
    import csv

    import uproot

    from tests.loader_stores import build_store
    from xecdata.store import open_store

    store = build_store(tmp_path / "data")
    val = np.concatenate([np.arange(a, b) for a, b in open_store(store).split("val")])
    assert len(val) % 3 != 0
    ports = (_free_port(), _free_port())
    mp.spawn(_train_rank, args=(3, ports, str(tmp_path), str(store)), nprocs=3, join=True)
    parts = sorted((tmp_path / "artifacts" / "mae").glob("mae_predictions_epoch_001*.root"))
    want = [f"mae_predictions_epoch_001_rank{r}of3.root" for r in range(3)]
    assert [p.name for p in parts] == want
    seen = []
    for p in parts:
        with uproot.open(p) as f:
            seen.append(f["predictions"]["event_idx"].array(library="np"))
    assert np.array_equal(np.concatenate(seen), val)  # unshuffled, split between the ranks
    with open(tmp_path / "artifacts" / "reg" / "predictions_energy_reg.csv") as f:
        index = [int(row["event_index"]) for row in csv.DictReader(f)]
    assert sorted(index) == val.tolist()
    shown = sorted(p.name for p in (tmp_path / "artifacts" / "reg" / "worst_events").iterdir())
    assert shown == ["worst_01_reg.pdf", "worst_02_reg.pdf"]  # merged from the three ranks
