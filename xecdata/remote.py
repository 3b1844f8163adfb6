"""Inputs given as URLs (`root://`, `http(s)://`, `s3://`, ...): what the ROOT readers need to
treat them like local files.

uproot opens a URL through fsspec (its default source for every non-file path), so a URL
works wherever a path does once its size, modification time and bytes can be had for the
checks and the provenance; this module gets them through the same fsspec filesystem: `stat`
(size, modification time where the server tells it, else 0), `read_range` (the 'root' magic,
the first and last MiB of the fingerprint) and `sha256` (the content hash, streamed). A
protocol needs its fsspec backend installed (`root://`: fsspec-xrootd; `s3://`: s3fs;
`http(s)://`: aiohttp, a dependency of fsspec's HTTP filesystem). Every failure is an
`InputError` that names the URL and says what to check.
"""

from __future__ import annotations

import hashlib
import os
import re
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from xecdata.errors import InputError

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
BLOCK = 1 << 22  # bytes per read when hashing


def is_url(path: str | os.PathLike[str]) -> bool:
    """True for `scheme://...` (file:// included: it is opened through fsspec too)."""
    return isinstance(path, str) and bool(_URL.match(path))


def _fs(url: str) -> tuple[Any, str]:
    """(fsspec filesystem, path inside it) of a URL; InputError when the protocol has no
    installed backend."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        protocol = url.split("://", 1)[0]
        raise InputError(
            url,
            f"no reader for '{protocol}://' URLs ({exc})",
            "Install its fsspec backend (pip install 'xec[remote]': fsspec-xrootd for root://, "
            "s3fs for s3://), or copy the file and give its local path",
        ) from None


def unreachable(url: str, exc: BaseException) -> InputError:
    """The InputError of a URL that could not be read (404, refused connection, ...)."""
    if isinstance(exc, InputError):
        return exc
    return InputError(
        url,
        _problem(url, exc),
        "Check the URL and that its server is up and lets this machine read it, or copy the "
        "file and give its local path",
    )


def _problem(url: str, exc: BaseException) -> str:
    """What went wrong, from the deepest cause fsspec wrapped (it turns every HTTP failure
    into FileNotFoundError): an HTTP status, a refused / failed connection, or the message."""
    chain: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and e not in chain:
        chain.append(e)
        e = e.__cause__ or e.__context__
    for e in chain:
        status = getattr(e, "status", None)
        if isinstance(status, int):
            return "not found (HTTP 404)" if status == 404 else f"the server answered HTTP {status}"
    for e in reversed(chain):
        if isinstance(e, OSError) and not isinstance(e, FileNotFoundError):
            return f"cannot be reached ({type(e).__name__}: {e})"
    text = str(chain[-1]).replace(url, "").strip(" :")
    kind = "not found" if isinstance(chain[-1], FileNotFoundError) else "cannot be read"
    return f"{kind} ({type(chain[-1]).__name__}{': ' + text if text else ''})"


def _mtime_ns(info: dict[str, Any]) -> int:
    """Modification time in ns from an fsspec info record (local 'mtime', S3 'LastModified',
    HTTP 'Last-Modified'); 0 when the server gives none."""
    for key in ("mtime", "LastModified", "last_modified", "Last-Modified", "modified"):
        value = info.get(key)
        if value is None:
            continue
        if isinstance(value, str):
            value = _parse_time(value)
            if value is None:
                continue
        if isinstance(value, datetime):
            return int(value.timestamp() * 1e9)
        return int(float(value) * 1e9)
    return 0


def _parse_time(text: str) -> datetime | None:
    """An HTTP date (RFC 7231) or an ISO 8601 time; None when neither."""
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError):
        pass
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def stat(url: str) -> tuple[int, int]:
    """(size in bytes, modification time in ns or 0) of the file at a URL."""
    fs, path = _fs(url)
    try:
        info = fs.info(path)
    except Exception as exc:
        raise unreachable(url, exc) from None
    size = info.get("size")
    if size is None:
        raise InputError(url, "the server does not give the file size", "Copy it locally")
    return int(size), _mtime_ns(info)


def read_range(url: str, start: int, length: int) -> bytes:
    """`length` bytes of the file at a URL from byte `start` (fewer at its end)."""
    fs, path = _fs(url)
    try:
        return bytes(fs.cat_file(path, start=start, end=start + length))
    except Exception as exc:
        raise unreachable(url, exc) from None


def sha256(url: str, block: int = BLOCK) -> str:
    """'sha256:<hex>' of the bytes at a URL, streamed in `block` reads."""
    fs, path = _fs(url)
    h = hashlib.sha256()
    try:
        with fs.open(path, "rb") as f:
            while chunk := f.read(block):
                h.update(chunk)
    except Exception as exc:
        raise unreachable(url, exc) from None
    return "sha256:" + h.hexdigest()
