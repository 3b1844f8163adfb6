"""The xec tensor store (Zarr v3): format, precision policy, codecs, writer and reader.

Layout: `format`; precision policy (16-bit codes, steps from physics tolerances): `precision`;
codec profiles: `codecs`. Stores are written by `xecdata.ingest` (`xec ingest`,
`xec renormalize`) and read with the API below, which the loaders build on and which stays
stable:

    open_store(path, *, require_complete=True) -> Store
        IncompleteStoreError (names the store, says to re-run the same `xec ingest` to resume)
        for a store that was not finished; StoreError for no store / another format version.

    Store.path, .metadata (dict), .complete, .geometry_id
    Store.n_events, .chunk_events (events per chunk on the event axis), .n_chunks
    Store.schemes                      scheme ids held, e.g. ("new@1",)
    Store.scheme(id) -> Scheme         the stored definition; SchemeMismatchError when this
                                       installation registers that id with another hash
    Store.check_scheme(id | Scheme)    SchemeMismatchError naming the store, the schemes it has
                                       and `xec renormalize` as the fix
    Store.read_sensors(id, start, stop, out=None) -> float32 (n, 4760, 2)
    Store.read_chunk_into(id, chunk, out) -> int
        the hot path: decodes one whole chunk into a preallocated float32
        (chunk_events, 4760, 2) buffer (a prefix for the last chunk) and returns its event
        count; reads the chunk bytes with pread, decodes with numcodecs (GIL released) and
        the lookup table in cache-sized blocks with per-thread scratch: no per-call
        allocation beyond the codec's own.
    Store.read_chunk_codes_into(id, chunk, out) -> int   the stored uint16 codes as they are
    Store.codes(id) -> (npho, time) ChannelCode | None;  Store.luts(id) -> (2, 65536) float32
    Store.chunk_bytes(id, chunk) -> bytes  encoded chunk (gpu profile: one plain zstd frame)
    Store.arrays -> {name: kind}           per-event branches kept (kinds truth, reco, ids)
    Store.read_array(name, start, stop)    (n, *shape) in the branch's source dtype
    Store.read_raw(start, stop)            raw float32 (npho, time), stores made --keep-raw
    Store.split("train" | "val") -> (k, 2) int64 [start, stop) event ranges
    Store.stats(id) -> {mean, std, valid_fraction}: (4760, 2) each; Store.precision(id)
    raw_codes_reader(store, id) -> CodesReader (codes + their CodeDecoder, xecdata.store.decoder)
"""

from xecdata.store.format import (
    FORMAT_VERSION,
    IncompleteStoreError,
    SchemeMismatchError,
    StoreError,
)
from xecdata.store.reader import CodesReader, Store, open_store, raw_codes_reader

__all__ = [
    "FORMAT_VERSION",
    "CodesReader",
    "IncompleteStoreError",
    "SchemeMismatchError",
    "Store",
    "StoreError",
    "open_store",
    "raw_codes_reader",
]
