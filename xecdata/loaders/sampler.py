"""The one sampler every loader backend follows: which events, in which order, on which rank.

An epoch is planned from whole chunks, never from per-event random reads:

1. The split's events are laid over the store's chunks (`SplitLayout`); a split need not be
   chunk-aligned, so a chunk may hold only some split events (the rest are masked out).
2. The chunks are permuted with a generator seeded by (seed, epoch); every rank draws the same
   permutation. Concatenating each chunk's split events in that order gives the epoch stream.
3. The stream is cut into `world_size` contiguous, equally long pieces, one per rank, so every
   rank gets the same number of batches and the pieces are disjoint. With `drop_last=True` the
   piece is floor(N / world_size) events and the tail that does not fill a batch is dropped;
   with `drop_last=False` the piece is ceil(N / world_size) events and the stream wraps around
   (a few events of the epoch's start repeat, at most world_size - 1 of them). With
   `drop_last=False, even_batches=False` nothing repeats: rank r gets stream positions
   [r * N // world_size, (r + 1) * N // world_size), so every event is yielded exactly once
   over the ranks and the batch counts of the ranks may differ by one (validation: no
   collective runs per batch there, and no event may count twice).
4. A rank's piece is a list of segments (chunk, slice of its split events). Consecutive
   segments form shuffle windows of at least `window` events (window >= batch size); the
   events of each window are permuted with a generator seeded by (seed, epoch, world_size,
   rank, window index). Batches are consecutive slices of the windowed stream, so a batch
   touches at most two windows: a backend needs at most those decoded chunks at a time.

Everything here is a pure function of (layout, seed, epoch, rank, world_size, batch_size,
drop_last, shuffle, window): backends decode in parallel but assemble in this order, so they
all yield the same events in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class SplitLayout:
    """The events of one split as sorted, disjoint [start, stop) ranges over a chunked store."""

    ranges: np.ndarray  # (R, 2) int64
    chunk_events: int
    n_events: int

    @classmethod
    def from_split(cls, split: object, chunk_events: int, n_events: int) -> SplitLayout:
        """Accept (R, 2) ranges, a list of (start, stop) pairs, a `range` or a 1-D index array."""
        if isinstance(split, range):
            if split.step != 1:
                raise ValueError("split: a range split must have step 1")
            ranges = np.array([[split.start, split.stop]], dtype=np.int64)
        else:
            arr = np.asarray(split, dtype=np.int64)
            ranges = arr.reshape(-1, 2) if arr.ndim == 2 else _indices_to_ranges(arr)
        ranges = ranges[ranges[:, 1] > ranges[:, 0]]
        ranges = ranges[np.argsort(ranges[:, 0], kind="stable")]
        if len(ranges) and (ranges[0, 0] < 0 or ranges[-1, 1] > n_events):
            raise ValueError(f"split: event ranges exceed the store's {n_events} events")
        if np.any(ranges[1:, 0] < ranges[:-1, 1]):
            raise ValueError("split: event ranges overlap")
        return cls(ranges, int(chunk_events), int(n_events))

    @property
    def n_split(self) -> int:
        return int((self.ranges[:, 1] - self.ranges[:, 0]).sum())

    @cached_property
    def _chunk_table(self) -> tuple[np.ndarray, np.ndarray]:
        ce = self.chunk_events
        parts_c, parts_n = [], []
        for a, b in self.ranges:
            c = np.arange(a // ce, (b - 1) // ce + 1, dtype=np.int64)
            parts_c.append(c)
            parts_n.append(np.minimum(b, (c + 1) * ce) - np.maximum(a, c * ce))
        if not parts_c:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        chunks, inverse = np.unique(np.concatenate(parts_c), return_inverse=True)
        counts = np.bincount(inverse, weights=np.concatenate(parts_n)).astype(np.int64)
        return chunks, counts

    @property
    def chunk_ids(self) -> np.ndarray:
        """(C,) int64 ids of the chunks holding split events, ascending."""
        return self._chunk_table[0]

    @property
    def chunk_counts(self) -> np.ndarray:
        """(C,) int64 number of split events in each of those chunks."""
        return self._chunk_table[1]

    def local_indices(self, chunk: int) -> np.ndarray:
        """Sorted int64 offsets, inside `chunk`, of the split events it holds."""
        ce = self.chunk_events
        lo, hi = chunk * ce, (chunk + 1) * ce
        sel = self.ranges[(self.ranges[:, 0] < hi) & (self.ranges[:, 1] > lo)]
        parts = [np.arange(max(a, lo), min(b, hi), dtype=np.int64) - lo for a, b in sel]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def n_partial_chunks(self) -> int:
        """Chunks holding fewer split events than a full chunk (split edges, the store's tail)."""
        return int(np.sum(self.chunk_counts < self.chunk_events))


def _indices_to_ranges(idx: np.ndarray) -> np.ndarray:
    """Sorted unique 1-D event indices -> (R, 2) runs of consecutive indices."""
    idx = np.unique(idx)
    if idx.size == 0:
        return np.zeros((0, 2), np.int64)
    breaks = np.flatnonzero(np.diff(idx) != 1) + 1
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [idx.size]])
    return np.stack([idx[starts], idx[stops - 1] + 1], axis=1).astype(np.int64)


