"""What the best regressor looks at: input saliency per face / channel of every predicted
component (physical units) and face importance by occlusion, on a few validation batches,
plotted into the run folder."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import cast

import numpy as np
import torch

from xecdata.facemaps import face_sensor_ids
from xecdata.geometry import FACE_NAMES
from xecdata.protocols import BatchView
from xecdata.schemes import Scheme
from xecmodel import TASKS
from xecmodel.kind import ModelKind
from xecmodel.regressor import XECRegressor
from xectrain.artifacts import plot_face_importance, plot_saliency, saliency_by_face
from xectrain.checkpoint import load_checkpoint
from xectrain.engine.steps import StepOps
from xectrain.run.data import Loaders
from xectrain.run.loop import Trainer

INSIGHT_BATCHES = 4


def component_gradients(model: XECRegressor, sensors: torch.Tensor) -> dict[str, torch.Tensor]:
    """{task: (B, C, 4760, 2)} d prediction_c / d input of every event and output component,
    predictions in the heads' physical units (deg, GeV, ns, cm, ...) per unit of normalized input.

    Events do not interact in an eval-mode model, so the gradient of the batch sum of one
    component holds each event's own gradient: one backward pass per component."""
    x = sensors.detach().float().clone().requires_grad_(True)
    preds = model.outputs_to_physical(model(x))  # {task: (B, C)} physical
    pairs = [(task, c) for task, p in preds.items() for c in range(p.shape[1])]
    grads: dict[str, list[torch.Tensor]] = {}
    for k, (task, c) in enumerate(pairs):
        (g,) = torch.autograd.grad(preds[task][:, c].sum(), x, retain_graph=k + 1 < len(pairs))
        grads.setdefault(task, []).append(g.detach())
    return {task: torch.stack(gs, dim=1) for task, gs in grads.items()}  # (B, C, 4760, 2) each


def input_saliency(
    model: XECRegressor, batches: list[BatchView]
) -> dict[str, dict[str, np.ndarray]]:
    """{task: {component: (6 faces, 2 channels)}} mean |d prediction / d input| over events and
    the sensors of each face, in the task's units per unit of normalized input."""
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    n = 0
    for batch in batches:
        for task, g in component_gradients(model, batch.sensors).items():
            part = g.abs().sum(dim=0)  # (C, 4760, 2)
            sums[task] = sums[task] + part if task in sums else part
        n += batch.sensors.shape[0]
    out: dict[str, dict[str, np.ndarray]] = {}
    for task, total in sums.items():
        mean = total.double().cpu().numpy() / max(n, 1)  # (C, 4760, 2)
        labels = TASKS[task].labels
        out[task] = {labels[c]: saliency_by_face(mean[c][None]) for c in range(len(mean))}
    return out


@torch.no_grad()
def face_importance(
    model: XECRegressor, ops: StepOps, batches: list[BatchView], scheme: Scheme
) -> tuple[float, dict[str, float]]:
    """(baseline loss, {face: loss with that face set to the sentinels - baseline})."""
    model.eval()

    def mean_loss(drop: torch.Tensor | None) -> float:
        total, n = 0.0, 0
        for batch in batches:
            x = batch.sensors.float().clone()
            if drop is not None:
                x[:, drop, 0] = scheme.npho_sentinel
                x[:, drop, 1] = scheme.time_sentinel
            loss, _ = model.loss(model(x), ops.task_targets(batch.targets), None)
            total, n = total + float(loss) * len(batch), n + len(batch)
        return total / max(n, 1)

    baseline = mean_loss(None)
    ids = face_sensor_ids()
    faces = {face: mean_loss(torch.as_tensor(ids[face])) - baseline for face in FACE_NAMES}
    return baseline, faces


def best_model(tr: Trainer, run_dir: Path) -> ModelKind:
    """The EMA weights of checkpoint_best (or the current eval model when there is none)."""
    model = copy.deepcopy(tr.eval_model)
    path = run_dir / "checkpoint_best.pth"
    if path.is_file():
        ckpt = load_checkpoint(path)
        model.load_state_dict((ckpt.get("ema") or {}).get("model") or ckpt["model"])
    return model


def write_insight_plots(tr: Trainer, loaders: Loaders, scheme: Scheme, run_dir: Path) -> list[Path]:
    """saliency_profile_<run>.pdf and face_weights_<run>.pdf of the best model."""
    model = cast(XECRegressor, best_model(tr, run_dir))  # insight plots are for regressors
    n = min(INSIGHT_BATCHES, loaders.n_val)
    loaders.val.set_epoch(0)
    batches = [b.clone() for b in itertools.islice(loaders.val, n)]
    if not batches:
        return []
    name = run_dir.name
    saliency = plot_saliency(
        input_saliency(model, batches), run_dir / f"saliency_profile_{name}.pdf"
    )
    baseline, faces = face_importance(model, tr.ops, batches, scheme)
    weights = plot_face_importance(faces, run_dir / f"face_weights_{name}.pdf", baseline)
    return [saliency, weights]
