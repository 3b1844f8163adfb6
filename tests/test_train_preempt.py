"""Preemption-safe training: SIGTERM / SIGUSR1 finish the step on every rank, write
checkpoint_last with the loader position and exit 75; mid-epoch checkpoints (every_steps,
every_minutes); a resume from any of them ends with the weights of the uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from click.testing import CliRunner

from tests.trainhelpers import ListLoader, tiny_config, toy_events, toy_loaders
from xectrain.checkpoint import load_checkpoint
from xectrain.run.fit import RunResult, train

OPTS = ("tracking.enabled=false", "training.epochs=2", "training.deterministic=true")


class SignalLoader(ListLoader):
    """Sends `sig` to this process while handing out batch `at` (epoch, batch)."""

    def __init__(self, *a: Any, sig: int, at: tuple[int, int], **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.sig, self.at = sig, at

    def __iter__(self):  # type: ignore[no-untyped-def]
        for batch in super().__iter__():
            if (self.epoch, self.consumed - 1) == self.at:
                os.kill(os.getpid(), self.sig)
            yield batch


class DyingLoader(ListLoader):
    """Raises KeyboardInterrupt (a hard kill: no signal handling) before batch `at`."""

    at = (1, 1)

    def __iter__(self):  # type: ignore[no-untyped-def]
        for batch in super().__iter__():
            if (self.epoch, self.consumed - 1) == self.at:
                raise KeyboardInterrupt("killed")
            yield batch


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "checkpoint_last.pth")["model"]


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    tmp = tmp_path_factory.mktemp("full")
    return train(tiny_config("regressor", tmp, *OPTS, "tracking.run_name=full"), toy_loaders(16))


def test_sigterm_stops_after_the_step_and_resume_equals_the_full_run(
    tmp_path: Path, uninterrupted: RunResult
) -> None:
    loaders = toy_loaders(16)  # 16 events, batches of 8: 2 steps per epoch
    loaders.train = SignalLoader(toy_events(16), 8, shuffle=True, sig=signal.SIGTERM, at=(1, 0))
    cut = train(tiny_config("regressor", tmp_path, *OPTS, "tracking.run_name=cut"), loaders)
    assert cut.stopped_by == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers put back
    last = cut.run_dir / "checkpoint_last.pth"
    ckpt = load_checkpoint(last)
    assert (ckpt["epoch"], ckpt["epoch_batches"], ckpt["step"]) == (1, 1, 3)  # batch 0 finished
    assert ckpt["loader"] == {"epoch": 1, "batches": 1}
    resumed = train(
        tiny_config("regressor", tmp_path, *OPTS, "tracking.run_name=cut",
                    f"checkpoint.resume_from={last}"),
        toy_loaders(16),
    )  # fmt: skip
    assert resumed.stopped_by is None
    assert _same(_weights(resumed.run_dir), _weights(uninterrupted.run_dir))
    assert resumed.metrics["val/total_loss"] == uninterrupted.metrics["val/total_loss"]


@pytest.mark.slow
def test_periodic_checkpoints_resume_mid_epoch_after_a_hard_kill(
    tmp_path: Path, uninterrupted: RunResult
) -> None:
    """every_steps=3: killed (no signal) before epoch 1 batch 1, the last checkpoint is the
    one of step 3 (epoch 1, batch 0 done); the requeued run (resume_last, same run name)
    continues there."""
    cfg = ("checkpoint.every_steps=3", "checkpoint.resume_last=true", "tracking.run_name=kill")
    loaders = toy_loaders(16)
    loaders.train = DyingLoader(toy_events(16), 8, shuffle=True)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config("regressor", tmp_path, *OPTS, *cfg), loaders)
    ckpt = load_checkpoint(tmp_path / "artifacts" / "kill" / "checkpoint_last.pth")
    assert (ckpt["epoch"], ckpt["epoch_batches"], ckpt["step"]) == (1, 1, 3)
    resumed = train(tiny_config("regressor", tmp_path, *OPTS, *cfg), toy_loaders(16))
    assert _same(_weights(resumed.run_dir), _weights(uninterrupted.run_dir))


@pytest.mark.slow
def test_every_minutes_writes_mid_epoch_and_usr1_stops(tmp_path: Path) -> None:
    loaders = toy_loaders(16)
    loaders.train = SignalLoader(toy_events(16), 8, shuffle=True, sig=signal.SIGUSR1, at=(1, 0))
    seen: list[int] = []
    real = torch.save

    def spy(obj: Any, f: Any, *a: Any, **kw: Any) -> None:
        if isinstance(obj, dict) and obj.get("epoch_batches"):  # mid-epoch checkpoints
            seen.append(obj["step"])
        real(obj, f, *a, **kw)

    with pytest.MonkeyPatch.context() as mp_:
        mp_.setattr(torch, "save", spy)
        res = train(tiny_config("regressor", tmp_path, *OPTS, "checkpoint.every_minutes=1e-9"),
                    loaders)  # fmt: skip
    assert res.stopped_by == "SIGUSR1"
    assert seen == [1, 2, 3]  # every step (a nanominute has passed); 3: the stop's


def test_train_command_exits_75_and_names_the_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import xectrain.run.fit as fit
    from xec_cli.main import main

    stopped = RunResult(tmp_path / "r", "r", 1.0, stopped_by="SIGTERM")
    monkeypatch.setattr(fit, "train", lambda cfg: stopped)
    res = CliRunner().invoke(main, ["train", "regressor", "--store", "s"])
    assert res.exit_code == 75, res.output
    assert f"stopped by SIGTERM after the current step; continue with: xec train ... " \
           f"--resume-from {tmp_path / 'r' / 'checkpoint_last.pth'}" in res.output  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ddp_rank(rank: int, world: int, ports: list[int], tmp: str) -> None:
    """Full run, a run where only rank 1 gets SIGUSR1, and its resume, on 2 gloo ranks."""
    os.environ |= {"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
                   "MASTER_ADDR": "127.0.0.1"}  # fmt: skip
    torch.set_num_threads(1)
    kw = {"rank": rank, "world_size": world}
    out: dict[str, Any] = {}
    for n, name in enumerate(("full", "cut", "resumed")):
        os.environ["MASTER_PORT"] = str(ports[n])
        loaders = toy_loaders(64, 16, **kw)  # 4 batches per rank and epoch
        extra: tuple[str, ...] = ()
        if name == "cut" and rank == 1:
            loaders.train = SignalLoader(toy_events(64), 8, shuffle=True, sig=signal.SIGUSR1,
                                         at=(1, 1), **kw)  # fmt: skip
        if name == "resumed":
            extra = (
                f"checkpoint.resume_from={Path(tmp) / 'artifacts' / 'cut' / 'checkpoint_last.pth'}",
            )
        run_name = "cut" if name == "resumed" else name
        res = train(tiny_config("regressor", Path(tmp), *OPTS, f"tracking.run_name={run_name}",
                                *extra), loaders)  # fmt: skip
        out[name] = res.stopped_by
        if rank == 0 and name != "cut":
            w = _weights(res.run_dir)
            np.savez(Path(tmp) / f"{name}.npz", **{k: v.numpy() for k, v in w.items()})
        if rank == 0 and name == "cut":
            ck = load_checkpoint(res.run_dir / "checkpoint_last.pth")
            out["cut_at"] = [ck["epoch"], ck["epoch_batches"], ck["step"]]
    (Path(tmp) / f"rank{rank}.json").write_text(json.dumps(out))


@pytest.mark.slow
def test_two_gloo_ranks_agree_on_the_step_and_resume_exactly(tmp_path: Path) -> None:
    ports = [_free_port() for _ in range(3)]
    mp.spawn(_ddp_rank, args=(2, ports, str(tmp_path)), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    # only rank 1 got the signal (during batch 1 of epoch 1, before step 6); the flags are read
    # one step later, so both stop after step 7 (epoch 1, 3 batches done)
    assert ranks[0]["cut"] == ranks[1]["cut"] == "SIGUSR1"
    assert ranks[0]["cut_at"] == [1, 3, 7]
    assert ranks[0]["full"] is None and ranks[0]["resumed"] is None
    full, resumed = np.load(tmp_path / "full.npz"), np.load(tmp_path / "resumed.npz")
    assert set(full.files) == set(resumed.files) and len(full.files) > 10
    for k in full.files:
        assert np.array_equal(full[k], resumed[k]), k


@pytest.mark.slow
def test_kill_term_of_xec_train_exits_75_and_leaves_a_resumable_checkpoint(
    tmp_path: Path, toy_store: Path
) -> None:
    """The case as a user meets it: `kill -TERM` of a running `xec train` on a store."""
    import subprocess
    import sys
    import time

    sets = ("tracking.enabled=false", "training.device=cpu", "data.batch_size=16",
            "checkpoint.every_steps=1", "training.epochs=50", "data.loader_threads=1",
            "checkpoint.save_artifacts=false", f"checkpoint.dir={tmp_path}")  # fmt: skip
    cmd = [sys.executable, "-m", "xec_cli.main", "train", "regressor", "--store", str(toy_store),
           "--run-name", "long", *(a for s in sets for a in ("--set", s))]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    last = tmp_path / "long" / "checkpoint_last.pth"
    deadline = time.monotonic() + 300
    while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)  # training is under way: a step has been checkpointed
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 75, err[-2000:]
    assert f"stopped by SIGTERM after the current step; continue with: xec train ... " \
           f"--resume-from {last}" in err  # fmt: skip
    ckpt = load_checkpoint(last)
    assert ckpt["step"] >= 1 and ckpt["epoch"] < 50
    if ckpt["epoch_batches"]:  # stopped mid-epoch (else between epochs)
        assert ckpt["loader"]["epoch"] == ckpt["epoch"]
        assert ckpt["loader"]["batches"] == ckpt["epoch_batches"]


@pytest.mark.slow
def test_mid_epoch_resume_on_a_store_restores_the_real_loader(
    tmp_path: Path, toy_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store loader (shuffle window, augmentation, sharding) continues at the batch of a
    mid-epoch checkpoint: resumed from step 3 of 4, the weights equal the uninterrupted run."""
    import shutil

    import xectrain.run.resume as resume

    sets = ("training.epochs=1", f"data.store={toy_store}", "data.max_train_batches=4",
            "data.max_val_batches=1", "data.loader_threads=1", "checkpoint.every_steps=3",
            "training.augment.npho_noise=0.05")  # fmt: skip
    real = resume.save_checkpoint
    kept = tmp_path / "step3.pth"

    def keep_step_3(path: Path, ckpt: dict[str, Any]) -> Path:
        if ckpt["step"] == 3 and ckpt["epoch_batches"]:
            real(kept, ckpt)
        return real(path, ckpt)

    monkeypatch.setattr(resume, "save_checkpoint", keep_step_3)
    full = train(tiny_config("regressor", tmp_path, *OPTS, *sets, "tracking.run_name=full"))
    ckpt = load_checkpoint(kept)
    assert ckpt["loader"]["batches"] == ckpt["epoch_batches"] == 3 and ckpt["epoch"] == 0
    shutil.copy(kept, tmp_path / "resume_from.pth")
    again = f"checkpoint.resume_from={tmp_path / 'resume_from.pth'}"
    resumed = train(
        tiny_config("regressor", tmp_path, *OPTS, *sets, "tracking.run_name=again", again)
    )
    assert _same(_weights(resumed.run_dir), _weights(full.run_dir))
