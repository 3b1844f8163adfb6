"""Store building blocks: precision policy, encoder, statistics, shards, split rule, decoding."""

from __future__ import annotations

import numpy as np
import pytest

from xecdata.geometry import N_SENSORS
from xecdata.schemes import Scheme, get_scheme
from xecdata.store.chunks import ChunkArray, lut_decode
from xecdata.store.codecs import PROFILES, get_profile
from xecdata.store.encode import CodeStats, SchemeEncoder, finish_stats, merge_stats
from xecdata.store.metadata import split_ranges
from xecdata.store.precision import (
    MAX_CODE,
    NPHO_MAX,
    ChannelCode,
    npho_tolerance,
    precision_summary,
    scheme_codes,
)
from xecdata.store.writer import ArraySpec, ShardWriter, create_array

from .rootfiles import fake_events

BUILTINS = ("legacy@1", "new@1")


@pytest.fixture(scope="module")
def events():
    return fake_events(40, seed=3)


def _decode(stored: np.ndarray, codes: tuple[ChannelCode, ChannelCode]) -> np.ndarray:
    luts = np.stack([c.lut() for c in codes])
    out = np.empty(stored.shape, np.float32)
    lut_decode(stored, luts, out)
    return out


@pytest.mark.parametrize("sid", BUILTINS)
def test_npho_codes_meet_the_tolerance_over_the_whole_range(sid):
    scheme = get_scheme(sid)
    npho, _ = scheme_codes(scheme)
    assert npho.encoding == "uint16"
    x = np.concatenate([np.linspace(0, 5, 5001), np.geomspace(5, NPHO_MAX, 20001)])
    y = scheme.transform.forward(x, scheme.npho_scale, scheme.npho_scale2).astype(np.float32)
    codes = np.empty(y.shape, np.uint16)
    assert npho.encode(y, codes, np.empty_like(y)) == 0
    back = scheme.transform.inverse(npho.lut()[codes], scheme.npho_scale, scheme.npho_scale2)
    ratio = np.abs(back - x) / npho_tolerance(x)
    assert ratio.max() < 1.0
    assert np.abs(npho.lut()[codes] - y).max() <= npho.max_abs_error()
    # relative 1e-3 where counts are large, a tenth of the Poisson noise where they are not
    big = x > 1e4
    assert (np.abs(back - x)[big] / x[big]).max() < 1e-3
    small = (x > 1) & (x < 1e4)
    assert (np.abs(back - x)[small] / np.sqrt(x[small])).max() < 0.1


@pytest.mark.parametrize("sid", BUILTINS)
def test_time_step_is_20_ps_with_rms_under_10_ps(sid):
    scheme = get_scheme(sid)
    _, time = scheme_codes(scheme)
    rng = np.random.default_rng(0)
    t = rng.uniform(-5e-7, 5e-7, 200_000)  # seconds
    y = (t / scheme.time_scale - scheme.time_shift).astype(np.float32)
    codes = np.empty(y.shape, np.uint16)
    time.encode(y, codes, np.empty_like(y))
    back = (time.lut()[codes].astype(np.float64) + scheme.time_shift) * scheme.time_scale
    err = back - t
    assert np.sqrt(np.mean(err**2)) < 6.5e-12
    assert np.abs(err).max() < 10.5e-12
    summary = precision_summary(scheme, scheme_codes(scheme))["time"]
    assert summary["step_s"] == pytest.approx(20e-12)
    assert summary["rms_error_s"] < 10e-12
    assert summary["range_s"][0] < -6.5e-7 and summary["range_s"][1] > 6.5e-7


@pytest.mark.parametrize("sid", BUILTINS)
def test_lut_is_the_float32_decode_rule_and_only_code_0_is_the_sentinel(sid):
    for code in scheme_codes(get_scheme(sid)):
        lut = code.lut()
        c = np.arange(1, MAX_CODE + 1, dtype=np.float32)
        rule = c * np.float32(code.step) + np.float32(code.offset - code.step)
        moved = rule == np.float32(code.sentinel)
        assert np.array_equal(lut[1:][~moved], rule[~moved])
        assert lut[0] == np.float32(code.sentinel)
        assert np.count_nonzero(lut == np.float32(code.sentinel)) == 1


def test_linear_scheme_cannot_meet_the_tolerance_in_16_bits_and_is_stored_float32():
    s = Scheme("lin", 1, "linear", 1.0, 1.0, 1e-7, 0.0, -1.0, -1.0, 0.0)
    npho, time = scheme_codes(s)
    assert npho.encoding == "float32" and time.encoding == "uint16"
    enc = SchemeEncoder(s, (npho, time))
    assert enc.dtype == np.float32
    ev = fake_events(3, seed=1)
    out = np.empty((3, N_SENSORS, 2), np.float32)
    enc.encode(ev["npho"], ev["relative_time"], out)
    assert np.array_equal(out, s.normalize(ev["npho"], ev["relative_time"]))


