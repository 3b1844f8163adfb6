"""Checkpoints: atomic writes, and loads that refuse what cannot be served.

A checkpoint is a dict (torch.save) carrying everything to resume or to serve: model, EMA,
optimizer, scheduler, scaler, epoch, step, loader position, RNG states, best metric, resolved
config, scheme id + hash, geometry id, target transforms and the MLflow run id. It is written to
a temporary file in the same folder, fsynced and renamed over the old one, so killing training
at any moment leaves either the old or the new checkpoint, never a torn one.

Reading never runs code from the file: torch.load(weights_only=True) rebuilds only tensors and
plain containers, plus the allow-listed SAFE_GLOBALS; a pickle that names anything else (a
shared `.pth` crafted to run a command) is refused with UnsafeCheckpointError before any of it
is unpickled.
"""

from __future__ import annotations

import os
import pickle
import pickletools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch.torch_version import TorchVersion

from xecdata.errors import XecError
from xecdata.geometry import geometry_id

FORMAT = "xec-checkpoint"
ENCODER_FORMAT = "xec-encoder"
FORMAT_VERSION = 1
ENCODER_PREFIX = "encoder."
# Checkpoint kind -> model kinds that may take its encoder (the rest must match exactly).
ENCODER_SOURCES: dict[str, tuple[str, ...]] = {"mae": ("regressor", "inpainter")}
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DDP and torch.compile wrappers
# Types beyond torch's weights-only defaults (tensors, dicts, lists, numbers, strings) that an
# xec checkpoint holds: torch.__version__ (a str subclass) in files written before it was
# stored as a plain str.
SAFE_GLOBALS: tuple[type, ...] = (TorchVersion,)
_SAFE_NAMES = {f"{t.__module__}.{t.__qualname__}" for t in SAFE_GLOBALS}


class CheckpointError(XecError, RuntimeError):
    """A checkpoint cannot be used for what was asked; the message says why and what to do."""


class UnsafeCheckpointError(CheckpointError):
    """The file's pickle names code an xec checkpoint never holds; nothing of it was run."""

    def __init__(self, path: str | Path, found: str) -> None:
        super().__init__(
            f"{path} is refused: its pickle carries {found}, which an xec checkpoint never "
            "holds, and loading it could run code; nothing of it was run. Ask its author for the "
            "checkpoint_*.pth that xec train wrote"
        )


def unwrap_state_dict(state: Mapping[str, Any]) -> dict[str, Any]:
    """State dict without DDP (`module.`) or torch.compile (`_orig_mod.`) key prefixes."""
    out = {}
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in _WRAPPER_PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix) :], True
        out[key] = value
    return out


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # some filesystems do not allow opening folders; the rename is still atomic
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_save(obj: Any, path: str | Path) -> Path:
    """torch.save `obj` to `path` via a temporary file + fsync + os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return path


def make_checkpoint(kind: str, model_state: Mapping[str, Any], **fields: Any) -> dict[str, Any]:
    """A checkpoint dict with the format header, the geometry id and the given fields.

    Expected fields (None where absent): model_config, ema, optimizer, scheduler, scaler, epoch,
    step, loader, rng, best_metric, best_metric_name, config, scheme ({id, hash}), transforms,
    mlflow_run_id."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "geometry_id": geometry_id(),
        "torch_version": str(torch.__version__),  # a plain str: no extra type to allow
        "model": unwrap_state_dict(model_state),
        **fields,
    }


def save_checkpoint(path: str | Path, checkpoint: Mapping[str, Any]) -> Path:
    """Write a checkpoint made by `make_checkpoint` atomically."""
    if checkpoint.get("format") != FORMAT:
        raise ValueError("save_checkpoint expects a dict from make_checkpoint")
    return atomic_save(dict(checkpoint), path)


def save_encoder(path: str | Path, checkpoint: Mapping[str, Any]) -> Path:
    """Write the encoder of a checkpoint (EMA weights when present) as a standalone file."""
    return atomic_save(
        {
            "format": ENCODER_FORMAT,
            "format_version": FORMAT_VERSION,
            "kind": "encoder",
            "source_kind": checkpoint.get("kind"),
            "geometry_id": checkpoint.get("geometry_id"),
            "scheme": checkpoint.get("scheme"),
            "model_config": checkpoint.get("model_config"),
            "encoder": encoder_state(checkpoint),
        },
        path,
    )


