"""Every verb's `--json` output is pure JSON on stdout (stderr may carry progress, never stdout):
one case per verb that has the option, and a check that no such verb is left out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tests.rootfiles import write_uproot
from tests.test_analysis import _write as write_predictions
from tests.test_inspect import _ckpt as write_checkpoint
from xec_cli.main import main


@pytest.fixture(scope="module")
def inputs(toy_store: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A ROOT file, the shared store, a checkpoint, an xec ONNX model and a predictions file."""
    import onnx
    from onnx import TensorProto, helper

    root = tmp_path_factory.mktemp("json")
    write_uproot(root / "a.root", 200, seed=3, baskets=2)
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )  # fmt: skip
    model = helper.make_model(graph)
    helper.set_model_props(model, {"xec.scheme_id": "new@1", "xec.model_kind": "regressor"})
    onnx.save(model, str(root / "m.onnx"))
    write_predictions(root / "pred.root", 300)
    return {"root": str(root / "a.root"), "store": str(toy_store),
            "ckpt": str(write_checkpoint(root)), "onnx": str(root / "m.onnx"),
            "pred": str(root / "pred.root"), "dir": str(root)}  # fmt: skip


# verb -> argument lists of its --json forms ({...}: the inputs fixture)
CASES: dict[str, list[list[str]]] = {
    "geometry": [["geometry", "--json"]],
    "schemes": [["schemes", "--json"]],
    "inspect": [["inspect", f"{{{name}}}", "--json"] for name in ("store", "root", "ckpt", "onnx")],
    "analyze": [["analyze", "{pred}", "-o", "{dir}/analysis", "--json"]],
    "reco run": [["reco", "{root}", "-o", "{dir}/reco.root", "--json"]],
    "bench loader": [
        [
            "bench",
            "loader",
            "{store}",
            "--backend",
            "cpu",
            "--threads",
            "1",
            "--batch-size",
            "32",
            "--json",
        ]
    ],
}
SLOW_CASES: dict[str, list[list[str]]] = {
    "bench ingest": [["bench", "ingest", "--events", "256", "--workers", "1", "--json"]],
    "bench reco": [["bench", "reco", "--events", "256", "--repeats", "1", "--json"]],
    "bench physics": [
        [
            "bench",
            "physics",
            "--train-events",
            "1024",
            "--val-events",
            "64",
            "--epochs",
            "1",
            "-o",
            "{dir}/physics.json",
            "--json",
        ]
    ],
}


def _json_stdout(args: list[str], inputs: dict[str, str]) -> object:
    argv = [a.format(**inputs) for a in args]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # the whole of stdout, nothing else


def _params(cases: dict[str, list[list[str]]]) -> list[list[str]]:
    return [args for forms in cases.values() for args in forms]


@pytest.mark.parametrize("args", _params(CASES), ids=" ".join)
def test_json_is_all_of_stdout(args: list[str], inputs: dict[str, str]) -> None:
    doc = _json_stdout(args, inputs)
    assert isinstance(doc, dict | list) and doc


@pytest.mark.slow
@pytest.mark.parametrize("args", _params(SLOW_CASES), ids=" ".join)
def test_json_is_all_of_stdout_slow(args: list[str], inputs: dict[str, str]) -> None:
    doc = _json_stdout(args, inputs)
    assert isinstance(doc, dict) and doc


def _json_verbs(group: click.Group, ctx: click.Context, prefix: str) -> Iterator[str]:
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        if any("--json" in p.opts for p in command.params if isinstance(p, click.Option)):
            yield f"{prefix}{name}"
        if isinstance(command, click.Group):
            yield from _json_verbs(command, ctx, f"{prefix}{name} ")


def test_every_verb_with_json_is_covered() -> None:
    with click.Context(main) as ctx:
        verbs = set(_json_verbs(main, ctx, ""))
    assert verbs == set(CASES) | set(SLOW_CASES)
