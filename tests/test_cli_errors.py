"""Every verb refuses a bad request with one `Error: ...` line that names the input at fault,
a non-zero exit status and no traceback (only `xec -v` shows one): one refused input per verb,
and a check that no verb is left out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner, Result

from xec_cli.main import main


@pytest.fixture(scope="module")
def inputs(toy_store: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Bad inputs of every sort, and a checkpoint whose scheme (legacy@1) the store lacks."""
    from xecmodel import TaskSpec, create_model
    from xectrain.checkpoint import make_checkpoint, save_checkpoint

    root = tmp_path_factory.mktemp("refused")
    (root / "junk.bin").write_text("not a ROOT file, checkpoint or model\n")
    (root / "bad.yaml").write_text("a: [1\n")
    (root / "notstore").mkdir()
    (root / "full").mkdir()
    (root / "full" / "x.txt").write_text("x")
    net = create_model("regressor", "tiny", scheme="legacy@1",
                       tasks=[TaskSpec("energy", transform="identity")])  # fmt: skip
    ckpt = make_checkpoint("regressor", net.state_dict(), model_config=net.model_config,
                           config={}, epoch=1)  # fmt: skip
    return {"dir": str(root), "junk": str(root / "junk.bin"), "yaml": str(root / "bad.yaml"),
            "notstore": str(root / "notstore"), "full": str(root / "full"),
            "store": str(toy_store),
            "ckpt": str(save_checkpoint(root / "legacy.pth", ckpt))}  # fmt: skip


# verb -> (a refused argument list, what the Error line must name); {...}: the inputs fixture
CASES: dict[str, tuple[list[str], list[str]]] = {
    "geometry": (["geometry", "--bogus"], ["--bogus"]),
    "simulate": (["simulate", "-n", "4", "-o", "{dir}/s.root", "--effects", "fog"], ["fog"]),
    "reco calibrate": (["reco", "calibrate", "{junk}", "-o", "{dir}/c.json"], ["junk.bin"]),
    "reco run": (["reco", "run", "{junk}", "-o", "{dir}/r.root"], ["junk.bin"]),
    "schemes": (["schemes", "-f", "{yaml}"], ["bad.yaml", "line 2"]),
    "ingest": (["ingest", "{junk}", "-o", "{dir}/i.xec.zarr", "--quiet"], ["junk.bin"]),
    "inspect": (["inspect", "{junk}"], ["junk.bin"]),
    "renormalize": (["renormalize", "{notstore}", "--scheme", "new@1"], ["notstore"]),
    "repair": (["repair", "{notstore}"], ["notstore"]),
    "reweight": (["reweight", "{notstore}", "--task", "energy"], ["notstore"]),
    "config migrate": (["config", "migrate", "{yaml}", "-o", "{dir}/m.yaml"], ["bad.yaml"]),
    "config show": (["config", "show", "--set", "bogus.key=1"], ["bogus.key"]),
    "train regressor": (
        ["train", "regressor", "--set", "training.lr=fast", "--dry-run"],
        ["training.lr"],
    ),
    "train mae": (
        ["train", "mae", "--set", "model.mask_ratio=many", "--dry-run"],
        ["model.mask_ratio"],
    ),
    "train inpainter": (["train", "inpainter", "--epochs", "0", "--dry-run"], ["training.epochs"]),
    "submit": (["submit", "-p", "gpu", "ingest", "{junk}"], ["ingest options", "--output"]),
    "validate": (
        ["validate", "{ckpt}", "--store", "{store}", "-o", "{dir}/v"],
        ["legacy@1", "{store}", "xec renormalize"],
    ),
    "plots": (["plots", "{notstore}"], ["notstore", "xec validate"]),
    "display": (["display", "{junk}", "--entry", "0"], ["junk.bin"]),
    "export onnx": (["export", "onnx", "{junk}", "-o", "{dir}/m.onnx"], ["junk.bin"]),
    "infer": (["infer", "{junk}", "{junk}", "-o", "{dir}/p.root"], ["junk.bin", "xec export onnx"]),
    "analyze": (["analyze", "{junk}"], ["junk.bin"]),
    "bench ingest": (["bench", "ingest", "--events", "0"], ["--events"]),
    "bench loader": (["bench", "loader", "{store}", "--threads", "one"], ["--threads", "one"]),
    "bench reco": (["bench", "reco", "--repeats", "0"], ["--repeats"]),
    "bench physics": (["bench", "physics", "--epochs", "0"], ["--epochs"]),
    "demo": (["demo", "-o", "{full}"], ["full", "-o"]),
}

