"""xecmodel: network blocks, the geometry-aware encoder, task heads, MAE, inpainter, ONNX export.

Takes geometry only from xecdata.geometry / xecdata.facemaps and normalization facts from the
xecdata.schemes Scheme it is given; never reads data files. Public API:

Tasks
    TASKS: dict[str, Task]   the task catalogue (xecdata.tasks: branch, dims, units, labels, ...)
    TaskSpec(name, loss=None, loss_kwargs={}, weight=1.0, transform="identity",
             transform_eps=0.0, mean=None, std=None)
        name of a catalogue entry (angle, energy, ...); loss by name (LOSSES, an
        unknown name raises); transform in identity, log, inverse, standardize,
        log+standardize, inverse+standardize.

Models
    create_model(kind, size, *, scheme, tasks=None, **options) -> ModelKind
        kind in KINDS ("regressor", "mae", "inpainter"); size in "tiny", "base", "large";
        scheme: Scheme, its to_dict() or an id; create_model(**model.model_config) rebuilds.
    list_models() -> list[(kind, size)]

    ModelKind (xecmodel.kind): the surface every kind shares
        kind, takes_mask (class attributes); outputs(config) -> tuple[OutputSpec, ...]: the
        named outputs of predict with units, shape and `xec infer` column, declared on the
        class; predict(x, mask=None) -> {output name: tensor} in those units; model_config,
        scheme, scheme_id, scheme_hash, geometry_id, task_names, encoder. Export, infer,
        validate and analyze read the declaration.

    XECRegressor
        forward(x (B, 4760, 2)) -> {task: (B, n_out)} raw outputs, transformed space
        predict(x) -> {task: (B, dim)} physical units
        loss(outputs, targets {task: physical (B,) | (B, D)}, weights (B,) | None)
            -> (total, {task: loss})
        fit_transforms({task: np.ndarray (N, D)}); forward_features(x) -> (B, F);
        forward_head(features); load_encoder_state(state_dict); task_heads();
        options readout_dim (weighted-pooling readout), freeze_encoder
        attributes: scheme, scheme_id, scheme_hash, geometry_id, model_config, encoder
    XECMAE
        forward(x, mask=None) -> (loss, pred (B, 4760, 2), mask (B, 4760) bool)
        last_losses (dict of 0-dim tensors), actual_mask_ratio, encoder,
        criterion.metrics(pred, x, mask) -> MAE / RMSE per channel and face
    XECInpainter
        forward(x, mask=None) -> (loss, pred (B, 4760, 1 | 2), mask); inpaint(x, mask);
        freeze_encoder option; load_encoder_state(mae.state_dict()) (prefixes detected)

Export
    export_onnx(model, path, *, raw_inputs=False, opset=18, exporter="dynamo") -> Path
    read_onnx_metadata(path) -> dict
"""

from xecmodel.encoder import EncoderConfig, XECEncoder
from xecmodel.export import export_onnx, read_onnx_metadata
from xecmodel.inpainter import XECInpainter
from xecmodel.kind import ModelKind, OutputSpec
from xecmodel.losses import LOSSES
from xecmodel.mae import XECMAE
from xecmodel.registry import KINDS, SIZES, count_parameters, create_model, list_models
from xecmodel.regressor import XECRegressor
from xecmodel.tasks import TASKS, Task, TaskSpec
from xecmodel.transforms import TRANSFORMS

__all__ = [
    "KINDS",
    "LOSSES",
    "SIZES",
    "TASKS",
    "TRANSFORMS",
    "XECMAE",
    "EncoderConfig",
    "ModelKind",
    "OutputSpec",
    "Task",
    "TaskSpec",
    "XECEncoder",
    "XECInpainter",
    "XECRegressor",
    "count_parameters",
    "create_model",
    "export_onnx",
    "list_models",
    "read_onnx_metadata",
]