@pytest.mark.parametrize("sid", BUILTINS)
def test_encoder_round_trip_and_exact_sentinels(events, sid):
    scheme = get_scheme(sid)
    codes = scheme_codes(scheme)
    x = scheme.normalize(events["npho"], events["relative_time"])
    enc = SchemeEncoder(scheme, codes)
    stored = enc.encode(events["npho"], events["relative_time"], np.empty(x.shape, np.uint16))
    back = _decode(stored, codes)
    for ch, code in enumerate(codes):
        sent = x[..., ch] == np.float32(code.sentinel)
        assert sent.any()
        assert np.array_equal(back[..., ch] == np.float32(code.sentinel), sent)
        assert np.abs(back[..., ch] - x[..., ch]).max() <= code.max_abs_error()
    # the fused fast path and the reference quantizer agree code for code
    for ch, code in enumerate(codes):
        ref = np.empty(x.shape[:-1], np.uint16)
        code.encode(np.ascontiguousarray(x[..., ch]), ref, np.empty(x.shape[:-1], np.float32))
        assert np.array_equal(ref, stored[..., ch])
    assert enc.clipped.tolist() == [0, 0]


def test_out_of_range_values_are_clipped_and_counted():
    scheme = get_scheme("new@1")
    enc = SchemeEncoder(scheme, scheme_codes(scheme))
    npho = np.full((2, N_SENSORS), 10.0, np.float32)
    time = np.full((2, N_SENSORS), 2e-8, np.float32)
    time[0, :5] = 2e-6  # beyond +655 ns
    npho[1, :3] = -900.0  # below the npho code range (-717 photons), inside log1p's domain
    npho[1, 3] = 1e10  # dead: a sentinel, not clipped
    stored = enc.encode(npho, time, np.empty((2, N_SENSORS, 2), np.uint16))
    assert enc.clipped.tolist() == [3, 5]
    assert stored[0, :5, 1].tolist() == [MAX_CODE] * 5
    assert stored[1, :3, 0].tolist() == [1] * 3 and stored[1, 3, 0] == 0


def test_statistics_are_exact_whatever_the_grouping(events):
    scheme = get_scheme("new@1")
    codes = scheme_codes(scheme)
    whole = SchemeEncoder(scheme, codes)
    stored = whole.encode(
        events["npho"], events["relative_time"], np.empty((40, N_SENSORS, 2), np.uint16)
    )
    parts = []
    for a, b in ((0, 7), (7, 33), (33, 40)):
        st = CodeStats(np.uint16)
        st.add(stored[a:b], (scheme.npho_sentinel, scheme.time_sentinel))
        parts.append(st.to_arrays())
    one, split = merge_stats([whole.stats.to_arrays()]), merge_stats(parts)
    for key in ("count", "s1", "s2"):
        assert np.array_equal(one[key], split[key])
    stats = finish_stats(one, codes)  # (3, 4760, 2)
    back = _decode(stored, codes)
    valid = back[..., 0] != scheme.npho_sentinel
    s = 100  # a sensor with light in every event
    assert valid[:, s].all()
    # statistics of the exact code values; the float32 decode rule differs by < 1e-7
    assert stats[0, s, 0] == pytest.approx(back[:, s, 0].astype(np.float64).mean(), abs=1e-7)
    assert stats[1, s, 0] == pytest.approx(back[:, s, 0].astype(np.float64).std(), abs=1e-7)
    tvalid = back[..., 1] != scheme.time_sentinel
    assert np.allclose(stats[2, :, 1], tvalid.mean(axis=0))


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_shards_are_zarr_v3_readable_and_read_back_by_chunk(tmp_path, profile):
    import zarr

    zarr.create_group(store=str(tmp_path), zarr_format=3)
    spec = ArraySpec("sensors/x@1", (N_SENSORS, 2), "uint16")
    n, ce, se = 300, 32, 128
    create_array(tmp_path, spec, n, ce, se, get_profile(profile))
    data = np.random.default_rng(1).integers(0, 2000, (n, N_SENSORS, 2)).astype(np.uint16)
    for shard in range(-(-n // se)):
        w = ShardWriter(tmp_path, spec, shard, ce, se, get_profile(profile).numcodec(data.dtype))
        part = data[shard * se : (shard + 1) * se]
        w.append(part[:50])
        w.append(part[50:])
        w.close()
    assert np.array_equal(zarr.open_array(store=str(tmp_path), path=spec.path)[:], data)
    arr = ChunkArray(tmp_path, spec.path)
    assert arr.n_chunks == 10 and arr.chunk_len(9) == 300 - 9 * 32
    buf = np.empty((ce, N_SENSORS, 2), np.uint16)
    assert arr.read_chunk(9, buf) == 12
    assert np.array_equal(buf[:12], data[288:])
    assert np.array_equal(arr.read(100, 171), data[100:171])
    assert not list(tmp_path.rglob("*.tmp-*"))


def test_split_rule_fraction_contiguity_and_stability_under_growth():
    r = split_ranges(10_000, 100, 0.1)
    val = np.diff(r["val"], axis=1).sum()
    assert val == 1000 and np.diff(r["train"], axis=1).sum() == 9000
    assert (r["val"][:, 0] % 100 == 0).all()  # chunk-aligned ranges
    grown = split_ranges(15_000, 100, 0.1)
    inside = grown["val"][grown["val"][:, 1] <= 10_000]
    assert np.array_equal(inside, r["val"])  # appending never moves existing events
    assert split_ranges(1000, 100, 0.0)["val"].shape == (0, 2)
    with pytest.raises(ValueError, match="val-fraction"):
        split_ranges(1000, 100, 1.0)
