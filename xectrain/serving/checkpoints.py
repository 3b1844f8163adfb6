"""Using a trained checkpoint: rebuild its model, validate it on a store, export it to ONNX."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import torch

from xecdata.loaders.rootfiles import RootInputs
from xecdata.protocols import BatchSource
from xecdata.schemes import Scheme
from xecmodel import create_model, export_onnx
from xecmodel.export import select_tasks
from xecmodel.kind import ModelKind, ReconstructionKind
from xecmodel.regressor import XECRegressor
from xectrain.artifacts import plot_worst_events, write_regressor_artifacts
from xectrain.checkpoint import CheckpointError, load_checkpoint
from xectrain.config import RunConfig, config_from_dict
from xectrain.engine.distributed import pick_device
from xectrain.engine.precision import amp_context
from xectrain.engine.steps import StepOps
from xectrain.evaluation.passes import (
    ID_TARGETS,
    store_columns,
    validate_reconstruction,
    validate_regressor,
)
from xectrain.evaluation.writers import artifact_metadata, prediction_writer


def model_from_checkpoint(
    ckpt: dict[str, Any], device: str | torch.device = "cpu", ema: bool = True
) -> ModelKind:
    """The checkpoint's model in eval mode, with its EMA weights when present (and `ema`)."""
    config = ckpt.get("model_config")
    if not config:
        raise CheckpointError("checkpoint has no model_config; it cannot rebuild its model")
    model = create_model(**config)
    weights = (ckpt.get("ema") or {}).get("model") if ema else None
    model.load_state_dict(weights or ckpt["model"])
    return model.to(device).eval()


def export_checkpoint(
    path: str | Path, out: str | Path, raw_inputs: bool = False, opset: int = 18,
    exporter: str = "dynamo", tasks: Sequence[str] | None = None,
) -> Path:  # fmt: skip
    """Write the checkpoint's (EMA) model as ONNX with physical outputs and xec metadata;
    `tasks` exports only those of the regressor's tasks."""
    ckpt = load_checkpoint(path)
    if ckpt.get("format") != "xec-checkpoint":
        raise CheckpointError(f"{path} holds only an encoder; export a full checkpoint")
    model = model_from_checkpoint(ckpt)
    try:
        model = select_tasks(model, tasks)
    except ValueError as err:
        raise CheckpointError(f"{path}: {err}") from None
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return export_onnx(model, out, raw_inputs=raw_inputs, opset=opset, exporter=exporter)


def _open_val_loader(store: str | RootInputs, scheme: Scheme, split: str, batch: int,
                     device: torch.device, backend: str,
                     targets: list[str]) -> BatchSource:  # fmt: skip
    """A loader over the split of a store, or over ROOT files (streamed, normalized with the
    checkpoint's scheme as ingestion stores it; see xecdata.loaders.rootfiles)."""
    from xecdata.loaders import open_loader
    from xecdata.loaders.rootfiles import RootFilesLoader

    if isinstance(store, RootInputs):
        files = store.check()
        have = {c.name for c in files[0].columns} if files else set()
        ids = [t for t in ID_TARGETS if t in have]
        return RootFilesLoader(files, scheme, batch, device, [*targets, *ids])
    kw: dict[str, Any] = dict(
        scheme=scheme.id, split=split, batch_size=batch, device=device, backend=backend,
        shuffle=False, drop_last=False,
    )  # fmt: skip
    try:
        return open_loader(store, targets=[*targets, *ID_TARGETS], **kw)  # type: ignore[arg-type]
    except KeyError:  # a store without run / event ids
        return open_loader(store, targets=targets, **kw)  # type: ignore[arg-type]


def _only_tasks(
    path: str | Path, model: ModelKind, cfg: RunConfig, tasks: Sequence[str]
) -> tuple[ModelKind, RunConfig]:
    """The regressor and its run config reduced to `tasks` (refused naming the model's)."""
    try:
        model = select_tasks(model, tasks)
    except ValueError as err:
        raise CheckpointError(f"{path}: {err}") from None
    keep = set(model.task_names)
    only = {n: dataclasses.replace(t, enabled=n in keep) for n, t in cfg.tasks.items()}
    return model, dataclasses.replace(cfg, tasks=only)


def validate_checkpoint(
    path: str | Path, store: str | RootInputs, split: str = "val",
    out_dir: str | Path | None = None, batch_size: int = 256, max_batches: int | None = None,
    backend: str = "auto", device: str = "auto", tasks: Sequence[str] | None = None,
) -> dict[str, float]:  # fmt: skip
    """Validate a checkpoint on `split` of `store` (or on every event of ROOT files, `store` a
    RootInputs; `split` then only names the outputs): metrics (also metrics.json), prediction
    CSVs, validation_results ROOT file and resolution PDFs (regressor) or streamed ROOT
    predictions (MAE / inpainter); `tasks` validates only those of the regressor's tasks."""
    ckpt = load_checkpoint(path)
    cfg = config_from_dict(ckpt["config"])
    dev = pick_device(device)
    model = model_from_checkpoint(ckpt, dev)
    if tasks is not None:
        model, cfg = _only_tasks(path, model, cfg, tasks)
    ops = StepOps(cfg)
    loader = _open_val_loader(store, model.scheme, split, batch_size, dev, backend,
                              ops.targets())  # fmt: skip
    n = len(loader) if max_batches is None else min(len(loader), max_batches)
    out = Path(out_dir) if out_dir else Path(path).parent / f"validate_{split}"
    out.mkdir(parents=True, exist_ok=True)
    name = f"{Path(path).parent.name}_{split}"
    amp = lambda: amp_context(dev, cfg.training.amp)  # noqa: E731
    if model.task_names:  # per-event task outputs (the kind's declaration), else filled sensors
        ev = validate_regressor(cast(XECRegressor, model), ops, loader, n, amp, model.scheme,
                                cfg.checkpoint.worst_events)  # fmt: skip
        meta = artifact_metadata(model, int(ckpt.get("epoch", 0)), split)
        write_regressor_artifacts(out, name, ev.results, ev.ids, meta, store_columns(ev))
        plot_worst_events(ev.worst, out, name)
        metrics = ev.metrics
    else:
        writer = prediction_writer(cfg.model.kind, cfg.recon.predict_time, model.scheme,
                                   model.geometry_id, int(ckpt["epoch"]),
                                   out / f"{cfg.model.kind}_predictions_{name}.root")  # fmt: skip
        with writer:
            metrics = validate_reconstruction(cast(ReconstructionKind, model), loader, n, amp,
                                              cfg.training.seed, writer)  # fmt: skip
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return metrics
