"""The base class of every error a user can act on, and one-line renderings of others' errors.

Each layer raises its own subclass (StoreError, SchemeError, ConfigError, CheckpointError, ...)
with a message that names the file, option or entry and says how to fix it. The command line
catches `XecError` in one place and prints that message as a single `Error: ...` line; anything
else is a bug and gets a one-line summary with a hint to re-run with `xec -v`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class XecError(Exception):
    """A request xec refuses; str() names the thing at fault and the fix, on one line."""


class InputError(XecError, ValueError):
    """A ROOT input cannot be ingested; str() names file/tree/branch/entry and the fix."""

    def __init__(self, path: str | Path, problem: str, fix: str, **where: object) -> None:
        loc = ", ".join(f"{k} {v!r}" for k, v in where.items() if v is not None)
        super().__init__(f"{path}{' (' + loc + ')' if loc else ''}: {problem}. {fix}")
        self.path, self.problem, self.fix, self.where = str(path), problem, fix, where

    def __reduce__(self) -> tuple[Any, ...]:  # keyword fields survive worker processes
        return (_rebuild_input_error, (self.path, self.problem, self.fix, self.where))


def yaml_problem(exc: Exception) -> str:
    """A YAML parser error on one line: 'line L, column C: problem' (PyYAML spreads its message
    over several lines with a caret drawing)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is None:
        return str(problem)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"


def one_line(text: str) -> str:
    """`text` with its lines joined by spaces (a message printed after `Error:` stays one line)."""
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def _rebuild_input_error(path: str, problem: str, fix: str, where: dict[str, Any]) -> InputError:
    return InputError(path, problem, fix, **where)
