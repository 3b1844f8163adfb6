"""Codec profiles of the store: what compresses each chunk, recorded in the store metadata.

Measured on toy-simulator events (benchmarks/precision.py and benchmarks/ingest.py, one core;
the 16-bit codes of the sensor tensor are 19.0 kB/event uncompressed; the ROOT source with
ZLIB level 1, ROOT's default, keeps the same two channels in ~12.5 kB/event, the whole file
~28.7 kB/event):

    profile  inner chunk codec                        bytes/event  compress   decompress
    fast     blosc lz4 clevel 5 + byte shuffle        ~8.7 k       ~800 MB/s  ~3 GB/s
    dense    blosc zstd clevel 5 + byte shuffle       ~6.5 k       ~25 MB/s   ~0.8 GB/s
    gpu      plain zstd level 1 (one zstd frame)      ~7.6 k       ~500 MB/s  ~1.2 GB/s
    none     uncompressed                             19.0 k       -          memcpy

`fast` is the default: cheap to write (ingestion stays reader-bound) and to decode (the
loaders' CPU budget goes to the batch, not to the codec). `dense` trades ~30x slower writing
for 25 % less disk. `gpu` chunks are bare zstd frames (no blosc header, no shuffle) that
batched GPU decompressors (nvCOMP zstd) read directly. Byte shuffle uses the item size.

Each profile maps to (a) the numcodecs codec that the writer and the fast reader call directly
and (b) the zarr v3 codec the array metadata declares, so plain zarr reads the same bytes.

Checksums: every chunk ends in the crc32c of its compressed bytes (4 bytes, little-endian):
zarr v3's `crc32c` codec, last in each array's chain and inside the shard's chain, so every
chunk is checked on every read, by xec's readers and by plain zarr alike (the shard index has
its own crc32c). A damaged chunk is an error naming it, never other numbers. On a `gpu` store a
chunk is the zstd frame followed by those 4 bytes (`ChunkArray.chunk_bytes` returns the frame).
Stores made before checksums (no `crc32c` in the chain) are still read, with a notice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numcodecs
import numpy as np
from numcodecs.abc import Codec

_crc32c: Any
try:  # hardware crc32c that releases the GIL, so the loaders' decode threads check in parallel
    from crc32c import crc32c as _crc32c
except ImportError:  # pragma: no cover - zarr's own dependency: the same numbers, GIL held
    import google_crc32c

    def _crc32c(data: Any) -> int:
        return int(google_crc32c.value(np.frombuffer(data, np.uint8)))


PROFILE_NAMES = ("fast", "dense", "none", "gpu")
DEFAULT_PROFILE = "fast"
CHECKSUM = "crc32c"
CHECKSUM_BYTES = 4


@dataclass(frozen=True)
class CodecProfile:
    """One named profile: the compressor of every chunk of every array in a store."""

    name: str
    kind: str  # "blosc", "zstd" or "none"
    cname: str = ""
    level: int = 0
    description: str = ""

    def numcodec(self, dtype: np.dtype) -> Codec | None:
        """The numcodecs codec of a chunk of `dtype` (None: bytes stored as is)."""
        if self.kind == "blosc":
            return numcodecs.Blosc(self.cname, self.level, numcodecs.Blosc.SHUFFLE)
        if self.kind == "zstd":
            return numcodecs.Zstd(self.level)
        return None

    def zarr_compressors(self, dtype: np.dtype) -> list[Any]:
        """The zarr v3 bytes-to-bytes codecs declaring the same encoding, crc32c last."""
        from zarr.codecs import BloscCodec, Crc32cCodec, ZstdCodec

        checksum = Crc32cCodec()
        if self.kind == "blosc":
            blosc = BloscCodec(
                cname=self.cname,  # type: ignore[arg-type]  # one of blosc's names
                clevel=self.level,
                shuffle="shuffle",
                typesize=np.dtype(dtype).itemsize,
                blocksize=0,
            )
            return [blosc, checksum]
        if self.kind == "zstd":
            return [ZstdCodec(level=self.level, checksum=False), checksum]
        return [checksum]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "codec": self.kind,
            "cname": self.cname,
            "level": self.level,
            "description": self.description,
            "checksum": CHECKSUM,
        }


PROFILES: dict[str, CodecProfile] = {
    "fast": CodecProfile("fast", "blosc", "lz4", 5, "blosc lz4 clevel 5 + byte shuffle"),
    "dense": CodecProfile("dense", "blosc", "zstd", 5, "blosc zstd clevel 5 + byte shuffle"),
    "none": CodecProfile("none", "none", description="uncompressed"),
    "gpu": CodecProfile("gpu", "zstd", "zstd", 1, "plain zstd level 1 frames (nvCOMP-readable)"),
}


def get_profile(name: str) -> CodecProfile:
    """The profile called `name`; ValueError naming the choices otherwise."""
    if name not in PROFILES:
        raise ValueError(f"unknown codec profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[name]


def crc32c(data: Any) -> bytes:
    """The 4 checksum bytes (crc32c, little-endian) of a bytes-like object, as zarr's crc32c
    codec appends them."""
    return int(_crc32c(data)).to_bytes(CHECKSUM_BYTES, "little")


def decoder_from_zarr(codecs: list[dict[str, Any]]) -> tuple[Codec | None, bool]:
    """(numcodecs decoder, chunks end in a crc32c) of an inner chunk codec chain as written
    in zarr.json.

    Accepts exactly the chains this package writes: [bytes(little)] plus optional blosc or
    zstd, plus crc32c last (absent in stores made before checksums). Anything else raises
    ValueError naming the chain.
    """
    names = [c["name"] for c in codecs]
    if names[:1] != ["bytes"] or codecs[0].get("configuration", {}).get("endian") == "big":
        raise ValueError(f"unsupported inner codec chain {names}")
    checksum = names[-1] == CHECKSUM
    rest = codecs[1 : len(codecs) - checksum]
    if not rest:
        return None, checksum
    if len(rest) == 1 and rest[0]["name"] == "blosc":
        cfg = rest[0]["configuration"]
        return numcodecs.Blosc(cfg["cname"], cfg["clevel"], numcodecs.Blosc.SHUFFLE), checksum
    if len(rest) == 1 and rest[0]["name"] == "zstd":
        return numcodecs.Zstd(rest[0]["configuration"]["level"]), checksum
    raise ValueError(f"unsupported inner codec chain {names}")
