"""ONNX inference on ROOT files or stores (`xec infer MODEL.onnx INPUT... -o OUT.root`).

The model describes itself (xec.* ONNX metadata): its normalization scheme (full definition
and hash), geometry id, kind, inputs and the outputs its kind declares (xecmodel.kind). Inputs
are normalized with that scheme, never with a user-typed constant; a store must hold exactly
that scheme, and a model of another geometry is refused. Output: tree `predictions` with, per
event, the input file index and entry, ids, truth / reconstruction branches as read, and every
declared output that names a column, in its declared units:
- regressor: `pred_<task>` (n_gamma: class probabilities);
- MAE / inpainter: `npho`, `time` (photons, s) with the masked sensors filled, and `inpainted`,
  the mask: the dead sensors, plus with mask_fraction > 0 that fraction of the measured ones
  (seeded), whose measured values are kept as `measured_npho`, `measured_time` so that
  `xec analyze` can score the filling;
plus a one-entry `metadata` tree. Written in batches under a temporary name, then renamed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from xecdata.errors import XecError
from xecdata.geometry import geometry_id
from xecdata.schemes import Scheme
from xecmodel import read_onnx_metadata
from xecmodel.kind import OutputSpec
from xecmodel.registry import output_specs
from xectrain.artifacts.rootio import TableRootWriter


class InferenceError(XecError, ValueError):
    """A model or an input that `xec infer` cannot serve; the message says why and what to do."""


@dataclass
class OnnxModel:
    """An ONNX Runtime session with the model's own metadata and scheme."""

    path: Path
    session: Any
    meta: dict[str, Any]
    scheme: Scheme

    @property
    def kind(self) -> str:
        return str(self.meta.get("model_kind"))

    @property
    def raw_inputs(self) -> bool:
        return bool(self.meta.get("raw_inputs"))

    @property
    def takes_mask(self) -> bool:
        """The graph takes a mask of the sensors to fill (its kind declares the input)."""
        return "mask" in self.meta.get("inputs", [])

    @property
    def outputs(self) -> tuple[OutputSpec, ...]:
        """The declared outputs, as exported (or from the kind for files without them)."""
        if "output_specs" in self.meta:
            return tuple(OutputSpec.from_dict(d) for d in self.meta["output_specs"])
        return output_specs(self.meta["model_config"])


def open_model(path: str | Path, providers: Sequence[str] | None = None) -> OnnxModel:
    """Load an exported xec model; CUDA execution when onnxruntime offers it, else CPU."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise InferenceError(f"model {path} does not exist")
    try:
        meta = read_onnx_metadata(path)
    except Exception:  # no xec.* metadata (ValueError), or not ONNX at all (e.g. a .pth)
        meta = {}
    if "scheme" not in meta:
        raise InferenceError(
            f"{path}: not an xec model (no xec.* metadata); export checkpoints with "
            "`xec export onnx`"
        )
    if meta.get("geometry_id") != geometry_id():
        raise InferenceError(
            f"{path} was trained on detector geometry {meta.get('geometry_id')}, this "
            f"installation describes {geometry_id()}; use the xec version of the model"
        )
    scheme = Scheme.from_dict(meta["scheme"])
    if scheme.hash != meta.get("scheme_hash"):
        raise InferenceError(f"{path}: the scheme stored in the model does not match its hash")
    available = ort.get_available_providers()
    wanted = providers or ["CUDAExecutionProvider", "CPUExecutionProvider"]
    chosen = [p for p in wanted if p in available] or ["CPUExecutionProvider"]
    session = ort.InferenceSession(str(path), providers=chosen)
    return OnnxModel(path, session, meta, scheme)


def batch_mask(
    model: OnnxModel, x: np.ndarray, fraction: float, rng: np.random.Generator
) -> np.ndarray:
    """(B, 4760) bool: the dead sensors, and `fraction` of the measured ones drawn from rng."""
    dead = x[..., 0] == model.scheme.npho_sentinel
    if fraction <= 0:
        return dead
    return dead | (~dead & (rng.random(dead.shape) < fraction))


def run_batch(
    model: OnnxModel, x: np.ndarray, mask_fraction: float = 0.0,
    rng: np.random.Generator | None = None,
) -> dict[str, np.ndarray]:  # fmt: skip
    """Output columns of one batch; x (B, 4760, 2) normalized by the model's scheme."""
    npho, t = model.scheme.denormalize(x)  # photons, s; NaN marks invalid (the raw graph's input)
    if model.raw_inputs:
        feeds = {"npho": npho.astype(np.float32), "time": t.astype(np.float32)}
    else:
        feeds = {"x": x.astype(np.float32, copy=False)}
    extra: dict[str, np.ndarray] = {}
    if model.takes_mask:
        mask = batch_mask(model, x, mask_fraction, rng or np.random.default_rng(0))
        feeds["mask"] = mask
        extra["inpainted"] = mask
        if mask_fraction > 0:
            extra |= {"measured_npho": npho.astype(np.float32),
                      "measured_time": t.astype(np.float32)}  # fmt: skip
    names = [o.name for o in model.outputs]
    out = dict(zip(names, model.session.run(names, feeds), strict=True))
    return {o.column: out[o.name] for o in model.outputs if o.column} | extra


