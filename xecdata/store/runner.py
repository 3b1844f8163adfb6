"""Running the work units of a plan: in this process or in a pool of worker processes.

Workers are started with forkserver (spawn where unavailable), never fork, so they are safe
with threads and foreign libraries in the parent. They die with the ingesting process, even on
kill -9: each holds the read end of a pipe whose only writer is that process and a thread that
kills the worker at its EOF (on Linux also PR_SET_PDEATHSIG against the forkserver); once the
workers are gone, the forkserver and multiprocessing's resource tracker see EOF and exit too.
A worker loads the plan from the store once per plan id; tasks carry only (store, plan id,
unit). Progress: a tqdm bar in events with rate and ETA, advanced per finished unit.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import multiprocessing as mp
import os
import signal
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tqdm import tqdm

from xecdata.store.format import PLAN_FILE
from xecdata.store.parts import hash_input, recorded_hash
from xecdata.store.units import run_unit, unit_done, unit_range

_PLANS: dict[str, dict[str, Any]] = {}


def _init_worker(lifeline: Any = None) -> None:
    import numcodecs

    numcodecs.blosc.use_threads = False  # one core per worker; blosc's own threads off
    if lifeline is not None:
        die_with_parent(lifeline)


def die_with_parent(lifeline: Any) -> None:
    """Kill this process as soon as `lifeline` (a pipe's read end whose only writer is the
    parent process) reaches EOF, i.e. the parent is gone, however it died."""
    if sys.platform.startswith("linux"):  # also when the forkserver (our parent) dies
        with contextlib.suppress(OSError, AttributeError):  # PR_SET_PDEATHSIG = 1
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))

    def watch() -> None:
        with contextlib.suppress(EOFError, OSError):
            lifeline.recv()  # nothing is ever sent: returns only by EOF
        os.kill(os.getpid(), signal.SIGKILL)  # a unit left half done is redone on resume

    threading.Thread(target=watch, name="xec-lifeline", daemon=True).start()


@contextmanager
def worker_pool(workers: int) -> Iterator[Executor | None]:
    """A process pool of `workers` (None for 1: everything runs in this process); its workers
    die with this process (module docstring)."""
    if workers <= 1:
        _init_worker()
        yield None
        return
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(method)
    lifeline, keep_alive = ctx.Pipe(duplex=False)  # (read end, write end: only this process)
    pool = ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_init_worker, initargs=(lifeline,)
    )
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        keep_alive.close()
        lifeline.close()


def _unit_task(root: str, plan_id: str, unit: int) -> dict[str, Any]:
    plan = _PLANS.get(plan_id)
    if plan is None:
        plan = json.loads((Path(root) / PLAN_FILE).read_text())
        if plan["plan_id"] != plan_id:
            raise RuntimeError(f"store {root}: the plan changed while units were running")
        _PLANS.clear()
        _PLANS[plan_id] = plan
    return run_unit(Path(root), plan, unit)


def run_units(
    root: Path,
    plan: dict[str, Any],
    pool: Executor | None,
    progress: bool,
    units: list[int],
    files: list[int],
) -> dict[str, Any]:
    """Run the unfinished ones of `units` and hash the input `files` (plan indices) not hashed
    yet, in the pool's workers (hashes first, so that none ends up as the tail; without a pool
    in a thread beside the units); returns counts, events and peak RSS (MB)."""
    todo = [k for k in units if not unit_done(root, plan, k)]
    hashes = [(str(root), plan["plan_id"], i, plan["files"][i]["path"]) for i in files]
    hashes = [h for h in hashes if recorded_hash(root, plan, h[2]) is None]
    report = {
        "run": len(todo),
        "resumed": len(units) - len(todo),
        "events": sum(b - a for a, b in (unit_range(plan, k) for k in todo)),
        "peak_rss_mb": 0.0,
    }
    bar = tqdm(total=report["events"], unit="ev", unit_scale=True, desc=plan["action"],
               disable=not progress, smoothing=0.05, dynamic_ncols=True)  # fmt: skip
    with bar, ThreadPoolExecutor(1) as side:
        executor: Executor = side if pool is None else pool
        hashed = [executor.submit(hash_input, *h) for h in hashes]
        if pool is None:
            results: Iterator[dict[str, Any]] = (run_unit(root, plan, k) for k in todo)
        else:
            futures = [pool.submit(_unit_task, str(root), plan["plan_id"], k) for k in todo]
            results = (f.result() for f in as_completed(futures))
        for r in results:
            bar.update(r["events"])
            report["peak_rss_mb"] = max(report["peak_rss_mb"], r["peak_rss_mb"])
        for f in hashed:
            f.result()
    return report
