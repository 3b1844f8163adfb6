"""ONNX export: onnxruntime parity for every registered kind, raw-input graphs, metadata."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import onnxruntime as ort
import pytest
import torch

from xecdata.schemes import get_scheme
from xecmodel import TASKS, TaskSpec, create_model, export_onnx, read_onnx_metadata
from xecmodel.export import _graph, example_inputs
from xecmodel.regressor import XECRegressor

SCHEME = get_scheme("new@1")
SCHEMA = json.loads(
    (Path(__file__).resolve().parents[1] / "schemas" / "onnx_metadata.schema.json").read_text()
)
TASK_MIX = [
    TaskSpec("angle", transform="standardize", mean=[90.0, 0.0], std=[20.0, 30.0]),
    TaskSpec("energy", loss="gaussian_nll", transform="log"),
    TaskSpec("timing", transform="inverse", transform_eps=0.5),
    *(TaskSpec(n) for n in TASKS if n not in ("angle", "energy", "timing")),
]
CASES = {
    "regressor": ("regressor", {}, TASK_MIX),
    "regressor-split-readout": (
        "regressor",
        {"outer_mode": "split", "readout_dim": 4, "pos_embed": "geometric"},
        None,
    ),
    "regressor-per-component-transform": (
        "regressor",
        {},
        [
            TaskSpec(
                "uvwFI",
                transform="standardize,inverse,log+standardize",
                mean=[0.0, 0.0, 1.0],
                std=[10.0, 1.0, 0.5],
                transform_eps=0.5,
            )
        ],
    ),
    "mae": ("mae", {}, None),
    "inpainter": ("inpainter", {"predict_time": False}, None),
}


def check_parity(model: torch.nn.Module, path: Path, raw_inputs: bool) -> None:
    """onnxruntime on batch 3 (the export traced batch 2) against the torch graph."""
    model.eval()
    graph, _, out_names = _graph(model, raw_inputs)
    args = example_inputs(model, raw_inputs, batch=3)
    with torch.no_grad():
        expected = graph(*args)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == out_names
    feeds = {i.name: a.numpy() for i, a in zip(session.get_inputs(), args, strict=True)}
    for name, got, want in zip(out_names, session.run(None, feeds), expected, strict=True):
        want = want.numpy()
        assert got.shape == want.shape, name
        if name == "filled_npho":  # photons: fp32 noise of pred times d npho / d pred
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-2, err_msg=name)
        elif name == "filled_time":  # seconds: 1e-12 s = 1 ps, far below the resolution
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-12, err_msg=name)
        else:
            assert np.abs(got - want).max() < 1e-4, name


def check_metadata(model: torch.nn.Module, path: Path, raw_inputs: bool) -> dict:
    meta = read_onnx_metadata(path)
    jsonschema.validate(meta, SCHEMA)
    assert meta["scheme_id"] == SCHEME.id and meta["scheme_hash"] == SCHEME.hash
    assert meta["scheme"] == SCHEME.to_dict() and meta["raw_inputs"] is raw_inputs
    assert meta["geometry_id"] == model.geometry_id
    assert meta["model_config"] == json.loads(json.dumps(model.model_config))
    return meta


# every case with normalized inputs, plus the raw-input graph of a regressor and a
# reconstruction model (MAE and inpainter share that wrapper)
PARITY = [(c, False) for c in CASES] + [("regressor", True), ("inpainter", True)]


@pytest.mark.parametrize(("case", "raw_inputs"), PARITY)
def test_onnx_parity_and_metadata(case: str, raw_inputs: bool, tmp_path: Path) -> None:
    kind, options, tasks = CASES[case]
    torch.manual_seed(0)
    model = create_model(kind, "tiny", scheme=SCHEME, tasks=tasks, **options)
    path = export_onnx(model, tmp_path / "m.onnx", raw_inputs=raw_inputs, exporter="torchscript")
    check_parity(model, path, raw_inputs)
    meta = check_metadata(model, path, raw_inputs)
    if kind == "regressor":
        assert meta["outputs"] == meta["tasks"] == model.task_names
        assert meta["output_units"].get("angle", "deg") == "deg"
        if case == "regressor-per-component-transform":
            tt = meta["target_transforms"]["uvwFI"]
            assert tt["name"] == "standardize,inverse,log+standardize" and tt["std"] == [10, 1, 0.5]
        if case == "regressor":
            assert meta["target_transforms"]["angle"]["mean"] == [90.0, 0.0]
            assert meta["output_units"]["n_gamma"] == "probability"


def test_default_dynamo_exporter_gives_a_dynamic_batch_raw_input_graph(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model("regressor", "tiny", scheme=SCHEME, tasks=TASK_MIX[:3])
    path = export_onnx(model, tmp_path / "m.onnx", raw_inputs=True)
    check_parity(model, path, raw_inputs=True)
    assert check_metadata(model, path, True)["exporter"] == "dynamo"


@pytest.mark.slow
@pytest.mark.parametrize("case", ["mae", "inpainter", "regressor-split-readout"])
def test_dynamo_parity_for_the_other_kinds(case: str, tmp_path: Path) -> None:
    kind, options, tasks = CASES[case]
    model = create_model(kind, "tiny", scheme=SCHEME, tasks=tasks, **options)
    path = export_onnx(model, tmp_path / "m.onnx")
    check_parity(model, path, raw_inputs=False)


def test_read_metadata_refuses_a_foreign_file(tmp_path: Path) -> None:
    torch.onnx.export(
        torch.nn.Linear(2, 2), (torch.zeros(1, 2),), str(tmp_path / "f.onnx"), dynamo=False
    )
    with pytest.raises(ValueError, match="no xec metadata"):
        read_onnx_metadata(tmp_path / "f.onnx")


def test_task_subset_export_matches_those_heads_of_the_full_model(tmp_path: Path) -> None:
    """tasks=[...] exports only those heads: outputs and metadata describe the subset, and
    onnxruntime gives the full torch model's predictions for them."""
    torch.manual_seed(0)
    model = create_model("regressor", "tiny", scheme=SCHEME, tasks=TASK_MIX[:4]).eval()
    assert isinstance(model, XECRegressor)
    path = export_onnx(model, tmp_path / "m.onnx", exporter="torchscript",
                       tasks=["uvwFI", "angle"])  # fmt: skip
    args = example_inputs(model, raw_inputs=False, batch=3)
    with torch.no_grad():
        want = model.predict(*args)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["angle", "uvwFI"]  # the model's order
    for name, got in zip(["angle", "uvwFI"], session.run(None, {"x": args[0].numpy()}),
                         strict=True):  # fmt: skip
        np.testing.assert_allclose(got, want[name].numpy(), rtol=1e-5, atol=1e-4, err_msg=name)
    meta = read_onnx_metadata(path)
    jsonschema.validate(meta, SCHEMA)
    assert meta["tasks"] == meta["outputs"] == ["angle", "uvwFI"]
    assert set(meta["output_units"]) == set(meta["target_transforms"]) == {"angle", "uvwFI"}
    assert [t["name"] for t in meta["model_config"]["tasks"]] == ["angle", "uvwFI"]
    assert meta["target_transforms"]["angle"]["mean"] == [90.0, 0.0]
    assert model.task_names == ["angle", "energy", "timing", "uvwFI"]  # the model is untouched


def test_task_subset_errors_name_the_task_and_the_model_tasks(tmp_path: Path) -> None:
    model = create_model("regressor", "tiny", scheme=SCHEME, tasks=TASK_MIX[:2])
    with pytest.raises(ValueError, match=r"unknown task 'angel'.*model has angle, energy"):
        export_onnx(model, tmp_path / "m.onnx", tasks=["angel"])
    with pytest.raises(ValueError, match=r"no task 'timing'; it has angle, energy"):
        export_onnx(model, tmp_path / "m.onnx", tasks=["angle", "timing"])
    with pytest.raises(ValueError, match="tasks apply to a regressor"):
        export_onnx(
            create_model("mae", "tiny", scheme=SCHEME), tmp_path / "m.onnx", tasks=["angle"]
        )
    assert not (tmp_path / "m.onnx").exists()
