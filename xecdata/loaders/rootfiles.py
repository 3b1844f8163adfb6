"""ROOT files streamed as loader batches, for validating a checkpoint without a store.

`xec validate CKPT --root FILE_OR_DIR...` evaluates on the events of ROOT files as they come.
Everything that decides what a batch holds is the ingestion's own code: input resolution
(`ingest.resolve_inputs`), the pre-pass checks (`prepass.check_files`: structure, truth
NaN/Inf, jagged lengths, one branch set for all files), reading in basket-aligned steps
(`rootio.read_steps` / `read_block`, read one step ahead by `units.prefetched`), and the
checkpoint's scheme applied the way ingestion stores it: `SchemeEncoder` (normalize, then the
16-bit codes of `precision.scheme_codes`) followed by the loaders' `CodeDecoder`. So a batch is
bit-identical to the batch a loader draws from a store ingested from the same files, in the
same order (event index = position in the concatenated inputs), and metrics agree with the
store's up to the order of float reductions.

Memory: sensors are held for one read step and one batch at a time (bounded, whatever the file
sizes); the per-event truth / reco / id columns of the validated events are kept (a few
hundred bytes per event, as the store path reads them back) so that the validation ROOT file
carries them and the worst events show their full truth.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from xecdata.geometry import N_SENSORS
from xecdata.loaders.batch import Batch
from xecdata.loaders.source import target_dtype
from xecdata.rootio import FileInfo, open_tree, read_block, read_steps
from xecdata.schemes import Scheme
from xecdata.store.decoder import CodeDecoder
from xecdata.store.encode import SchemeEncoder
from xecdata.store.precision import scheme_codes

READ_EVENTS = 512  # entries per read step, as ingestion reads them


class RootColumns:
    """Truth / reco / id branches of the events read so far, with the Store's read interface
    (`arrays`, `read_array`, `read_rows`) so validation reads them as it reads a store's."""

    def __init__(self, files: Sequence[FileInfo]) -> None:
        self.path = ", ".join(f.path for f in files)
        self.kinds = {c.name: c.kind for c in files[0].columns} if files else {}
        self._parts: dict[str, list[np.ndarray]] = {name: [] for name in self.kinds}
        self._joined: dict[str, np.ndarray] = {}

    @property
    def arrays(self) -> dict[str, str]:
        """Per-event branches: name -> kind ('truth', 'reco' or 'ids')."""
        return dict(self.kinds)

    def add(self, cols: dict[str, np.ndarray]) -> None:
        for name, part in self._parts.items():
            part.append(np.asarray(cols[name]))
        self._joined.clear()

    def _all(self, name: str) -> np.ndarray:
        if name not in self._parts:
            raise KeyError(f"ROOT inputs {self.path} have no branch {name!r}")
        if name not in self._joined:
            self._joined[name] = np.concatenate(self._parts[name])
            self._parts[name] = [self._joined[name]]
        return self._joined[name]

    def read_array(self, name: str, start: int, stop: int) -> np.ndarray:
        """Branch `name` of events [start, stop) (of those read so far), in its file dtype."""
        return self._all(name)[start:stop]

    def read_rows(self, name: str, index: np.ndarray) -> np.ndarray:
        """Branch `name` at event indices `index` (any order, repeats allowed)."""
        return self._all(name)[np.asarray(index, np.int64)]


@dataclass(frozen=True)
class RootInfo:
    """What a RootFilesLoader reads; `store` is where validation finds the columns."""

    files: tuple[str, ...]
    scheme: str
    n_events: int
    store: RootColumns = field(repr=False)


