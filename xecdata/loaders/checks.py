"""Refusals before any batch: an unfinished store, a store without the asked scheme."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xecdata.store import Store


def open_checked(store: str | Path | Store, scheme: str) -> tuple[Store, str]:
    """(opened complete store, canonical scheme id) or a clear error naming the fix."""
    from xecdata.schemes import get_scheme
    from xecdata.store import open_store

    st = open_store(store, require_complete=True) if isinstance(store, (str, Path)) else store
    if not getattr(st, "complete", True):
        from xecdata.store import IncompleteStoreError

        raise IncompleteStoreError(
            f"store {st.path} is unfinished (its ingestion did not complete); re-run the "
            "ingestion to resume it before loading"
        )
    scheme_id = get_scheme(scheme).id if "@" not in scheme else scheme
    if scheme_id not in st.schemes:
        from xecdata.store import SchemeMismatchError

        raise SchemeMismatchError(
            f"store {st.path} has no tensor for scheme '{scheme_id}' (it has "
            f"{', '.join(sorted(st.schemes)) or 'none'}); load it with one of those schemes, "
            f"or add this one with `xec renormalize {st.path} --scheme {scheme_id}`"
        )
    st.check_scheme(scheme_id)
    return st, scheme_id
