"""Quiet, honest output: other libraries' messages known to be harmless are hidden by their exact
text (anything else still shows) and come back with `xec -v`."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from xec_cli import quiet
from xec_cli.main import main


@pytest.fixture
def fresh_filters(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """No filters of xec's installed (other in-process CLI tests may have installed them);
    the previous state is restored afterwards."""
    monkeypatch.setattr(quiet, "_installed", False)
    loggers = [logging.getLogger(name) for name in {n for n, _, _ in quiet.HARMLESS_LOGS}]
    before = {log: list(log.filters) for log in loggers}
    for log in loggers:
        # by class name: a second import of the module (as `cli.quiet`) has its own class
        log.filters[:] = [f for f in log.filters if type(f).__name__ != "_DropMessages"]
    with warnings.catch_warnings():
        yield
    for log, filters in before.items():
        log.filters[:] = filters


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _logged(name: str, message: str, caplog: pytest.LogCaptureFixture) -> bool:
    """Whether `message` logged on `name` gets past the logger's filters. The handler sits on the
    logger itself: importing mlflow turns off propagation above its loggers, so a handler at the
    root (caplog's) sees nothing of theirs in a session where mlflow was imported first; and the
    logger is enabled for the call, as a logging configuration run by another test (alembic's,
    inside MLflow) can leave it disabled."""
    log, keep = logging.getLogger(name), _Keep()
    disabled, log.disabled = log.disabled, False  # a logging.config call elsewhere may disable it
    log.addHandler(keep)
    try:
        with caplog.at_level(logging.INFO, logger=name):
            log.warning(message)
    finally:
        log.removeHandler(keep)
        log.disabled = disabled
    return message in keep.messages


def test_known_messages_are_hidden_and_others_shown(
    fresh_filters: None, caplog: pytest.LogCaptureFixture
) -> None:
    quiet.hide_harmless()
    registration = "torch.onnx._internal.exporter._registration"
    assert not _logged(
        registration, "torchvision is not installed. Skipping torchvision::nms", caplog
    )
    assert _logged(registration, "torchvision is not installed; something else", caplog)
    assert not _logged(
        "mlflow.store.db.utils", "Creating initial MLflow database tables...", caplog
    )
    assert _logged(
        "mlflow.store.db.utils", "Creating initial MLflow database tables... again", caplog
    )
    category = FutureWarning
    message = ("`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, "
               "TreeSpec) and treespec.is_leaf()` instead.")  # fmt: skip
    folding = ("Constant folding - Only steps=1 can be constant folded for opset >= 10 "
               "onnx::Slice op. Constant folding not applied. (Triggered internally at "
               "/build/torch/csrc/jit/passes/onnx/constant_fold.cpp:178.)")  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet._installed = False
        quiet.hide_harmless()  # after simplefilter, so that the ignore rules come first
        warnings.warn(message, category, stacklevel=1)
        warnings.warn(message + " (and more)", category, stacklevel=1)
        warnings.warn(message, UserWarning, stacklevel=1)
        warnings.warn(folding, UserWarning, stacklevel=1)
    assert [(w.category, str(w.message)) for w in caught] == [
        (category, message + " (and more)"),
        (UserWarning, message),
    ]


def test_verbose_flag_leaves_the_filters_off(
    fresh_filters: None, caplog: pytest.LogCaptureFixture
) -> None:
    assert CliRunner().invoke(main, ["-v", "schemes"]).exit_code == 0
    assert _logged("mlflow.store.db.utils", "Updating database tables", caplog)
    assert CliRunner().invoke(main, ["schemes"]).exit_code == 0
    assert not _logged("mlflow.store.db.utils", "Updating database tables", caplog)


def _tiny_checkpoint(tmp: Path) -> Path:
    from tests.trainhelpers import tiny_config, toy_loaders
    from xectrain.run.fit import train

    cfg = tiny_config("regressor", tmp, "training.epochs=1", "tracking.enabled=false",
                      "model.outer_mode=split")  # fmt: skip
    return train(cfg, toy_loaders(4, 4, batch_size=4)).run_dir / "checkpoint_best.pth"


@pytest.mark.slow
def test_export_onnx_prints_only_its_own_line_and_more_with_v(tmp_path: Path) -> None:
    """The real `xec export onnx` (torch's dynamo exporter) in a fresh process."""
    ckpt = _tiny_checkpoint(tmp_path)
    xec = [sys.executable, "-m", "xec_cli.main"]
    quiet_run = subprocess.run([*xec, "export", "onnx", str(ckpt), "-o", str(tmp_path / "a.onnx")],
                               capture_output=True, text=True, check=True)  # fmt: skip
    assert quiet_run.stdout == f"wrote {tmp_path / 'a.onnx'}\n" and quiet_run.stderr == ""
    loud = subprocess.run([*xec, "-v", "export", "onnx", str(ckpt), "-o", str(tmp_path / "b.onnx")],
                          capture_output=True, text=True, check=True)  # fmt: skip
    assert "torchvision is not installed. Skipping torchvision::nms" in loud.stderr
