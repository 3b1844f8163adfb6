"""ROOT output of the toy simulator (uproot): one TTree ``tree`` per file in the input layout
of DESIGN.md, written block by block (one basket per branch per block of 128 events).

Branches: ``npho``, ``nphe``, ``time``, ``relative_time``, ``relative_npho`` as fixed-size
float32[4760] arrays (``relative_npho`` repeats ``npho`` under the branch name of older
files), truth ``emiAng[2]`` (deg), ``energyTruth`` (GeV), ``timeTruth`` (ns), ``uvwTruth[3]``,
``xyzTruth[3]``, ``emiVec[3]``, ``xyzVTX[3]`` (cm) as float32, and ``run``, ``event``,
``nGamma`` as int32. Invalid values are 1e10. Each file also holds ``xec_sim``, a JSON string
(TObjString) with the seed, the options, the geometry id and the file's event range. With a
reconstruction calibration (``xec simulate --reco``) the files also carry the conventional
reconstruction of each event (``xecdata.reco``: uvwRecoFI, xyzRecoFI, energyReco, timeReco,
emiAngReco, statusReco), and ``xec_sim`` names the calibration (id and hash).

Files are written under a temporary name and renamed when complete, so an interrupted run
never leaves a file that looks finished.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import uproot
from tqdm import tqdm

from xecdata.geometry import geometry_id
from xecdata.sim.generate import BLOCK_EVENTS, SimConfig, iter_blocks

if TYPE_CHECKING:
    from xecdata.reco.calibration import Calibration

TREE_NAME = "tree"
META_KEY = "xec_sim"
COMPRESSIONS = {"zlib": uproot.ZLIB, "lzma": uproot.LZMA, "lz4": uproot.LZ4, "zstd": uproot.ZSTD}
DEFAULT_COMPRESSION = "zstd"
DEFAULT_LEVEL = 1  # fastest level of each algorithm: simulation output is CPU-bound


def compression_object(name: str, level: int | None = None) -> uproot.compression.Compression:
    """uproot compression object for 'zlib', 'lzma', 'lz4' or 'zstd' at a level (default 1)."""
    if name not in COMPRESSIONS:
        raise ValueError(f"--compression {name!r}: choose one of {', '.join(COMPRESSIONS)}")
    return COMPRESSIONS[name](DEFAULT_LEVEL if level is None else level)


def file_plan(
    output: Path, n_events: int, events_per_file: int | None, run: int
) -> list[tuple[Path, int, int]]:
    """(path, first event, end event) of each output file.

    A path ending in .root is one file; any other path is a folder that gets files
    ``xecsim_run<run>_<k>.root`` of events_per_file events each (all events if None).
    """
    output = Path(output)
    per_file = events_per_file or max(n_events, 1)
    if per_file < 1:
        raise ValueError(f"--events-per-file {events_per_file} must be at least 1")
    if output.suffix == ".root":
        if per_file < n_events:
            raise ValueError(
                f"-o {output} is a single file but --events-per-file {per_file} < -n "
                f"{n_events}: give a folder as -o to split the events into files"
            )
        return [(output, 0, n_events)]
    starts = range(0, max(n_events, 1), per_file)
    return [
        (output / f"xecsim_run{run:06d}_{k:04d}.root", s, min(s + per_file, n_events))
        for k, s in enumerate(starts)
    ]


def _branch_types(block: dict[str, np.ndarray]) -> dict[str, np.dtype]:
    """Branch dtypes; (N, k) arrays become fixed-size `name[k]` branches."""
    return {
        name: np.dtype((a.dtype, a.shape[1:])) if a.ndim > 1 else a.dtype
        for name, a in block.items()
    }


def _metadata(
    seed: int, cfg: SimConfig, first: int, end: int, compression: str, reco: str | None = None
) -> str:
    try:
        version = metadata.version("xec")
    except metadata.PackageNotFoundError:  # running from a source tree
        version = "unknown"
    meta = {
        "generator": "xec simulate", "xec_version": version, "seed": seed,
        "config": cfg.to_dict(), "geometry_id": geometry_id(), "events": [first, end],
        "block_events": BLOCK_EVENTS, "compression": compression,
    }  # fmt: skip
    return json.dumps(meta if reco is None else meta | {"reco_calibration": reco})


def _with_reco(
    blocks: Iterator[dict[str, np.ndarray]], cal: Calibration | None
) -> Iterator[dict[str, np.ndarray]]:
    """The blocks with the conventional reconstruction's branches added (cal given)."""
    if cal is None:
        yield from blocks
        return
    from xecdata.reco.reconstruct import STATUS_BRANCH, reconstruct

    for block in blocks:
        rec = reconstruct(block["npho"], block["relative_time"], block["xyzVTX"], cal)
        yield block | rec.branches | {STATUS_BRANCH: rec.status()}