def load_checkpoint(
    path: str | Path,
    scheme: Mapping[str, str] | None = None,
    map_location: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Read a checkpoint (or encoder file) and check it against this geometry and `scheme`
    ({id, hash} the caller trains or serves with); refuse mismatches with a clear message."""
    ckpt = read_checkpoint(path, map_location)
    check_compatible(ckpt, path, scheme)
    return ckpt


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint or encoder file as written, refused only when it is not one (no geometry
    or scheme check: `xec inspect` describes files of any geometry)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    ckpt = safe_load(path, map_location)
    if not isinstance(ckpt, dict) or ckpt.get("format") not in (FORMAT, ENCODER_FORMAT):
        raise CheckpointError(
            f"{path}: not an xec checkpoint (no '{FORMAT}' header); checkpoints of the earlier "
            "tool must be converted, or retrain"
        )
    return ckpt


def pickle_globals(path: Path) -> list[str]:
    """Names of the classes and functions the file's pickle would import, read from its
    opcodes without unpickling (torch's zip format, or a bare pickle)."""
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except (ValueError, RuntimeError, OSError):
        pass  # not torch's zip format
    names: list[str] = []
    strings: list[str] = []  # STACK_GLOBAL takes module and name from the two pushed before
    try:
        with path.open("rb") as fh:
            for op, arg, _ in pickletools.genops(fh):
                if op.name == "GLOBAL":
                    names.append(str(arg).replace(" ", "."))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    names.append(f"{strings[-2]}.{strings[-1]}")
                if isinstance(arg, str):
                    strings.append(arg)
    except Exception:  # not a pickle (or a torn one): torch.load says what it is
        pass
    return names


def safe_load(path: Path, map_location: str | torch.device = "cpu") -> Any:
    """torch.load with weights_only=True and the SAFE_GLOBALS allow-list; a file naming any
    other global is refused (UnsafeCheckpointError) before it is unpickled."""
    unsafe = sorted(set(pickle_globals(path)) - _SAFE_NAMES - {"collections.OrderedDict"})
    if unsafe:
        raise UnsafeCheckpointError(path, ", ".join(unsafe))
    try:
        with torch.serialization.safe_globals(list(SAFE_GLOBALS)):
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for foreign or torn files
        found = re.search(r"GLOBAL (\S+)", str(err))
        if isinstance(err, pickle.UnpicklingError) and found:
            raise UnsafeCheckpointError(path, found.group(1)) from None
        raise CheckpointError(f"{path}: not a readable checkpoint ({_reason(err)})") from None


def _reason(err: Exception) -> str:
    """The informative line of a torch.load error (the weights-only reader's are paragraphs)."""
    boiler = ("Weights only load failed", "Please file an issue", "Check the documentation")
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(boiler)]
    return lines[-1] if lines else type(err).__name__


def check_compatible(
    ckpt: Mapping[str, Any], path: str | Path, scheme: Mapping[str, str] | None
) -> None:
    """Refuse a checkpoint of another detector geometry or normalization scheme."""
    here = geometry_id()
    if ckpt.get("geometry_id") != here:
        raise CheckpointError(
            f"{path} was trained on detector geometry {ckpt.get('geometry_id')}, but this "
            f"installation describes geometry {here}; sensor order and positions differ, so the "
            "model cannot be used here (use the xec version it was trained with, or retrain)"
        )
    theirs = ckpt.get("scheme") or {}
    if scheme is None:
        return
    if theirs.get("id") != scheme.get("id"):
        raise CheckpointError(
            f"{path} was trained on normalization scheme {theirs.get('id')}, but this run uses "
            f"{scheme.get('id')}; inputs would be scaled differently. Use "
            f"--set data.scheme={theirs.get('id')} (with a store that holds it) or retrain"
        )
    if theirs.get("hash") != scheme.get("hash"):
        raise CheckpointError(
            f"{path}: scheme {scheme.get('id')} had hash {theirs.get('hash')} at training time but "
            f"{scheme.get('hash')} now; the scheme's parameters changed without a new version"
        )


def checkpoint_role(ckpt: Mapping[str, Any], target_kind: str, path: str | Path = "") -> str:
    """'resume' (same model kind) or 'encoder' (MAE -> regressor / inpainter, or an encoder
    file); anything else is refused."""
    kind = ckpt.get("kind")
    if kind == target_kind:
        return "resume"
    if kind == "encoder" or target_kind in ENCODER_SOURCES.get(str(kind), ()):
        return "encoder"
    raise CheckpointError(
        f"{path or 'checkpoint'} holds a {kind} model, which cannot initialize a {target_kind}: "
        "resume a checkpoint of the same kind, or start a regressor / inpainter from an MAE"
    )


def encoder_state(ckpt: Mapping[str, Any], prefix: str = ENCODER_PREFIX) -> dict[str, Any]:
    """Encoder weights of a checkpoint, keys without `prefix`; EMA weights win when present."""
    if ckpt.get("format") == ENCODER_FORMAT:
        return dict(ckpt["encoder"])
    ema = ckpt.get("ema")  # ModelEMA.state_dict(): {"model": weights, "step", "decay"}
    state = unwrap_state_dict(ema["model"] if ema else ckpt["model"])
    out = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    if not out:
        raise CheckpointError(f"checkpoint of kind {ckpt.get('kind')} has no '{prefix}*' weights")
    return out


TENSOR_ENTRIES = ("model", "ema", "optimizer", "scaler", "rng", "encoder")


def checkpoint_header(ckpt: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-able entries of a checkpoint (schemas/checkpoint.schema.json)."""
    out = {k: v for k, v in ckpt.items() if k not in TENSOR_ENTRIES}
    if isinstance(out.get("best_metric"), float) and out["best_metric"] == float("inf"):
        out["best_metric"] = None  # JSON has no infinity
    return out


def snapshot_path(run_dir: str | Path, epoch: int, prefix: str = "checkpoint") -> Path:
    """Per-epoch snapshot name, e.g. checkpoint_epoch_007.pth."""
    return Path(run_dir) / f"{prefix}_epoch_{epoch:03d}.pth"


def prune_snapshots(run_dir: str | Path, keep: int, prefix: str = "checkpoint") -> list[Path]:
    """Delete all but the `keep` newest per-epoch snapshots; returns the deleted paths."""
    pattern = re.compile(rf"^{re.escape(prefix)}_epoch_(\d+)\.pth$")
    snaps = sorted(
        (int(m.group(1)), p)
        for p in Path(run_dir).glob(f"{prefix}_epoch_*.pth")
        if (m := pattern.match(p.name))
    )
    doomed = [p for _, p in snaps[: max(len(snaps) - keep, 0)]]
    for p in doomed:
        p.unlink()
    return doomed
