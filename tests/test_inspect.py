"""`xec inspect` on checkpoints, exported models and input ROOT files (stores: test_ingest)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import torch
from click.testing import CliRunner, Result
from onnx import TensorProto, helper

from tests.rootfiles import write_uproot
from xec_cli.main import main
from xecdata.schemes import DEAD_ABOVE, TIME_INVALID_ABOVE
from xectrain.checkpoint import make_checkpoint, save_checkpoint


def _inspect(*args: str) -> Result:
    return CliRunner().invoke(main, ["inspect", *args])


def test_root_file_report_and_sample_statistics(tmp_path: Path) -> None:
    data = write_uproot(tmp_path / "a.root", 40, seed=2)
    out = _inspect(str(tmp_path / "a.root"), "--json", "--sample", "30")
    assert out.exit_code == 0, out.output
    d = json.loads(out.output)
    assert d["entries"] == 40 and d["problem"] is None
    assert d["layout"] == ["fixed", "fixed"] and d["columns"]["emiAng"] == "truth float32[2]"
    npho, time = data["npho"][:30].astype(np.float64), data["relative_time"][:30]
    s = d["sample"]
    assert s["events"] == 30
    assert s["sensors_lit_fraction"] == float(((npho > 0) & (npho <= DEAD_ABOVE)).mean())
    assert s["npho_invalid_marker_fraction"] == float((npho > DEAD_ABOVE).mean()) > 0  # dead
    valid = np.abs(time) <= TIME_INVALID_ABOVE
    assert s["time_valid_fraction"] == float(valid.mean())
    assert s["npho_sum_median"] == float(np.median(np.where(npho <= DEAD_ABOVE, npho, 0).sum(1)))
    text = _inspect(str(tmp_path / "a.root")).output
    assert "40 entries" in text and "content     OK" in text


def test_root_file_with_nan_truth_is_reported_with_status_1(tmp_path: Path) -> None:
    from tests.rootfiles import fake_events

    events = fake_events(20, seed=1)
    events["energyTruth"][7] = np.nan
    write_uproot(tmp_path / "bad.root", 20, events=events)
    out = _inspect(str(tmp_path / "bad.root"))
    assert out.exit_code == 1
    assert "PROBLEM" in out.output and "energyTruth" in out.output and "entry 7" in out.output
    out = _inspect(str(tmp_path / "bad.root"), "--time-branch", "t")
    assert out.exit_code != 0 and "'t'" in out.output and "--time-branch" in out.output


def _ckpt(tmp_path: Path, **fields: object) -> Path:
    state = {"encoder.w": torch.zeros(4, 5), "heads.angle.b": torch.zeros(3), "encoder.n": 7}
    config = {"tasks": {"angle": {"enabled": True}, "energy": {"enabled": False}}}
    ckpt = make_checkpoint(
        "regressor", state, config=config, scheme={"id": "new@1", "hash": "abc"}, epoch=3,
        step=30, best_metric=0.125, best_metric_name="val/total_loss", ema=None, **fields,
    )  # fmt: skip
    return save_checkpoint(tmp_path / "c.pth", ckpt)


def test_checkpoint_description(tmp_path: Path) -> None:
    path = _ckpt(tmp_path)
    d = json.loads(_inspect(str(path), "--json").output)
    assert d["kind"] == "regressor" and d["epoch"] == 3 and d["best_metric"] == 0.125
    assert d["parameters"] == {"encoder": 20, "heads": 3, "total": 23}
    assert d["tasks"] == ["angle"] and d["geometry_matches"] and not d["resumable"]
    assert d["scheme"] == {"id": "new@1", "hash": "abc"} and d["ema"] is False
    text = _inspect(str(path)).output
    assert "val/total_loss = 0.125" in text and "weights only" in text
    assert "matches this installation" in text

    full = {k: {} for k in ("optimizer", "scheduler", "loader", "rng")}
    path = _ckpt(tmp_path, geometry_id="other-detector", **full)
    d = json.loads(_inspect(str(path), "--json").output)
    assert d["resumable"] and not d["geometry_matches"]  # described, not refused
    assert "DIFFERS" in _inspect(str(path)).output


def test_foreign_files_get_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "x.pth").write_bytes(b"not a checkpoint")
    out = _inspect(str(tmp_path / "x.pth"))
    assert out.exit_code != 0 and "not a readable checkpoint" in out.output
    out = _inspect(str(tmp_path / "missing.pth"))
    assert out.exit_code != 0 and "does not exist" in out.output

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )  # fmt: skip
    model = helper.make_model(graph)
    onnx.save(model, str(tmp_path / "plain.onnx"))
    out = _inspect(str(tmp_path / "plain.onnx"))
    assert out.exit_code != 0 and "not an exported xec model" in out.output
    helper.set_model_props(model, {"xec.scheme_id": "new@1", "xec.model_kind": "regressor"})
    onnx.save(model, str(tmp_path / "xec.onnx"))
    out = _inspect(str(tmp_path / "xec.onnx"))
    assert out.exit_code == 0, out.output
    assert "scheme_id     new@1" in out.output and "model_kind    regressor" in out.output
