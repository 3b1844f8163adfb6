"""ROOT input: open, validate and read the event trees that `xec ingest` turns into a store.

Files may come from ROOT (any compression: ZLIB, LZMA, LZ4, ZSTD) or from uproot, with the
per-sensor branches as fixed-size arrays (`npho[4760]/F`) or jagged ones (`std::vector<float>`
or uproot's counter-jagged `npho[nnpho]`). Every error a user can hit is an `InputError` whose
message names the file, tree, branch and entry and says how to fix it.

Kept per-event branches, when present (all files of one ingest must carry the same set):
truth `truth_branches()` (every task's truth branch and `OTHER_TRUTH`), reconstruction
`reco_branches()` (every task's reco branch and `OTHER_RECO`) plus any other numeric
fixed-size branch whose name contains "Reco", ids
`ID_BRANCHES`. NaN/Inf in a truth branch is an error; 1e10 is the legitimate "invalid" marker
of these files and is kept as is.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xecdata.errors import InputError
from xecdata.geometry import N_SENSORS
from xecdata.tasks import TASKS, task_branches

# truth branches kept besides the tasks' ones (xecdata.tasks): positions for analysis
OTHER_TRUTH = ("xyzTruth", "xyzVTX")
# reconstruction kept besides the tasks' reco branches: the first-interaction point, from
# which (with xyzVTX) real-data files give the angle (xecdata.tasks, reco_derived)
OTHER_RECO = ("xyzRecoFI",)
ID_BRANCHES = ("run", "event")
DEFAULT_TREE = "tree"
DEFAULT_NPHO = "npho"
FALLBACK_NPHO = "relative_npho"
DEFAULT_TIME = "relative_time"
ROOT_MAGIC = b"root"
_SKIP = "remove it from the inputs or pass --skip-bad to record it as skipped and go on"
_SKIP_FIX = _SKIP[0].upper() + _SKIP[1:]


@dataclass(frozen=True)
class Column:
    """A kept per-event branch: its kind (truth/reco/ids), native dtype and per-event shape."""

    name: str
    kind: str
    dtype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class FileInfo:
    """What the pre-pass learned about one input file."""

    path: str
    size: int
    mtime_ns: int
    tree: str
    entries: int
    npho_branch: str
    time_branch: str
    jagged: tuple[bool, bool]  # (npho, time) stored as variable-length arrays
    columns: tuple[Column, ...]
    basket_starts: tuple[int, ...] = field(default=(), repr=False)
    note: str = ""


def _url(path: str | Path) -> str | None:
    """The URL when `path` is one (xecdata.remote), else None."""
    from xecdata.remote import is_url

    return path if isinstance(path, str) and is_url(path) else None


def file_stat(path: str | Path) -> tuple[int, int]:
    """(size in bytes, modification time in ns) of a local file or a URL (0: not known)."""
    url = _url(path)
    if url is not None:
        from xecdata import remote

        return remote.stat(url)
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def sha256_file(path: str | Path, block: int = 1 << 22) -> str:
    """'sha256:<hex>' of a file's bytes (local or at a URL)."""
    url = _url(path)
    if url is not None:
        from xecdata import remote

        return remote.sha256(url, block)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def fingerprint(path: str | Path, edge: int = 1 << 20) -> str:
    """'fp:<hex>': sha256 of the file size and its first and last MiB. Cheap enough for the
    pre-pass duplicate check (ROOT files carry a per-file UUID in their header, so a copy is
    recognised and two different files are not confused); the full sha256 is recorded too."""
    h = hashlib.sha256()
    url = _url(path)
    size = file_stat(path)[0]
    h.update(size.to_bytes(8, "little"))
    if url is not None:
        from xecdata.remote import read_range

        h.update(read_range(url, 0, edge))
        h.update(read_range(url, max(size - edge, 0), edge))
        return "fp:" + h.hexdigest()
    with open(path, "rb") as f:
        h.update(f.read(edge))
        f.seek(max(size - edge, 0))
        h.update(f.read(edge))
    return "fp:" + h.hexdigest()


def _size_and_magic(path: str | Path) -> tuple[int, bytes]:
    """(size, first 4 bytes) of a local file or a URL; InputError when there is none."""
    url = _url(path)
    if url is not None:
        from xecdata.remote import read_range

        return file_stat(url)[0], read_range(url, 0, 4)
    if not Path(path).is_file():
        raise InputError(path, "no such file", "Check the INPUT path")
    with open(path, "rb") as f:
        return os.path.getsize(path), f.read(4)


