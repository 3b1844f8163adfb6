"""The base class of every error a user can act on, and one-line renderings of others' errors.

Each layer raises its own subclass (StoreError, SchemeError, ConfigError, CheckpointError, ...)
with a message that names the file, option or entry and says how to fix it. The command line
catches `XecError` in one place and prints that message as a single `Error: ...` line; anything
else is a bug and gets a one-line summary with a hint to re-run with `xec -v`.
"""

from __future__ import annotations


class XecError(Exception):
    """A request xec refuses; str() names the thing at fault and the fix, on one line."""


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
