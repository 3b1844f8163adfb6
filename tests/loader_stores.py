"""Small real stores for the loader tests: uproot-written ROOT files through the real ingestion.

Two input files (700 + 500 events, the file boundary inside a chunk), chunks of 64 events (the
last one short), shards of 4 chunks, the default codec profile and a validation fraction that
puts a validation block between training blocks. The session shares one such store and its
uncompressed twin (conftest.py: `toy_store`, `toy_plain_store`, built from `toy_sources`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.rootfiles import write_uproot
from xecdata.ingest import ingest

FILE_EVENTS = (700, 500)
CHUNK_EVENTS = 64


def write_sources(root: Path) -> list[Path]:
    """The two ROOT input files, written into `root`."""
    root.mkdir(parents=True, exist_ok=True)
    files = []
    for i, n in enumerate(FILE_EVENTS):
        path = root / f"in{i}.root"
        write_uproot(path, n, seed=10 + i, baskets=3)
        files.append(path)
    return files


def ingest_store(files: list[Path], out: Path, codec: str | None = None) -> Path:
    """Ingest `files` into the store `out` (scheme new@1, the layout above)."""
    ingest(
        files,
        out,
        schemes=["new@1"],
        codec=codec,
        chunk_events=CHUNK_EVENTS,
        shard_chunks=4,
        workers=1,
        progress=False,
    )
    return out


def build_store(root: Path, codec: str | None = None) -> Path:
    """Write the ROOT inputs and ingest them into `root`/s.xec.zarr (scheme new@1)."""
    return ingest_store(write_sources(root), root / "s.xec.zarr", codec)


def unfinished_copy(store: Path, dest: Path) -> Path:
    """A copy of `store` without its completion marker (as after an interrupted ingestion)."""
    shutil.copytree(store, dest)
    (dest / "_xec" / "complete.json").unlink()
    return dest
