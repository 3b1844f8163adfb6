"""ONNX export with physical-unit outputs and self-describing metadata.

Every graph is the kind's `predict` with its declared outputs (xecmodel.kind): input `x`
(B, 4760, 2) normalized by the model's scheme, or with raw_inputs=True `npho` and `time`
(B, 4760) raw (photons, seconds; 1e10 / NaN mark invalid), normalized inside the graph by the
scheme's own torch formula and invalid rules; kinds that take a mask (MAE, inpainter) also
`mask` (B, 4760) bool (True = masked). Outputs, named and in units as the kind declares them:
regressor, one tensor per task in physical units (class probabilities for n_gamma); MAE /
inpainter, `pred` (B, 4760, C) normalized and `filled_npho`, `filled_time` (B, 4760): the input
with masked sensors replaced by the predictions, in photons and s (NaN where invalid).

The batch axis is dynamic. metadata_props carry the scheme (id, hash, full definition), the
geometry id, the model kind / size / config, tasks, the declared outputs (output_specs, with
units) and target transforms; the
keys start with "xec." and `read_onnx_metadata` returns them decoded (schema:
schemas/onnx_metadata.schema.json).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from xecdata.schemes import Scheme
from xecmodel.heads import TaskHead
from xecmodel.registry import XECModel, create_model
from xecmodel.tasks import TASKS

FORMAT_VERSION = 1
EXPORTERS = ("dynamo", "torchscript")
PREFIX = "xec."
# Written as plain strings (easy to read from C++); every other value is JSON.
STRING_KEYS = (
    "model_kind",
    "model_size",
    "model_name",
    "scheme_id",
    "scheme_hash",
    "geometry_id",
    "torch_version",
)
N_SENSORS_EXAMPLE = 4760


class PredictGraph(nn.Module):
    """Exportable model: (x | npho, time)[, mask] -> its declared outputs, in order."""

    def __init__(self, model: XECModel, raw_inputs: bool) -> None:
        super().__init__()
        self.model: XECModel = model
        self.raw_inputs = raw_inputs
        self.scheme: Scheme = model.scheme
        self.names = [o.name for o in model.output_specs]

    def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        n = 2 if self.raw_inputs else 1
        x = self.scheme.normalize_torch(args[0], args[1]) if self.raw_inputs else args[0]
        mask = args[n] if self.model.takes_mask else None  # (B, 4760) bool
        out = self.model.predict(x, mask)
        return tuple(out[name] for name in self.names)


def _graph(model: XECModel, raw_inputs: bool) -> tuple[PredictGraph, list[str], list[str]]:
    """The wrapper module, its input names and output names (the kind's declaration)."""
    graph = PredictGraph(model, raw_inputs)
    return graph, model.input_names(raw_inputs), list(graph.names)


def select_tasks(model: XECModel, tasks: Sequence[str] | None) -> XECModel:
    """A regressor with only `tasks` (kept in the model's order; same encoder, readout and
    heads, same weights); the model itself when `tasks` is None. Raises ValueError naming a
    task that is unknown or that the model lacks, with the model's tasks."""
    if tasks is None:
        return model
    have = model.task_names
    if not have:
        raise ValueError(f"tasks apply to a regressor; this model is a {model.kind}")
    if not tasks:
        raise ValueError(f"give at least one task; the model has {', '.join(have)}")
    for name in tasks:
        if name not in TASKS:
            raise ValueError(f"unknown task {name!r}; tasks are {', '.join(TASKS)} and this "
                             f"model has {', '.join(have)}")  # fmt: skip
        if name not in have:
            raise ValueError(f"the model has no task {name!r}; it has {', '.join(have)}")
    if set(tasks) == set(have):
        return model
    config = model.model_config
    config["tasks"] = [t for t in config["tasks"] if t["name"] in tasks]
    subset = create_model(**config)
    dropped = tuple(f"heads.{name}." for name in have if name not in tasks)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith(dropped)}
    subset.load_state_dict(state)  # strict: every kept weight has its place
    return subset.to(next(model.parameters()).device)


def example_inputs(model: XECModel, raw_inputs: bool, batch: int = 2) -> tuple[torch.Tensor, ...]:
    """Plausible example inputs for tracing (and tests)."""
    g = torch.Generator().manual_seed(0)
    npho = torch.rand(batch, N_SENSORS_EXAMPLE, generator=g) * 500.0
    time = (torch.rand(batch, N_SENSORS_EXAMPLE, generator=g) - 0.5) * 4e-8
    npho[:, ::97] = 0.0  # some dark sensors (invalid time)
    npho[:, 5] = 1e10  # one dead sensor
    xs = (npho, time) if raw_inputs else (model.scheme.normalize_torch(npho, time),)
    if not model.takes_mask:
        return xs
    mask = torch.rand(batch, N_SENSORS_EXAMPLE, generator=g) < 0.3
    return (*xs, mask)