# further refused requests that once ended in a traceback or an "unexpected" line
MORE_CASES: list[tuple[list[str], list[str]]] = [
    (["bench", "loader", "{store}", "--backend", "bogus"], ["--backend", "bogus"]),
    (["train", "regressor", "--store", "{store}", "--set", "data.scheme=legacy@1",
      "--set", "training.device=cpu", "--set", "tracking.enabled=false",
      "--set", "checkpoint.dir={dir}/runs"], ["{store}", "legacy@1", "xec renormalize"]),
    (["validate", "{ckpt}", "--store", "{notstore}"], ["notstore", "xec ingest"]),
]  # fmt: skip


def _invoke(args: list[str]) -> Result:
    return CliRunner().invoke(main, args)


def _error_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("Error:")]


def _assert_one_error_line(result: Result) -> str:
    """Exit status non-zero through click (not an escaped exception), one Error line, no
    traceback; returns that line."""
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = _error_lines(result)
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("verb", sorted(CASES))
def test_a_refused_request_ends_in_one_error_line(verb: str, inputs: dict[str, str]) -> None:
    args, names = CASES[verb]
    line = _assert_one_error_line(_invoke([a.format(**inputs) for a in args]))
    for name in names:
        assert name.format(**inputs) in line, line


@pytest.mark.parametrize("case", range(len(MORE_CASES)))
def test_more_refused_requests(case: int, inputs: dict[str, str]) -> None:
    args, names = MORE_CASES[case]
    line = _assert_one_error_line(_invoke([a.format(**inputs) for a in args]))
    for name in names:
        assert name.format(**inputs) in line, line


def test_cuda_without_a_device_is_a_refused_request(inputs: dict[str, str]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible")
    for args in (["validate", inputs["ckpt"], "--store", inputs["store"], "--device", "cuda"],
                 ["bench", "loader", inputs["store"], "--device", "cuda"]):  # fmt: skip
        line = _assert_one_error_line(_invoke(args))
        assert "no CUDA device is visible" in line and "cpu" in line, line


def _leaf_verbs(group: click.Group, ctx: click.Context, prefix: str) -> Iterator[str]:
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            yield from _leaf_verbs(command, ctx, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}"


def test_every_verb_has_a_refused_case() -> None:
    with click.Context(main) as ctx:
        verbs = set(_leaf_verbs(main, ctx, ""))
    assert verbs == set(CASES), "add a refused request for each new verb to CASES"


def test_an_unexpected_failure_is_one_line_and_its_traceback_shows_with_v(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import xec_cli.geometry_cmd as geometry_cmd

    def broken() -> list[dict[str, object]]:
        raise RuntimeError("table\nunreadable")

    monkeypatch.setattr(geometry_cmd, "sensor_table_rows", broken)
    line = _assert_one_error_line(_invoke(["geometry"]))
    assert line == (
        "Error: unexpected RuntimeError: table unreadable. "
        "Re-run with `xec -v ...` for the traceback"
    )
    verbose = _invoke(["-v", "geometry"])
    assert verbose.exit_code == 1 and len(_error_lines(verbose)) == 1
    assert "Traceback" in verbose.stderr and "RuntimeError: table" in verbose.stderr


def test_an_os_error_names_its_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import xec_cli.geometry_cmd as geometry_cmd

    def denied() -> list[dict[str, object]]:
        raise PermissionError(13, "Permission denied", str(tmp_path / "t.csv"))

    monkeypatch.setattr(geometry_cmd, "sensor_table_rows", denied)
    line = _assert_one_error_line(_invoke(["geometry"]))
    assert (
        line
        == f"Error: {tmp_path / 't.csv'}: Permission denied; check the path and its permissions"
    )


def test_a_refused_training_leaves_float_arithmetic_as_it_found_it(inputs: dict[str, str]) -> None:
    """Training flushes denormals on the CPU; a run that ends (here refused) must undo it, or
    every later computation of the process changes (a test of scheme hashes failed after it)."""
    args, _ = MORE_CASES[1]
    _assert_one_error_line(_invoke([a.format(**inputs) for a in args]))
    assert float(np.nextafter(0.0, 1.0)) > 0.0