@dataclass(frozen=True)
class SamplerConfig:
    """The knobs that, with the layout, fix an epoch's order."""

    batch_size: int
    seed: int = 0
    shuffle: bool = True
    drop_last: bool = True
    rank: int = 0
    world_size: int = 1
    window: int = 0  # events per shuffle window; raised to at least batch_size
    even_batches: bool = True  # drop_last=False: pad so every rank runs the same batches

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} must lie in [0, world_size={self.world_size})")

    @property
    def window_events(self) -> int:
        return max(self.window, self.batch_size)


def n_batches(n_split: int, cfg: SamplerConfig) -> int:
    """Batches of rank cfg.rank per epoch: the same in every epoch, and on every rank unless
    drop_last=False, even_batches=False (then they may differ by one)."""
    if cfg.drop_last:
        return (n_split // cfg.world_size) // cfg.batch_size
    if not cfg.even_batches:
        start, stop = _exact_piece(n_split, cfg)
        return _ceil_div(stop - start, cfg.batch_size)
    return _ceil_div(_ceil_div(n_split, cfg.world_size), cfg.batch_size)


def _exact_piece(n: int, cfg: SamplerConfig) -> tuple[int, int]:
    """Rank cfg.rank's stream positions when nothing repeats (balanced, contiguous)."""
    return cfg.rank * n // cfg.world_size, (cfg.rank + 1) * n // cfg.world_size


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class EpochPlan:
    """One rank's epoch: segments, shuffle windows and batches (see the module docstring)."""

    layout: SplitLayout
    cfg: SamplerConfig
    epoch: int
    seg_chunk: np.ndarray  # (S,) chunk id of each segment
    seg_lo: np.ndarray  # (S,) first position in the chunk's split-event list
    seg_hi: np.ndarray  # (S,) end position
    group_seg: np.ndarray  # (G + 1,) first segment of each window, then S
    group_pos: np.ndarray  # (G + 1,) first stream position of each window, then n_events
    n_batches: int
    _cache: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    @property
    def n_events(self) -> int:
        """Events this rank yields this epoch."""
        return int(self.group_pos[-1])

    @property
    def n_segments(self) -> int:
        return len(self.seg_chunk)

    def window_events(self, g: int) -> tuple[np.ndarray, np.ndarray]:
        """Window g in yield order: (segment index (n,) int64, offset inside its chunk (n,))."""
        hit = self._cache.get(g)
        if hit is not None:
            return hit
        s0, s1 = int(self.group_seg[g]), int(self.group_seg[g + 1])
        locs, segs = [], []
        for s in range(s0, s1):
            local = self.layout.local_indices(int(self.seg_chunk[s]))
            locs.append(local[self.seg_lo[s] : self.seg_hi[s]])
            segs.append(np.full(len(locs[-1]), s, dtype=np.int64))
        seg, loc = np.concatenate(segs), np.concatenate(locs)
        if self.cfg.shuffle:
            c = self.cfg
            rng = np.random.default_rng([c.seed, self.epoch, c.world_size, c.rank, g, 1])
            order = rng.permutation(len(seg))
            seg, loc = seg[order], loc[order]
        if len(self._cache) > 4:  # only the windows around the current batch are asked for
            self._cache.clear()
        self._cache[g] = (seg, loc)
        return seg, loc

    def batch_bounds(self, j: int) -> tuple[int, int]:
        """Stream positions [start, stop) of batch j."""
        b = self.cfg.batch_size
        return j * b, min((j + 1) * b, self.n_events)

    def batch_windows(self, j: int) -> tuple[int, int]:
        """Windows [g0, g1] (inclusive) that batch j draws from."""
        a, b = self.batch_bounds(j)
        g0 = int(np.searchsorted(self.group_pos, a, side="right")) - 1
        g1 = int(np.searchsorted(self.group_pos, b - 1, side="right")) - 1
        return g0, g1

    def batch_segments(self, j: int) -> tuple[int, int]:
        """Segments [s0, s1) that must be decoded to assemble batch j."""
        g0, g1 = self.batch_windows(j)
        return int(self.group_seg[g0]), int(self.group_seg[g1 + 1])

    def batch(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch j: (segment index (B,) int64, offset inside that segment's chunk (B,) int64)."""
        a, b = self.batch_bounds(j)
        g0, g1 = self.batch_windows(j)
        segs, locs = [], []
        for g in range(g0, g1 + 1):
            seg, loc = self.window_events(g)
            lo = max(a, int(self.group_pos[g])) - int(self.group_pos[g])
            hi = min(b, int(self.group_pos[g + 1])) - int(self.group_pos[g])
            segs.append(seg[lo:hi])
            locs.append(loc[lo:hi])
        return np.concatenate(segs), np.concatenate(locs)

    def global_index(self, seg: np.ndarray, local: np.ndarray) -> np.ndarray:
        """Store event indices of (segment, offset) pairs."""
        return self.seg_chunk[seg] * self.layout.chunk_events + local

    def live_segments(self) -> int:
        """Most segments any one batch needs decoded at once (ring slots to hold them)."""
        if self.n_batches == 0:
            return 0
        return max(s1 - s0 for s0, s1 in map(self.batch_segments, range(self.n_batches)))


def plan_epoch(layout: SplitLayout, cfg: SamplerConfig, epoch: int) -> EpochPlan:
    """Plan rank `cfg.rank`'s share of epoch `epoch` (pure: same inputs, same plan)."""
    n = layout.n_split
    nb = n_batches(n, cfg)
    if nb == 0:
        raise ValueError(
            f"split of {n} events gives no batch of {cfg.batch_size} on each of "
            f"{cfg.world_size} rank(s); lower batch_size or set drop_last=False"
        )
    chunks, counts = layout.chunk_ids, layout.chunk_counts
    if cfg.shuffle:
        order = np.random.default_rng([cfg.seed, epoch, 0]).permutation(len(chunks))
        chunks, counts = chunks[order], counts[order]
    if not cfg.drop_last and not cfg.even_batches:
        start, stop = _exact_piece(n, cfg)
    else:
        per_rank = n // cfg.world_size if cfg.drop_last else _ceil_div(n, cfg.world_size)
        start = cfg.rank * per_rank
        stop = start + (nb * cfg.batch_size if cfg.drop_last else per_rank)
    cut = _cut_stream(chunks, counts, start, min(stop, n))
    if stop > n:  # drop_last=False with padding: wrap to the start of the epoch's stream
        wrap = _cut_stream(chunks, counts, 0, stop - n)
        cut = tuple(np.concatenate(p) for p in zip(cut, wrap, strict=True))  # type: ignore[assignment]
    seg_chunk, seg_lo, seg_hi = cut
    group_seg, group_pos = _windows(seg_hi - seg_lo, cfg.window_events)
    return EpochPlan(layout, cfg, epoch, seg_chunk, seg_lo, seg_hi, group_seg, group_pos, nb)


def _cut_stream(
    chunks: np.ndarray, counts: np.ndarray, start: int, stop: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Segments (chunk, lo, hi) covering stream positions [start, stop) of the chunk stream."""
    ends = np.cumsum(counts)
    begins = ends - counts
    keep = (ends > start) & (begins < stop)
    lo = np.maximum(start - begins[keep], 0)
    hi = np.minimum(stop - begins[keep], counts[keep])
    return chunks[keep], lo, hi


def _windows(seg_sizes: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Group consecutive segments into windows of >= `window` events (a short tail merges)."""
    starts, acc = [0], 0
    for s, size in enumerate(seg_sizes):
        acc += int(size)
        if acc >= window and s + 1 < len(seg_sizes):
            starts.append(s + 1)
            acc = 0
    if len(starts) > 1 and acc < window:  # the last window came out short: merge it
        starts.pop()
    group_seg = np.array([*starts, len(seg_sizes)], dtype=np.int64)
    pos = np.concatenate([[0], np.cumsum(seg_sizes)]).astype(np.int64)
    return group_seg, pos[group_seg]
