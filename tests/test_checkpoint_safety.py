"""Checkpoints cannot run code: a `.pth` whose pickle names anything but tensors and plain data
is refused by every verb that opens checkpoints, and nothing of it runs."""

from __future__ import annotations

import pickle
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from xec_cli.main import main
from xectrain.checkpoint import (
    CheckpointError,
    UnsafeCheckpointError,
    make_checkpoint,
    read_checkpoint,
    save_checkpoint,
)


class Payload:
    """Unpickling this calls open(marker, "w"): the marker file appears if anything runs."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def _malicious(tmp: Path, bare: bool = False) -> tuple[Path, Path]:
    """A file that looks like an xec checkpoint (header, weights) with the payload inside."""
    marker, path = tmp / "pwned", tmp / ("bare.pth" if bare else "evil.pth")
    ckpt = make_checkpoint("regressor", {"w": torch.ones(2)}, model_config={"x": Payload(marker)})
    if bare:
        path.write_bytes(pickle.dumps(ckpt))
    else:
        torch.save(ckpt, path)
    return path, marker


@pytest.mark.parametrize("bare", [False, True], ids=["torch.save", "bare pickle"])
def test_reader_refuses_the_payload_without_running_it(tmp_path: Path, bare: bool) -> None:
    path, marker = _malicious(tmp_path, bare)
    with pytest.raises(UnsafeCheckpointError, match=r"evil|bare") as err:
        read_checkpoint(path)
    assert "carries io.open" in str(err.value) and "\n" not in str(err.value)
    assert not marker.exists()


def test_checkpoints_of_xec_and_of_earlier_versions_load(tmp_path: Path) -> None:
    ckpt = make_checkpoint(
        "mae", OrderedDict(w=torch.arange(3.0)), epoch=2, rng={"cpu": torch.get_rng_state()}
    )
    assert type(ckpt["torch_version"]) is str
    new = save_checkpoint(tmp_path / "new.pth", ckpt)
    old = tmp_path / "old.pth"  # written before torch_version was stored as a plain str
    torch.save(ckpt | {"torch_version": torch.__version__}, old)
    for path in (new, old):
        got = read_checkpoint(path)
        assert got["epoch"] == 2 and torch.equal(got["model"]["w"], torch.arange(3.0))
        assert torch.equal(got["rng"]["cpu"], ckpt["rng"]["cpu"])
    (tmp_path / "torn.pth").write_bytes(new.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="not a readable checkpoint") as err:
        read_checkpoint(tmp_path / "torn.pth")
    assert not isinstance(err.value, UnsafeCheckpointError)


VERBS = {
    "inspect": ["inspect", "{ckpt}"],
    "inspect --json": ["inspect", "{ckpt}", "--json"],
    "export onnx": ["export", "onnx", "{ckpt}", "-o", "{tmp}/m.onnx"],
    "validate": ["validate", "{ckpt}", "--store", "{tmp}/s.xec.zarr"],
    "train --resume-from": ["train", "regressor", "--resume-from", "{ckpt}", "--store",
                            "{tmp}/s.xec.zarr", "--set", "checkpoint.dir={tmp}/runs",
                            "--set", "tracking.enabled=false"],
    "train encoder_from": ["train", "regressor", "--set", "model.encoder_from={ckpt}",
                           "--store", "{tmp}/s.xec.zarr", "--set", "checkpoint.dir={tmp}/runs",
                           "--set", "tracking.enabled=false"],
    "infer (ONNX only)": ["infer", "{ckpt}", "{ckpt}", "-o", "{tmp}/out.root"],
    "analyze (ROOT only)": ["analyze", "{ckpt}", "-o", "{tmp}/analysis"],
}  # fmt: skip


@pytest.mark.parametrize("verb", list(VERBS))
def test_every_verb_refuses_a_malicious_checkpoint(tmp_path: Path, verb: str) -> None:
    ckpt, marker = _malicious(tmp_path)
    (tmp_path / "s.xec.zarr").mkdir()  # the checkpoint is opened before the store is read
    args = [a.format(ckpt=ckpt, tmp=tmp_path) for a in VERBS[verb]]
    res = CliRunner().invoke(main, args)
    assert res.exit_code != 0, res.output
    assert not marker.exists()
    errors = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, res.output
    if verb.startswith(("infer", "analyze")):  # ONNX / ROOT only: the file is never unpickled
        assert str(ckpt) in errors[0] and not (tmp_path / "out.root").exists()
    else:
        assert f"{ckpt} is refused: its pickle carries io.open" in errors[0]
