"""A folder made read-only for a test: `chmod -R a-w` (enough for ordinary users) plus, since
tests may run as root (whom permission bits do not stop), an audit hook that refuses every
write-mode open, mkdir, rename, removal, chmod and writable mmap under it while active; and a
snapshot of every file and folder, compared on the way out."""

from __future__ import annotations

import errno
import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_GUARDED: list[str] = []
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_PATH_EVENTS = {"os.mkdir": 0, "os.rename": 0, "os.remove": 0, "os.rmdir": 0, "os.chmod": 0,
                "os.truncate": 0, "shutil.rmtree": 0}  # fmt: skip


def _inside(path: Any) -> bool:
    if not isinstance(path, (str, bytes, os.PathLike)):
        return False
    text = os.path.abspath(os.fsdecode(path))
    return any(text == g or text.startswith(g + os.sep) for g in _GUARDED)


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not _GUARDED:
        return
    if event == "open":
        path, mode, flags = args
        writing = any(c in str(mode or "") for c in "wax+") or bool((flags or 0) & _WRITE_FLAGS)
        if writing and _inside(path):
            raise PermissionError(errno.EROFS, "read-only store (test guard)", os.fsdecode(path))
    elif event in _PATH_EVENTS and any(_inside(a) for a in args[:2]):
        raise PermissionError(errno.EROFS, f"read-only store (test guard): {event}", args[0])
    elif event == "mmap.__new__" and args[2] not in (1, None):  # ACCESS_READ is 1
        raise PermissionError(errno.EROFS, "read-only store (test guard): writable mmap")


sys.addaudithook(_hook)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) of every file and folder below `root`."""
    return {
        p.relative_to(root).as_posix(): (p.stat().st_size if p.is_file() else -1,
                                         p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }  # fmt: skip


@contextmanager
def read_only(root: Path) -> Iterator[None]:
    """`root` cannot be written by this process inside the block; asserts nothing changed."""
    before = snapshot(root)
    modes = {p: p.stat().st_mode for p in [root, *root.rglob("*")]}
    for p, mode in modes.items():
        p.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    _GUARDED.append(os.path.abspath(root))
    try:
        yield
    finally:
        _GUARDED.remove(os.path.abspath(root))
        for p, mode in modes.items():
            p.chmod(mode)
    assert snapshot(root) == before, "the read-only store was changed"
