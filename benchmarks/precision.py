"""Precision and compression measurements behind the store's storage choices.

For each built-in scheme, on events of the toy simulator, compares candidate encodings of the
normalized (N, 4760, 2) tensor: float32, fp16, fp16 npho + 16-bit time codes, 16-bit codes for
both channels (the store's choice, xecdata.store.precision), numcodecs FixedScaleOffset and
BitRound. Columns: worst npho error over the tolerance max(0.1 sqrt(max(n,1)), 1e-3 n), time
error RMS / max in ps, whether sentinels survive bit-exactly, bytes/event under
blosc-zstd(1)+shuffle. A second table compares codecs and layouts (channel-interleaved
(N,4760,2) vs channel-separated (N,2,4760)) on the chosen codes: bytes/event, compress and
decompress MB/s (one thread).

    python benchmarks/precision.py [--events 2000] [--json benchmarks/results/precision.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numcodecs
import numpy as np

from xecdata.schemes import get_scheme
from xecdata.store.encode import SchemeEncoder
from xecdata.store.precision import npho_tolerance, scheme_codes

REPO = Path(__file__).resolve().parents[1]

CHUNK = 256  # events per chunk, as in the store


def load_events(n: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Raw npho and time (n, 4760) float32 of n events of the toy simulator."""
    import tempfile

    import uproot

    from xecdata.sim import simulate

    with tempfile.TemporaryDirectory() as tmp:
        (path,) = simulate(n, Path(tmp), seed=1, events_per_file=n)
        arrays = uproot.open(path)["tree"].arrays(["npho", "relative_time"], library="np")
    return arrays["npho"], arrays["relative_time"], "xecdata.sim (seed 1)"


def errors(scheme, x, raw_npho, raw_time, back) -> dict[str, float | bool]:
    """Error figures of a decoded tensor `back` against the exact normalized `x`."""
    sent_n, sent_t = np.float32(scheme.npho_sentinel), np.float32(scheme.time_sentinel)
    is_sn, is_st = x[..., 0] == sent_n, x[..., 1] == sent_t
    exact = bool(
        np.all(back[..., 0][is_sn] == sent_n)
        and np.all(back[..., 1][is_st] == sent_t)
        and not np.any(back[..., 0][~is_sn] == sent_n)
        and not np.any(back[..., 1][~is_st] == sent_t)
    )
    vn = ~is_sn & (back[..., 0] != sent_n)
    n_true, _ = scheme.denormalize(x)
    n_back, _ = scheme.denormalize(np.where(vn[..., None], back, x))
    ratio = np.abs(n_back[vn] - n_true[vn]) / npho_tolerance(n_true[vn])
    vt = ~is_st & (back[..., 1] != sent_t)
    dt = (back[..., 1][vt].astype(np.float64) - x[..., 1][vt]) * scheme.time_scale
    return {
        "npho_worst_err_over_tol": float(ratio.max()),
        "npho_frac_over_tol": float((ratio > 1).mean()),
        "time_rms_ps": float(np.sqrt(np.mean(dt**2)) * 1e12),
        "time_max_ps": float(np.abs(dt).max() * 1e12),
        "sentinels_exact": exact,
    }


def nbytes_per_event(arr: np.ndarray, codec) -> float:
    """Compressed bytes per event, chunk by chunk."""
    total = sum(
        len(codec.encode(np.ascontiguousarray(arr[i : i + CHUNK])))
        for i in range(0, len(arr), CHUNK)
    )
    return total / len(arr)


def candidates(scheme, x):
    """name -> (decoded float32 tensor, stored array for size measurement)."""
    cn, ct = scheme_codes(scheme)
    codes = np.empty(x.shape, np.uint16)
    work = np.empty(x.shape[:-1], np.float32)
    tmp = np.empty(x.shape[:-1], np.uint16)
    for ch, code in enumerate((cn, ct)):
        code.encode(np.ascontiguousarray(x[..., ch]), tmp, work)
        codes[..., ch] = tmp
    lut_back = np.stack([cn.lut()[codes[..., 0]], ct.lut()[codes[..., 1]]], -1)
    half = x.astype(np.float16)
    mixed = np.stack([half[..., 0].astype(np.float32), lut_back[..., 1]], -1)
    out = {
        "float32": (x, x),
        "fp16 both": (half.astype(np.float32), half),
        "fp16 npho + u16 time code": (
            mixed,
            np.stack([half[..., 0].view(np.uint16), codes[..., 1]], -1),
        ),
        "u16 LUT codes both (chosen)": (lut_back, codes),
    }
    fso = [numcodecs.FixedScaleOffset(c.offset, 1 / c.step, "<f4", "<u2") for c in (cn, ct)]
    enc = [fso[ch].encode(np.ascontiguousarray(x[..., ch])).reshape(x.shape[:-1]) for ch in (0, 1)]
    back = np.stack([fso[ch].decode(enc[ch]).reshape(x.shape[:-1]) for ch in (0, 1)], -1)
    out["numcodecs FixedScaleOffset u16 (same steps)"] = (
        back.astype(np.float32),
        np.stack(enc, -1),
    )
    for bits in (10, 12, 14):
        br = numcodecs.BitRound(keepbits=bits)
        rounded = br.encode(x.copy()).view(np.float32).reshape(x.shape)
        out[f"float32 BitRound keepbits={bits}"] = (rounded, rounded)
    return out