def open_tree(path: str | Path, tree: str) -> Any:
    """Open `tree` in a ROOT file (a path or a URL) with clear errors for the common ways
    this fails."""
    import uproot

    path = path if _url(path) else Path(path)
    size, magic = _size_and_magic(path)
    if magic != ROOT_MAGIC:
        raise InputError(
            path, "not a ROOT file (no 'root' header)", f"Pass only ROOT files, or {_SKIP}"
        )
    try:
        handle = uproot.open(path, array_cache=None)  # read once: caching only costs memory
        end = int(handle.file.fEND)
    except Exception as exc:
        raise InputError(path, f"unreadable ROOT file ({exc})", _SKIP_FIX) from exc
    if size < end:
        raise InputError(
            path,
            f"truncated: {size} bytes on disk, the header says {end}",
            f"Copy the file again (an interrupted transfer?) or {_SKIP}",
        )
    trees = [k.split(";")[0] for k, c in handle.classnames().items() if c == "TTree"]
    if not trees:
        raise InputError(path, "holds no TTree at all (damaged, or not an event file)", _SKIP_FIX)
    if tree not in trees:
        raise InputError(
            path,
            f"no TTree named {tree!r} (trees here: {', '.join(trees) or 'none'})",
            "Pass the tree name with --tree",
            tree=tree,
        )
    return handle[tree]


def inspect_file(
    path: str | Path, tree: str, npho_branch: str | None, time_branch: str, t: Any = None
) -> FileInfo:
    """Structure checks of one file (branches, shapes, entries); reads no event data.

    npho_branch None means `npho`, else `relative_npho` (with a note saying so); t: the open
    TTree, if the caller has it.
    """
    t = t if t is not None else open_tree(path, tree)
    names = set(t.keys())
    note = ""
    if npho_branch is None:
        npho_branch = DEFAULT_NPHO
        if DEFAULT_NPHO not in names and FALLBACK_NPHO in names:
            npho_branch, note = FALLBACK_NPHO, "no 'npho' branch: read 'relative_npho' instead"
    jagged = tuple(_sensor_kind(t, path, tree, b) for b in (npho_branch, time_branch))
    if t.num_entries == 0:
        raise InputError(path, "the tree has no entries", _SKIP_FIX, tree=tree)
    size, mtime_ns = file_stat(path)
    return FileInfo(
        path=str(path) if _url(path) else str(Path(path).resolve()),
        size=size,
        mtime_ns=mtime_ns,
        tree=tree,
        entries=int(t.num_entries),
        npho_branch=npho_branch,
        time_branch=time_branch,
        jagged=(jagged[0], jagged[1]),
        columns=_columns(t, path, tree),
        basket_starts=tuple(int(x) for x in t[npho_branch].entry_offsets),
        note=note,
    )


def _sensor_kind(t: Any, path: str | Path, tree: str, branch: str) -> bool:
    """True for a jagged sensor branch, False for a fixed [4760] one; InputError otherwise."""
    import uproot

    if branch not in set(t.keys()):
        flag = "--npho-branch" if "npho" in branch else "--time-branch"
        raise InputError(
            path,
            f"no branch {branch!r} (branches: {', '.join(sorted(t.keys()))})",
            f"Pass the right name with {flag}",
            tree=tree,
            branch=branch,
        )
    interp = t[branch].interpretation
    if isinstance(interp, uproot.AsJagged):
        return True
    shape = getattr(interp, "inner_shape", None)
    if isinstance(interp, uproot.AsDtype) and shape == (N_SENSORS,):
        return False
    raise InputError(
        path,
        f"branch has type {t[branch].typename}, expected float[{N_SENSORS}] or "
        "std::vector<float> with one value per sensor",
        "Point --npho-branch/--time-branch at the per-sensor arrays",
        tree=tree,
        branch=branch,
    )


def truth_branches() -> tuple[str, ...]:
    """Truth branches an ingest keeps: every task's truth branch, then OTHER_TRUTH."""
    return task_branches() + tuple(b for b in OTHER_TRUTH if b not in task_branches())


def reco_branches() -> tuple[str, ...]:
    """Named reconstruction branches an ingest keeps: every task's reco branch, OTHER_RECO."""
    tasks = tuple(dict.fromkeys(t.reco for t in TASKS.values() if t.reco))
    return tasks + tuple(b for b in OTHER_RECO if b not in tasks)