def _split(
    blocks: Iterator[dict[str, np.ndarray]], plan: list[tuple[Path, int, int]]
) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """Yield (file index, arrays) pieces of the event stream cut at the file boundaries."""
    k, pos = 0, 0
    for block in blocks:
        n = len(block["event"])
        lo = 0
        while lo < n:
            while pos + lo >= plan[k][2]:
                k += 1
            hi = min(n, plan[k][2] - pos)
            yield k, {name: a[lo:hi] for name, a in block.items()}
            lo = hi
        pos += n


def simulate(
    n_events: int,
    output: str | Path,
    *,
    seed: int = 0,
    config: SimConfig | None = None,
    events_per_file: int | None = None,
    compression: str = DEFAULT_COMPRESSION,
    compression_level: int | None = None,
    progress: bool = False,
    reco: Calibration | None = None,
) -> list[Path]:
    """Simulate n_events and write them as ROOT files; returns the paths written. With
    `reco`, a calibration, the events are also reconstructed (``xecdata.reco``).

    Same seed and options -> same events (bit for bit), whatever events_per_file is.
    """
    cfg = config or SimConfig()
    tag = None if reco is None else f"{reco.id} {reco.hash}"
    if reco is not None:
        reco.check_usable("--reco")
    comp = compression_object(compression, compression_level)
    plan = file_plan(Path(output), n_events, events_per_file, cfg.run)
    plan[0][0].parent.mkdir(parents=True, exist_ok=True)
    done: list[Path] = []
    current: tuple[int, uproot.WritableDirectory, Path] | None = None
    bar = tqdm(total=n_events, unit="ev", desc="simulate", disable=not progress)
    try:
        for k, arrays in _split(_with_reco(iter_blocks(n_events, seed, cfg), reco), plan):
            if current is None or current[0] != k:
                if current is not None:
                    done.append(_finish(current))
                    current = None
                meta = _metadata(seed, cfg, plan[k][1], plan[k][2], compression, tag)
                current = (k, *_open(plan[k][0], comp, _branch_types(arrays), meta))
            current[1][TREE_NAME].extend(arrays)
            bar.update(len(arrays["event"]))
        if current is None:  # n_events == 0: an empty tree
            empty = next(_with_reco(iter_blocks(1, seed, cfg), reco))
            meta = _metadata(seed, cfg, 0, 0, compression, tag)
            current = (0, *_open(plan[0][0], comp, _branch_types(empty), meta))
        done.append(_finish(current))
        current = None
    finally:
        bar.close()
        if current is not None:  # interrupted: drop the unfinished file
            current[1].close()
            current[2].with_name(current[2].name + ".part").unlink(missing_ok=True)
    return done


def _open(
    path: Path, comp: uproot.compression.Compression, types: dict[str, np.dtype], meta: str
) -> tuple[uproot.WritableDirectory, Path]:
    """Open a file under its temporary name, create the tree and the metadata string."""
    f = uproot.recreate(path.with_name(path.name + ".part"), compression=comp)
    f.mktree(TREE_NAME, types, title="xec toy LXe detector simulation")
    f[META_KEY] = meta
    return f, path


def _finish(current: tuple[int, uproot.WritableDirectory, Path]) -> Path:
    """Close the file and move it to its final name."""
    _, f, path = current
    f.close()
    os.replace(path.with_name(path.name + ".part"), path)
    return path