def precision_table(x_by_scheme, raw_npho, raw_time) -> list[dict]:
    size_codec = numcodecs.Blosc("zstd", 1, numcodecs.Blosc.SHUFFLE)
    rows = []
    for sid, x in x_by_scheme.items():
        scheme = get_scheme(sid)
        for name, (back, stored) in candidates(scheme, x).items():
            row = {"scheme": sid, "encoding": name}
            row |= errors(scheme, x, raw_npho, raw_time, back)
            row["bytes_per_event"] = nbytes_per_event(stored, size_codec)
            rows.append(row)
    return rows


def speed(codec, arr: np.ndarray) -> tuple[float, float, float]:
    """(bytes/event, compress MB/s, decompress MB/s) of uncompressed bytes, chunk by chunk."""
    chunks = [np.ascontiguousarray(arr[i : i + CHUNK]) for i in range(0, len(arr), CHUNK)]
    t0 = time.perf_counter()
    enc = [codec.encode(c) for c in chunks]
    t1 = time.perf_counter()
    for e, c in zip(enc, chunks, strict=True):
        codec.decode(e, out=np.empty_like(c))
    t2 = time.perf_counter()
    mb = arr.nbytes / 1e6
    return sum(map(len, enc)) / len(arr), mb / (t1 - t0), mb / (t2 - t1)


def codec_table(codes: np.ndarray) -> list[dict]:
    """Codecs x layouts on the chosen uint16 codes (N, 4760, 2)."""
    layouts = {
        "interleaved (N,4760,2)": codes,
        "separated (N,2,4760)": codes.transpose(0, 2, 1).copy(),
    }
    bl = numcodecs.Blosc
    codecs = {
        "lz4": numcodecs.LZ4(1),
        "zstd-1": numcodecs.Zstd(1),
        "zstd-3": numcodecs.Zstd(3),
        "shuffle+lz4": [numcodecs.Shuffle(2), numcodecs.LZ4(1)],
        "shuffle+zstd-1": [numcodecs.Shuffle(2), numcodecs.Zstd(1)],
        "blosc-lz4-shuffle": bl("lz4", 5, bl.SHUFFLE),
        "blosc-zstd-1-shuffle": bl("zstd", 1, bl.SHUFFLE),
        "blosc-zstd-3-shuffle": bl("zstd", 3, bl.SHUFFLE),
        "blosc-zstd-9-shuffle": bl("zstd", 9, bl.SHUFFLE),
        "blosc-zstd-9-bitshuffle": bl("zstd", 9, bl.BITSHUFFLE),
        "delta+blosc-zstd-9-shuffle": [numcodecs.Delta("<u2"), bl("zstd", 9, bl.SHUFFLE)],
        "zstd-19": numcodecs.Zstd(19),
    }
    rows = []
    for lname, arr in layouts.items():
        for cname, codec in codecs.items():
            chain = _Chain(codec if isinstance(codec, list) else [codec])
            bpe, c_mbs, d_mbs = speed(chain, arr)
            rows.append(
                {
                    "layout": lname,
                    "codec": cname,
                    "bytes_per_event": bpe,
                    "compress_MBps": c_mbs,
                    "decompress_MBps": d_mbs,
                }
            )
    return rows


class _Chain:
    """A list of numcodecs codecs applied in order (decoded in reverse)."""

    def __init__(self, codecs):
        self.codecs = codecs

    def encode(self, arr):
        buf = arr
        for c in self.codecs:
            buf = c.encode(buf)
        return bytes(buf)

    def decode(self, buf, out=None):
        for c in reversed(self.codecs[1:]):
            buf = c.decode(buf)
        buf = self.codecs[0].decode(buf, out=out)
        return buf


def markdown(rows: list[dict], columns: dict[str, str]) -> str:
    """A markdown table of `rows`: columns maps a row key to a format spec."""
    head = "| " + " | ".join(k.replace("_", " ") for k in columns) + " |"
    lines = [head, "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(format(r[k], f) for k, f in columns.items()) + " |")
    return "\n".join(lines)


PRECISION_COLUMNS = {
    "scheme": "",
    "encoding": "",
    "npho_worst_err_over_tol": ".3g",
    "npho_frac_over_tol": ".2g",
    "time_rms_ps": ".3g",
    "time_max_ps": ".3g",
    "sentinels_exact": "",
    "bytes_per_event": ".0f",
}
CODEC_COLUMNS = {
    "layout": "",
    "codec": "",
    "bytes_per_event": ".0f",
    "compress_MBps": ".0f",
    "decompress_MBps": ".0f",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "precision.json")
    args = ap.parse_args()
    numcodecs.blosc.set_nthreads(1)
    raw_npho, raw_time, source = load_events(args.events)
    x_by = {sid: get_scheme(sid).normalize(raw_npho, raw_time) for sid in ("legacy@1", "new@1")}
    prec = precision_table(x_by, raw_npho, raw_time)
    scheme = get_scheme("new@1")
    codes = SchemeEncoder(scheme, scheme_codes(scheme)).encode(
        raw_npho, raw_time, np.empty(x_by["new@1"].shape, np.uint16)
    )
    codecs = codec_table(codes)
    print(f"# precision ({args.events} events from {source})")
    print(markdown(prec, PRECISION_COLUMNS))
    print("\n# codecs on the chosen codes (new@1)")
    print(markdown(codecs, CODEC_COLUMNS))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    result = {"events": args.events, "source": source, "precision": prec, "codecs": codecs}
    args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
