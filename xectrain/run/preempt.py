"""Stopping a run cleanly when the cluster asks: SIGTERM (what SLURM sends before the wall time
or on preemption) or SIGUSR1 (`sbatch --signal=USR1@<s>`) make training finish the optimizer
step it is in, write checkpoint_last with the loader position, and exit with PREEMPTED_EXIT.

The signal reaches the ranks at different moments (or only one of them), so the ranks agree
before acting: after every optimizer step each rank adds its flag into an all-reduce, and all
stop at the step where the sum first is non-zero. Under DDP that all-reduce is started
asynchronously and read one step later, so the loop never waits for it (the ranks stop one
step after the signal); a world of one reads its flag directly.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

import torch
import torch.distributed as dist

from xectrain.engine.distributed import World

PREEMPTED_EXIT = 75  # EX_TEMPFAIL (sysexits.h): stopped early, run it again to continue
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class StopFlag:
    """The stop request of one run: set by STOP_SIGNALS while installed (a context manager),
    agreed on by all ranks with `after_step` (every optimizer step) and `now` (epoch ends)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.signal: int | None = None  # the signal that asked this rank to stop
        self.stopped_by: str | None = None  # once agreed: the signal's name (any rank's)
        self._pending: tuple[Any, torch.Tensor] | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pending is not None:  # complete it; a request this late changes nothing
            self._pending[0].wait()
            self._pending = None
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        self.signal = signum

    def _code(self) -> float:
        return float(self.signal or 0)

    def _agree(self, value: float) -> None:
        if value > 0 and self.stopped_by is None:
            self.stopped_by = signal.Signals(int(value)).name

    def after_step(self) -> bool:
        """True when every rank stops after this step (all ranks get the same answers)."""
        if self.stopped_by is not None:
            return True
        if not self.world.distributed:
            self._agree(self._code())
            return self.stopped_by is not None
        flag = torch.tensor([self._code()], device=self.world.device)
        work = dist.all_reduce(flag, op=dist.ReduceOp.MAX, async_op=True)
        previous, self._pending = self._pending, (work, flag)
        if previous is not None:
            previous[0].wait()
            self._agree(float(previous[1].item()))
        return self.stopped_by is not None

    def drain(self) -> None:
        """Finish the all-reduce in flight (before other collectives' results are needed)."""
        if self._pending is not None:
            work, flag = self._pending
            self._pending = None
            work.wait()
            self._agree(float(flag.item()))

    def now(self) -> bool:
        """Agree on the flags as they are now (a synchronous all-reduce; at epoch ends)."""
        self.drain()
        if self.world.distributed:
            flag = torch.tensor([self._code()], device=self.world.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            self._agree(float(flag.item()))
        else:
            self._agree(self._code())
        return self.stopped_by is not None