def _root_batches(
    path: str | Path, scheme: Scheme, batch: int, tree: str, npho: str | None, tbranch: str
) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray], int]]:
    from xecdata.rootio import inspect_file, open_tree, read_block, read_steps

    t = open_tree(path, tree)
    info = inspect_file(path, tree, npho, tbranch, t)
    for start, stop in read_steps(info.basket_starts, 0, info.entries, batch):
        raw_npho, raw_time, cols = read_block(t, info, start, stop)
        yield scheme.normalize(raw_npho, raw_time), cols, start


def _store_batches(
    path: Path, scheme: Scheme, batch: int
) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray], int]]:
    from xecdata.store import open_store

    st = open_store(path)
    st.check_scheme(scheme)
    for start in range(0, st.n_events, batch):
        stop = min(start + batch, st.n_events)
        cols = {name: st.read_array(name, start, stop) for name in st.arrays}
        yield st.read_sensors(scheme.id, start, stop), cols, start


def input_batches(
    path: str | Path, scheme: Scheme, batch: int, tree: str = "tree",
    npho_branch: str | None = None, time_branch: str = "relative_time",
) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray], int]]:  # fmt: skip
    """(x normalized (B, 4760, 2), truth / reco / id columns, first entry) of a ROOT file (a
    path or a URL: root://, https://, s3://, ...) or a store folder."""
    from xecdata.remote import is_url

    if isinstance(path, str) and is_url(path):
        return _root_batches(path, scheme, batch, tree, npho_branch, time_branch)
    path = Path(path)
    if path.is_dir():
        return _store_batches(path, scheme, batch)
    if not path.exists():
        raise InferenceError(f"input {path} does not exist; check the path")
    if path.suffix != ".root":
        raise InferenceError(f"input {path}: give ROOT files (.root) or store folders")
    return _root_batches(path, scheme, batch, tree, npho_branch, time_branch)


class _Writer:
    """Streams output batches into `predictions` (a TableRootWriter: temporary name, renamed
    on close); the branch set is fixed by the first batch."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.table: TableRootWriter | None = None

    @property
    def entries(self) -> int:
        return 0 if self.table is None else self.table.entries

    def write(self, arrays: dict[str, np.ndarray], source: str) -> None:
        if self.table is None:
            self.table = TableRootWriter(self.out, arrays)
        missing = sorted(set(self.table.branches) - set(arrays))
        if missing:
            raise InferenceError(
                f"input {source} lacks branches {missing} that earlier inputs have; "
                "run inputs with different branches separately"
            )
        self.table.write({k: arrays[k] for k in self.table.branches})

    def close(self, meta: dict[str, Any]) -> Path:
        if self.table is None:
            raise InferenceError("the inputs hold no events; nothing was written")
        self.table.metadata = dict(meta)
        return self.table.close()

    def abort(self) -> None:
        if self.table is not None:
            self.table.abort()


def run_inference(
    model_path: str | Path, inputs: Sequence[str | Path], out: str | Path, batch_size: int = 512,
    tree: str = "tree", npho_branch: str | None = None, time_branch: str = "relative_time",
    mask_fraction: float = 0.0, seed: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """Run the model over every input in order; returns a summary (events, seconds, provider).
    `mask_fraction` (models that take a mask) also masks that fraction of measured sensors."""
    model = open_model(model_path)
    if mask_fraction and not model.takes_mask:
        raise InferenceError(f"--mask-fraction applies to models that fill masked sensors "
                             f"(MAE, inpainter); {model_path} is a {model.kind}")  # fmt: skip
    if not 0.0 <= mask_fraction < 1.0:
        raise InferenceError(f"--mask-fraction {mask_fraction} must be in [0, 1)")
    writer, start = _Writer(Path(out)), time.perf_counter()
    try:
        for k, path in enumerate(tqdm(list(inputs), desc="infer", unit="input")):
            rng = np.random.default_rng((seed, k))  # one stream per input: reproducible masks
            for x, cols, first in input_batches(path, model.scheme, batch_size, tree,
                                                npho_branch, time_branch):  # fmt: skip
                n = len(x)
                arrays: dict[str, np.ndarray] = {"input_file": np.full(n, k, np.int32),
                          "entry": np.arange(first, first + n, dtype=np.int64)}  # fmt: skip
                outputs = run_batch(model, x, mask_fraction, rng)
                writer.write(arrays | cols | outputs, str(path))
        if writer.entries == 0:
            raise InferenceError(
                f"the inputs ({', '.join(map(str, inputs))}) hold no events; nothing to write"
            )
        meta = _metadata(model, inputs, writer.entries)
        writer.close(meta)
    except BaseException:
        writer.abort()
        raise
    seconds = time.perf_counter() - start
    return {"events": writer.entries, "seconds": seconds, "output": str(out),
            "provider": model.session.get_providers()[0]}  # fmt: skip


def _metadata(model: OnnxModel, inputs: Sequence[str | Path], n: int) -> dict[str, Any]:
    m = model.meta
    return {
        "model": str(model.path),
        "model_kind": model.kind,
        "scheme_id": model.scheme.id,
        "scheme_hash": model.scheme.hash,
        "geometry_id": str(m.get("geometry_id")),
        "tasks": ",".join(m.get("tasks", [])),
        "output_units": json.dumps(m.get("output_units", {})),
        "output_specs": json.dumps([o.to_dict() for o in model.outputs]),
        "inputs": "\n".join(str(p) for p in inputs),
        "n_events": n,
    }
