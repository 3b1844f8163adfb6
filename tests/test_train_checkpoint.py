"""Checkpoints: atomic writes, refusal of other schemes / geometries, encoder transfer."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import torch
from referencing import Registry, Resource
from torch import nn

import xectrain.checkpoint.format as ck
from xecdata.schemes import get_scheme
from xectrain.checkpoint import (
    CheckpointError,
    checkpoint_header,
    checkpoint_role,
    encoder_state,
    load_checkpoint,
    make_checkpoint,
    prune_snapshots,
    save_checkpoint,
    save_encoder,
    snapshot_path,
    unwrap_state_dict,
)
from xectrain.config import default_config, run_config_schema, to_dict
from xectrain.run.ema import ModelEMA

SCHEME = {"id": "new@1", "hash": "sha256:aaaa"}


class Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(4, 3)
        self.head = nn.Linear(3, 1)


def _ckpt(kind: str = "mae", **extra: object) -> dict:  # a checkpoint of a toy model
    torch.manual_seed(0)
    model = Toy()
    ema = ModelEMA(model, 0.9)
    with torch.no_grad():
        ema.module.encoder.weight.add_(1.0)  # EMA differs from the live weights
    fields = dict(ema=ema.state_dict(), epoch=3, step=30, scheme=SCHEME,
                  config={"model": {"kind": kind}}, mlflow_run_id="abc")  # fmt: skip
    return make_checkpoint(kind, model.state_dict(), **(fields | extra))


def test_round_trip_and_no_leftovers(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "checkpoint_last.pth", _ckpt())
    loaded = load_checkpoint(path, scheme=SCHEME)
    assert loaded["epoch"] == 3 and loaded["step"] == 30 and loaded["mlflow_run_id"] == "abc"
    assert torch.equal(loaded["model"]["encoder.weight"], _ckpt()["model"]["encoder.weight"])
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint_last.pth"]


def test_a_crash_while_writing_keeps_the_old_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save_checkpoint(tmp_path / "checkpoint_last.pth", _ckpt())
    before = path.read_bytes()

    def torn_save(obj: object, fh: object) -> None:
        fh.write(b"half a checkpoint")  # type: ignore[attr-defined]
        raise KeyboardInterrupt  # killed mid-write

    monkeypatch.setattr(ck.torch, "save", torn_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, _ckpt(epoch_note="new"))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint_last.pth"]


def test_other_scheme_or_geometry_is_refused(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "c.pth", _ckpt())
    with pytest.raises(
        CheckpointError, match=r"scheme new@1, but this run uses legacy@1.*data\.scheme=new@1"
    ):
        load_checkpoint(path, scheme={"id": "legacy@1", "hash": "sha256:bbbb"})
    with pytest.raises(CheckpointError, match="parameters changed without a new version"):
        load_checkpoint(path, scheme={"id": "new@1", "hash": "sha256:cccc"})
    other = _ckpt()
    other["geometry_id"] = "xecgeo-0000000000000000"
    save_checkpoint(tmp_path / "g.pth", other)
    with pytest.raises(
        CheckpointError, match="trained on detector geometry xecgeo-0000000000000000"
    ):
        load_checkpoint(tmp_path / "g.pth")
    torch.save({"state_dict": {}}, tmp_path / "foreign.pth")
    with pytest.raises(CheckpointError, match="not an xec checkpoint"):
        load_checkpoint(tmp_path / "foreign.pth")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pth")


def test_roles_and_encoder_transfer(tmp_path: Path) -> None:
    mae = _ckpt("mae")
    assert checkpoint_role(mae, "mae") == "resume"
    assert checkpoint_role(mae, "regressor") == "encoder"
    assert checkpoint_role(mae, "inpainter") == "encoder"
    with pytest.raises(CheckpointError, match="regressor model, which cannot initialize a mae"):
        checkpoint_role(_ckpt("regressor"), "mae")
    enc = encoder_state(mae)
    assert set(enc) == {"weight", "bias"}
    assert torch.equal(enc["weight"], mae["ema"]["model"]["encoder.weight"])  # EMA wins
    path = save_encoder(tmp_path / "mae_encoder_epoch_003.pth", mae)
    loaded = load_checkpoint(path, scheme=SCHEME)
    assert checkpoint_role(loaded, "regressor") == "encoder"
    assert torch.equal(encoder_state(loaded)["weight"], enc["weight"])


def test_header_satisfies_the_checkpoint_schema() -> None:
    root = Path(__file__).resolve().parents[1] / "schemas"
    schema = json.loads((root / "checkpoint.schema.json").read_text())
    registry = Registry().with_resource(
        "urn:xec:schema:run_config:1", Resource.from_contents(run_config_schema())
    )
    scheme = get_scheme("new@1")
    ckpt = _ckpt("mae", config=to_dict(default_config("mae")), best_metric=float("inf"),
                 scheme={"id": scheme.id, "hash": scheme.hash})  # fmt: skip
    header = checkpoint_header(ckpt)
    assert "model" not in header and header["best_metric"] is None
    jsonschema.Draft202012Validator(schema, registry=registry).validate(header)
    header["config"]["training"]["lr"] = "fast"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema, registry=registry).validate(header)


def test_unwrap_and_prune(tmp_path: Path) -> None:
    sd = {"module._orig_mod.encoder.weight": 1, "head.bias": 2}
    assert unwrap_state_dict(sd) == {"encoder.weight": 1, "head.bias": 2}
    for epoch in (1, 2, 3, 10):
        snapshot_path(tmp_path, epoch).write_bytes(b"x")
    deleted = prune_snapshots(tmp_path, keep=2)
    assert sorted(p.name for p in deleted) == [
        "checkpoint_epoch_001.pth",
        "checkpoint_epoch_002.pth",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint_epoch_003.pth",
        "checkpoint_epoch_010.pth",
    ]