def _columns(t: Any, path: str | Path, tree: str) -> tuple[Column, ...]:
    """The kept truth/reco/id branches of a tree with their dtypes and shapes."""
    import uproot

    truth = truth_branches()
    wanted = [(b, "truth") for b in truth] + [(b, "ids") for b in ID_BRANCHES]
    reco = reco_branches()
    wanted += [(b, "reco") for b in reco]
    wanted += [(b, "reco") for b in sorted(t.keys()) if "Reco" in b and b not in reco]
    out = []
    present = set(t.keys())
    for name, kind in wanted:
        if name not in present:
            continue
        interp = t[name].interpretation
        fixed = isinstance(interp, uproot.AsDtype) and interp.to_dtype.base.kind in "fiub"
        if not fixed or int(np.prod(interp.inner_shape)) >= N_SENSORS:
            if name in truth + reco + ID_BRANCHES:
                raise InputError(
                    path,
                    f"branch has type {t[name].typename}; a fixed-size number or array is needed",
                    "Convert the branch or drop it from the file",
                    tree=tree,
                    branch=name,
                )
            continue
        dtype = np.dtype(interp.to_dtype.base).newbyteorder("=")
        out.append(Column(name, kind, dtype.name, tuple(interp.inner_shape)))
    return tuple(out)


def scan_file(info: FileInfo, step: int = 65536, tree: Any = None) -> None:
    """Content checks: truth NaN/Inf and jagged sensor lengths; InputError at the first one.

    tree: the open TTree of the file, if the caller has it."""
    t = tree if tree is not None else open_tree(info.path, info.tree)
    truth = [c.name for c in info.columns if c.kind == "truth" and c.dtype.startswith("float")]
    jagged = [
        b for b, j in zip((info.npho_branch, info.time_branch), info.jagged, strict=True) if j
    ]
    for start in range(0, info.entries, step):
        stop = min(start + step, info.entries)
        if truth:
            arrays = t.arrays(truth, entry_start=start, entry_stop=stop, library="np")
            for name in truth:
                _check_finite(info, name, arrays[name], start)
        for branch in jagged:
            _jagged_to_numpy(
                info, branch, t[branch].array(entry_start=start, entry_stop=stop), start
            )


def _check_finite(info: FileInfo, branch: str, values: np.ndarray, start: int) -> None:
    bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
    if bad.any():
        entry = start + int(np.argmax(bad))
        raise InputError(
            info.path,
            "truth value is NaN or Inf (1e10 is the accepted 'invalid' marker)",
            f"Fix the producer of this file, or {_SKIP}",
            tree=info.tree,
            branch=branch,
            entry=entry,
        )


def _jagged_to_numpy(info: FileInfo, branch: str, arr: Any, start: int) -> np.ndarray:
    """A jagged awkward sensor column -> (n, 4760) float32; InputError on a wrong length."""
    import awkward as ak

    counts = np.asarray(ak.num(arr, axis=1))
    bad = counts != N_SENSORS
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(
            info.path,
            f"array length {int(counts[i])}, expected {N_SENSORS} (one value per sensor)",
            _SKIP_FIX,
            tree=info.tree,
            branch=branch,
            entry=start + i,
        )
    flat = ak.to_numpy(ak.flatten(arr, axis=1))
    return flat.reshape(len(counts), N_SENSORS).astype(np.float32, copy=False)


def read_block(
    t: Any, info: FileInfo, start: int, stop: int
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Entries [start, stop) of an open tree: npho, time (n, 4760) float32 and the columns."""
    names = [c.name for c in info.columns]
    fixed = [
        b for b, j in zip((info.npho_branch, info.time_branch), info.jagged, strict=True) if not j
    ]
    arrays = t.arrays(fixed + names, entry_start=start, entry_stop=stop, library="np")
    sensors = []
    for branch, is_jagged in zip((info.npho_branch, info.time_branch), info.jagged, strict=True):
        if is_jagged:
            raw = t[branch].array(entry_start=start, entry_stop=stop)
            sensors.append(_jagged_to_numpy(info, branch, raw, start))
        else:
            sensors.append(arrays[branch])
    return sensors[0], sensors[1], {n: arrays[n] for n in names}


def read_steps(
    boundaries: tuple[int, ...], start: int, stop: int, target: int
) -> list[tuple[int, int]]:
    """Split [start, stop) into steps of <= target entries, cut at basket boundaries where
    possible so that no basket is decompressed twice (a basket larger than target is split)."""
    bounds = [*sorted({b for b in boundaries if start < b < stop}), stop]
    steps, cur, prev = [], start, start
    for b in bounds:
        while b - cur > target:
            end = prev if prev > cur else cur + target
            steps.append((cur, end))
            cur = end
        prev = b
    if cur < stop:
        steps.append((cur, stop))
    return steps
