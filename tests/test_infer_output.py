"""`xec infer` output writing: inputs whose branches differ are refused and nothing is left."""

from __future__ import annotations

from pathlib import Path

import pytest
import uproot

from tests.rootfiles import write_uproot
from xecdata.schemes import get_scheme
from xecmodel import TaskSpec, create_model, export_onnx
from xectrain.serving.infer import InferenceError, run_inference


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "m.onnx"
    net = create_model("regressor", "tiny", scheme=get_scheme("new@1"),
                       tasks=[TaskSpec("energy", transform="identity")])  # fmt: skip
    return export_onnx(net.eval(), path, exporter="torchscript")


def test_outputs_streamed_and_a_mismatch_leaves_no_file(model: Path, tmp_path: Path) -> None:
    write_uproot(tmp_path / "a.root", 20, seed=1)
    write_uproot(tmp_path / "b.root", 12, seed=2)
    out = tmp_path / "pred.root"
    summary = run_inference(model, [tmp_path / "a.root", tmp_path / "b.root"], out, batch_size=8)
    assert summary["events"] == 32
    with uproot.open(out) as f:
        pred = f["predictions"].arrays(["input_file", "entry", "pred_energy"], library="np")
        meta = f["metadata"].arrays(library="np")
    assert pred["input_file"].tolist() == [0] * 20 + [1] * 12
    assert pred["entry"].tolist() == list(range(20)) + list(range(12))
    assert int(meta["n_events"][0]) == 32 and str(meta["tasks"][0]) == "energy"

    write_uproot(tmp_path / "c.root", 10, seed=3, drop=("xyzVTX",))
    bad = tmp_path / "bad.root"
    with pytest.raises(InferenceError, match=r"c\.root lacks branches \['xyzVTX'\]"):
        run_inference(model, [tmp_path / "a.root", tmp_path / "c.root"], bad, batch_size=8)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("bad")) == []
