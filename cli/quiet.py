"""Other libraries' messages known to be harmless, kept out of `xec`'s output unless `xec -v`.

Each is matched by its whole text (patterns only for the parts that vary: operator names, build
paths), so a new or different message of the same library still shows. Found by running `xec
demo` and the verbs it calls (and `xec export onnx --exporter torchscript`); the reason each is
harmless is beside it.
"""

from __future__ import annotations

import logging
import re
import warnings

# (category, whole message as a regular expression, why it is harmless)
HARMLESS_WARNINGS: tuple[tuple[type[Warning], str, str], ...] = (
    (
        FutureWarning,
        r"`isinstance\(treespec, LeafSpec\)` is deprecated, use `isinstance\(treespec, TreeSpec\) "
        r"and treespec\.is_leaf\(\)` instead\.",
        "torch.onnx's exporter unpickles its own pytree specs; nothing of xec's calls this",
    ),
    (
        UserWarning,
        r"Constant folding - Only steps=1 can be constant folded for opset >= 10 onnx::Slice "
        r"op\. Constant folding not applied\.( \(Triggered internally at \S+:\d+\.\))?",
        "the torchscript exporter leaves strided slices unfolded; the model computes the same",
    ),
)

# (logger, whole message as a regular expression, why it is harmless)
HARMLESS_LOGS: tuple[tuple[str, str, str], ...] = (
    (
        "torch.onnx._internal.exporter._registration",
        r"torchvision is not installed\. Skipping torchvision::\w+",
        "xec's models use no torchvision operators, so none need registering for export",
    ),
    (
        "mlflow.store.db.utils",
        r"Creating initial MLflow database tables\.\.\.",
        "MLflow sets up a new SQLite tracking file (xec's default mlruns.db) once",
    ),
    (
        "mlflow.store.db.utils",
        r"Updating database tables",
        "MLflow brings a tracking file's schema up to date (a no-op on a current file)",
    ),
)


class _DropMessages(logging.Filter):
    """Drops records whose whole message matches one of the patterns."""

    def __init__(self, patterns: list[str]) -> None:
        super().__init__()
        self.patterns = [re.compile(p) for p in patterns]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(p.fullmatch(message) for p in self.patterns)


_installed = False


def hide_harmless() -> None:
    """Install the filters (once per process)."""
    global _installed
    if _installed:
        return
    for category, pattern, _ in HARMLESS_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern + r"\Z", category=category)
    patterns: dict[str, list[str]] = {}
    for logger, pattern, _ in HARMLESS_LOGS:
        patterns.setdefault(logger, []).append(pattern)
    for logger, items in patterns.items():
        logging.getLogger(logger).addFilter(_DropMessages(items))
    _installed = True
