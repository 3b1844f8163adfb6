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
    create_model(kind, size, *, scheme, tasks=None, **options) -> nn.Module
        kind in "regressor", "mae", "inpainter"; size in "tiny", "base", "large";
        scheme: Scheme, its to_dict() or an id; create_model(**model.model_config) rebuilds.
    list_models() -> list[(kind, size)]

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
from xecmodel.losses import LOSSES
from xecmodel.mae import XECMAE
from xecmodel.registry import SIZES, count_parameters, create_model, list_models
from xecmodel.regressor import XECRegressor
from xecmodel.tasks import TASKS, Task, TaskSpec
from xecmodel.transforms import TRANSFORMS

__all__ = [
    "LOSSES",
    "SIZES",
    "TASKS",
    "TRANSFORMS",
    "XECMAE",
    "EncoderConfig",
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
