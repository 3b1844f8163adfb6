"""A local HTTP server for the remote-input tests: the standard library's file server in a
thread, plus byte ranges (`Range: bytes=a-b`, `a-`, `-n`), which remote ROOT readers need
(uproot reads http:// through fsspec, one ranged GET per basket) and http.server lacks."""

from __future__ import annotations

import contextlib
import http.server
import os
import re
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """GET with one byte range answered 206 with that range; everything else as the base."""

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet tests

    def do_GET(self) -> None:
        m = _RANGE.match(self.headers.get("Range", "").strip())
        path = Path(self.translate_path(self.path))
        if m is None or not path.is_file():
            super().do_GET()
            return
        size = path.stat().st_size
        first, last = m.groups()
        if first == "":  # the last n bytes
            start, stop = max(size - int(last), 0), size
        else:
            start, stop = int(first), min(int(last) + 1 if last else size, size)
        if start >= size or stop <= start:
            self.send_error(416)
            return
        with open(path, "rb") as f:
            f.seek(start)
            body = f.read(stop - start)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{size}")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self.wfile.write(body)


@contextlib.contextmanager
def serve(folder: str | os.PathLike[str]) -> Iterator[str]:
    """Serve `folder` on 127.0.0.1 (a free port) while the block runs; yields the base URL."""
    handler = partial(RangeHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