class RootFilesLoader:
    """Batches (the loaders' `Batch`) of every event of checked ROOT files, in order."""

    def __init__(
        self, files: Sequence[FileInfo], scheme: Scheme, batch_size: int,
        device: str | torch.device = "cpu", targets: Sequence[str] = (),
        read_events: int = READ_EVENTS,
    ) -> None:  # fmt: skip
        if batch_size < 1:
            raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
        self.files, self.scheme, self.batch_size = list(files), scheme, batch_size
        self.device, self.read_events = torch.device(device), read_events
        self.target_specs = _target_specs(self.files, targets)
        self.encoder = SchemeEncoder(scheme, scheme_codes(scheme))
        codes = self.encoder.codes
        self.decoder = CodeDecoder(*codes) if self.encoder.dtype == np.uint16 else None
        n = sum(f.entries for f in self.files)
        self.info = RootInfo(tuple(f.path for f in self.files), scheme.id, n, RootColumns(files))

    def __len__(self) -> int:
        return -(-self.info.n_events // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Validation order does not depend on the epoch (kept for the Loader interface)."""

    def host_bytes(self) -> int:
        """Host memory of the sensor buffers (one batch and one read step)."""
        rows = self.batch_size + self.read_events
        return rows * N_SENSORS * 2 * (4 + self.encoder.dtype.itemsize)

    def _blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]]:
        for info in self.files:
            tree = open_tree(info.path, info.tree)
            try:
                starts = tuple(int(x) for x in tree[info.npho_branch].entry_offsets)
                for s, e in read_steps(starts, 0, info.entries, self.read_events):
                    yield read_block(tree, info, s, e)
            finally:
                tree.file.close()

    def __iter__(self) -> Iterator[Batch]:
        from xecdata.store.units import prefetched

        b = self.batch_size
        stored = np.empty((b, N_SENSORS, 2), self.encoder.dtype)
        sensors = np.empty((b, N_SENSORS, 2), np.float32)
        targets = {k: np.empty((b, *shape), dt) for k, (shape, dt) in self.target_specs.items()}
        fill, first = 0, 0
        for npho, time, cols in prefetched(self._blocks()):
            self.info.store.add(cols)
            done = 0
            while done < len(npho):
                take = min(b - fill, len(npho) - done)
                part = slice(done, done + take)
                self.encoder.encode(npho[part], time[part], stored[fill : fill + take])
                for name, out in targets.items():
                    out[fill : fill + take] = cols[name][part].reshape(out[0:take].shape)
                fill, done = fill + take, done + take
                if fill == b:
                    yield self._batch(stored, sensors, targets, first, fill)
                    first, fill = first + fill, 0
        if fill:
            yield self._batch(stored, sensors, targets, first, fill)

    def _batch(
        self, stored: np.ndarray, sensors: np.ndarray, targets: dict[str, np.ndarray],
        first: int, n: int,
    ) -> Batch:  # fmt: skip
        """The first n buffered events as a Batch on the device (decoded as the loaders do)."""
        if self.decoder is not None:
            self.decoder.decode_into(stored[:n], sensors[:n])
        else:
            sensors[:n] = stored[:n]
        dev = self.device
        return Batch(
            torch.from_numpy(sensors[:n]).to(dev, copy=True),
            {k: torch.from_numpy(v[:n]).to(dev, copy=True) for k, v in targets.items()},
            torch.ones(n, dtype=torch.float32, device=dev),
            torch.arange(first, first + n, dtype=torch.int64, device=dev),
        )


def _target_specs(
    files: Sequence[FileInfo], targets: Sequence[str]
) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Per-event shape and output dtype of each target, as a store loader delivers it."""
    if not files:
        return {}
    have = {c.name: c for c in files[0].columns}
    missing = [t for t in targets if t not in have]
    if missing:
        raise KeyError(
            f"ROOT file {files[0].path} has no branch {', '.join(map(repr, missing))} that the "
            f"checkpoint's tasks need (it has {', '.join(sorted(have)) or 'none'}); validate "
            "on files with the truth branches, or pick the tasks it has with --tasks"
        )
    return {t: (have[t].shape, target_dtype(np.dtype(have[t].dtype))) for t in targets}


@dataclass(frozen=True)
class RootInputs:
    """ROOT inputs to validate on (files, folders, globs) and how to read them."""

    paths: tuple[str, ...]
    tree: str = "tree"
    npho_branch: str | None = None
    time_branch: str = "relative_time"

    def check(self) -> list[FileInfo]:
        """The ingestion's input resolution and pre-pass: FileInfo of each file, in order;
        ValueError (IngestError for a path matching nothing) naming the file and the fix on
        the first problem. A path given twice is read once; copies of a file under other names
        are read each time."""
        from xecdata.ingest import resolve_inputs
        from xecdata.store.prepass import check_files
        from xecdata.store.units import file_info

        request = {"tree": self.tree, "npho_branch": self.npho_branch,
                   "time_branch": self.time_branch, "skip_bad": False,
                   "allow_duplicate": True}  # fmt: skip
        records, _ = check_files(resolve_inputs(self.paths), request, set(), None, None, False)
        return [file_info(r) for r in records]
