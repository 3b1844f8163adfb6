"""`xec reco INPUT... -o OUT.root`: the reconstruction over ROOT files or stores, streamed.

Inputs are read batch by batch (``xecdata.reco.inputs``), reconstructed (``reconstruct``) and
handed to a table writer (the CLI passes xectrain's ``TableRootWriter``: temporary name,
renamed on close, a one-entry ``metadata`` tree). Output per event: ``run``, ``event``, the
reco branches (``reconstruct.BRANCHES``) and ``statusReco``; metadata: the calibration's id
and hash, geometry id, algorithm, inputs. Nothing is dropped: an event that cannot be
reconstructed gets the 1e10 marker and is counted by reason in the summary. When the inputs
carry simulation truth, the summary also holds the resolutions (``resolution``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from xecdata.geometry import geometry_id
from xecdata.reco.calibration import ALGORITHM, Calibration
from xecdata.reco.inputs import EventBatch, count_events, iter_batches, resolve
from xecdata.reco.reconstruct import BRANCHES, STATUS_BRANCH, RecoBatch, reconstruct
from xecdata.reco.resolution import resolution_table
from xecdata.rootio import DEFAULT_TIME, DEFAULT_TREE

TRUTH_FOR_RESOLUTION = ("energyTruth", "uvwTruth", "timeTruth", "emiAng")


class TableWriter(Protocol):
    """What the driver needs of an output table (xectrain's TableRootWriter has it)."""

    metadata: dict[str, Any]

    def write(self, arrays: Mapping[str, np.ndarray]) -> None: ...

    def close(self) -> Path: ...

    def abort(self) -> None: ...


WriterFactory = Callable[[Mapping[str, np.ndarray]], TableWriter]


def _ids(batch: EventBatch, note: Callable[[str], None]) -> dict[str, np.ndarray]:
    n = len(batch.npho)
    if "run" in batch.columns and "event" in batch.columns:
        return {"run": np.asarray(batch.columns["run"], np.int32),
                "event": np.asarray(batch.columns["event"], np.int32)}  # fmt: skip
    note(f"{batch.source} has no run / event branches: run is -1 and event the entry number")
    return {"run": np.full(n, -1, np.int32),
            "event": np.arange(batch.first, batch.first + n, dtype=np.int32)}  # fmt: skip


class _Summary:
    """Counts, notes (each said once) and what the resolution table needs."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.notes: list[str] = []
        self.events = 0
        self.failed: dict[str, int] = {}
        self.incomplete: dict[str, int] = {}
        self.reco: dict[str, list[np.ndarray]] = {b: [] for b in BRANCHES}
        self.truth: dict[str, list[np.ndarray]] = {}

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)
            self.say(text)

    def add(self, batch: EventBatch, rec: RecoBatch) -> None:
        self.events += len(batch.npho)
        for reason, n in rec.failure_counts().items():
            into = self.incomplete if reason in ("no_usable_time", "no_vertex") else self.failed
            into[reason] = into.get(reason, 0) + n
        for b in BRANCHES:
            self.reco[b].append(rec.branches[b])
        for t in TRUTH_FOR_RESOLUTION:
            if t in batch.columns:
                self.truth.setdefault(t, []).append(np.asarray(batch.columns[t]))

    def resolution(self) -> dict[str, Any]:
        truth = {k: np.concatenate(v) for k, v in self.truth.items()
                 if sum(map(len, v)) == self.events}  # fmt: skip
        return resolution_table({k: np.concatenate(v) for k, v in self.reco.items()}, truth)


def _vertex(batch: EventBatch, summary: _Summary) -> np.ndarray | None:
    if "xyzVTX" in batch.columns:
        return np.asarray(batch.columns["xyzVTX"], np.float64).reshape(-1, 3)
    summary.note(f"{batch.source} has no xyzVTX: emiAngReco is left out (1e10) and the line of "
                 "flight and the gamma's flight time start at the target centre")  # fmt: skip
    return None


def reconstruct_files(
    inputs: Sequence[str | Path], make_writer: WriterFactory, cal: Calibration, *,
    batch: int = 1024, tree: str = DEFAULT_TREE, npho_branch: str | None = None,
    time_branch: str = DEFAULT_TIME, progress: bool = False,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:  # fmt: skip
    """Reconstruct every event of the inputs in order into one table; returns the summary."""
    cal.check_usable("--calibration")
    paths = resolve(inputs)
    summary, writer = _Summary(say), None
    wall, cpu = time.perf_counter(), time.process_time()
    bar = tqdm(total=sum(count_events(p, tree) for p in paths), unit="ev", desc="reco",
               disable=not progress)  # fmt: skip
    try:
        for path in paths:
            for b in iter_batches(path, batch, tree, npho_branch, time_branch):
                rec = reconstruct(b.npho, b.time, _vertex(b, summary), cal)
                arrays = _ids(b, summary.note) | rec.branches | {STATUS_BRANCH: rec.status()}
                writer = writer or make_writer(arrays)
                writer.write(arrays)
                summary.add(b, rec)
                bar.update(len(b.npho))
        if writer is None:
            raise ValueError(f"the inputs ({', '.join(map(str, inputs))}) hold no events; "
                             "nothing was written")  # fmt: skip
        writer.metadata = _metadata(cal, paths, summary.events)
        out = writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        bar.close()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "output": str(out), "inputs": [str(p) for p in paths], "events": summary.events,
        "reconstructed": summary.events - sum(summary.failed.values()),
        "failed": summary.failed, "incomplete": summary.incomplete,
        "calibration": cal.id, "calibration_hash": cal.hash, "seconds": wall,
        "events_per_s": summary.events / max(wall, 1e-9),
        "events_per_s_cpu": summary.events / max(cpu, 1e-9),
        "notes": summary.notes, "resolution": summary.resolution(),
    }  # fmt: skip


def _metadata(cal: Calibration, paths: Sequence[str | Path], n: int) -> dict[str, str | int]:
    return {
        "kind": "reco", "calibration": cal.id, "calibration_hash": cal.hash,
        "geometry_id": geometry_id(), "algorithm": ALGORITHM, "n_events": n,
        "branches": ",".join((*BRANCHES, STATUS_BRANCH)),
        "inputs": "\n".join(str(p) for p in paths),
    }  # fmt: skip
