"""Comma-separated name lists of the verbs' options (--tasks energy,angle)."""

from __future__ import annotations


def split_names(*values: str | None) -> list[str] | None:
    """Names from one or more comma-separated option values, in order, once each; None when
    the option was not given (so the caller's default applies)."""
    given = [v for v in values if v is not None]
    if not given:
        return None
    names = [t.strip() for v in given for t in v.split(",") if t.strip()]
    return list(dict.fromkeys(names))