def export_onnx(
    model: XECModel,
    path: str | Path,
    *,
    raw_inputs: bool = False,
    opset: int = 18,
    exporter: str = "dynamo",
    tasks: Sequence[str] | None = None,
) -> Path:
    """Write `model` (eval mode, fp32) as ONNX with dynamic batch and xec metadata; `tasks`
    exports only those heads of a regressor (outputs and metadata describe just them)."""
    import onnx

    if exporter not in EXPORTERS:
        raise ValueError(f"unknown exporter {exporter!r}; choose one of {EXPORTERS}")
    if opset < 18:
        raise ValueError(f"opset {opset} is too old; use 18 or newer")
    path = Path(path)
    model = select_tasks(model, tasks)
    was_training = model.training
    model.eval()
    try:
        graph, in_names, out_names = _graph(model, raw_inputs)
        graph.eval()  # the wrapper is a fresh module; export it in inference mode
        args = example_inputs(model, raw_inputs)
        with torch.no_grad():
            _export(graph, args, path, in_names, out_names, opset, exporter)
    finally:
        model.train(was_training)
    proto = onnx.load(str(path))
    _check_dynamic_batch(proto, path)
    meta = onnx_metadata(model, raw_inputs, in_names, out_names, opset) | {"exporter": exporter}
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key = PREFIX + key
        entry.value = str(value) if key in STRING_KEYS else json.dumps(value)
    onnx.save(proto, str(path))
    return path


def _export(
    graph: nn.Module,
    args: tuple[torch.Tensor, ...],
    path: Path,
    in_names: list[str],
    out_names: list[str],
    opset: int,
    exporter: str,
) -> None:
    """torch.onnx.export with the batch axis of every input and output dynamic."""
    if exporter == "dynamo":
        batch = torch.export.Dim("batch", min=1, max=1 << 20)
        shapes = (tuple({0: batch} for _ in args),)  # forward(*args): one varargs entry
        program = torch.onnx.export(
            graph,
            args,
            dynamic_shapes=shapes,
            input_names=in_names,
            output_names=out_names,
            opset_version=opset,
            dynamo=True,
            verbose=False,
        )
        if program is None:
            raise RuntimeError(f"{path}: torch.onnx.export returned no program")
        program.save(str(path))
        return
    _register_torchscript_symbolics(opset)
    axes = {name: {0: "batch"} for name in in_names + out_names}
    torch.onnx.export(
        graph,
        args,
        str(path),
        input_names=in_names,
        output_names=out_names,
        dynamic_axes=axes,
        opset_version=opset,
        dynamo=False,
    )


def _register_torchscript_symbolics(opset: int) -> None:
    """The legacy exporter has no expm1 (used by the schemes' inverse): exp(x) - 1."""

    def expm1(g: Any, x: Any) -> Any:
        one = g.op("Constant", value_t=torch.tensor(1.0))
        return g.op("Sub", g.op("Exp", x), g.op("CastLike", one, x))

    torch.onnx.register_custom_op_symbolic("aten::expm1", expm1, opset)


def _check_dynamic_batch(proto: Any, path: Path) -> None:
    """Refuse a graph whose batch axis got fixed during export (it would fail at run time)."""
    for value in list(proto.graph.input) + list(proto.graph.output):
        dim = value.type.tensor_type.shape.dim[0]
        if dim.HasField("dim_value"):
            raise RuntimeError(
                f"{path}: export fixed the batch axis of {value.name!r} to {dim.dim_value}; "
                "some operation in the model specializes the batch size"
            )


def onnx_metadata(
    model: XECModel, raw_inputs: bool, in_names: list[str], out_names: list[str], opset: int
) -> dict[str, Any]:
    """The metadata written under the "xec." keys (JSON values except plain strings)."""
    config = model.model_config
    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "model_kind": config.get("kind", ""),
        "model_size": config.get("size", ""),
        "model_name": f"{config.get('kind', '')}-{config.get('size', '')}",
        "model_config": config,
        "scheme_id": model.scheme_id,
        "scheme_hash": model.scheme_hash,
        "scheme": model.scheme.to_dict(),
        "geometry_id": model.geometry_id,
        "raw_inputs": raw_inputs,
        "inputs": in_names,
        "outputs": out_names,
        "opset": opset,
        "torch_version": torch.__version__,
    }
    specs = model.output_specs
    meta["tasks"] = list(model.task_names)
    meta["output_units"] = {o.name: o.units for o in specs}
    meta["output_specs"] = [o.to_dict() for o in specs]
    if model.task_names:
        meta["output_labels"] = {o.name: list(o.labels) for o in specs}
        meta["target_transforms"] = {n: _transform_meta(h) for n, h in model.task_heads().items()}
    return meta


def _transform_meta(head: TaskHead) -> dict[str, Any]:
    t = head.transform
    return {"name": t.name, "eps": t.eps, "mean": t.mean.tolist(), "std": t.std.tolist()}


def read_onnx_metadata(path: str | Path) -> dict[str, Any]:
    """The "xec." metadata of an exported model, JSON values decoded, prefix dropped."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    out: dict[str, Any] = {}
    for entry in proto.metadata_props:
        if entry.key.startswith(PREFIX):
            key = entry.key[len(PREFIX) :]
            out[key] = entry.value if key in STRING_KEYS else json.loads(entry.value)
    if "scheme_id" not in out:
        raise ValueError(f"{path}: no xec metadata; export the model with xecmodel.export_onnx")
    return out
