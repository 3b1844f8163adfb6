"""Ingestion end to end: round trip, physical units, read paths, metadata, workers, append,
renormalize, inspect, incomplete stores."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from xec_cli.main import main
from xecdata.geometry import N_SENSORS, geometry_id
from xecdata.ingest import IngestError, ingest, renormalize
from xecdata.rootio import sha256_file
from xecdata.schemes import get_scheme
from xecdata.store import IncompleteStoreError, SchemeMismatchError, open_store
from xecdata.store.metadata import validate_metadata
from xecdata.store.precision import npho_tolerance

from .rootfiles import array_bytes, write_uproot
from .storediff import describe_differences

SMALL = {"chunk_events": 32, "shard_chunks": 2, "progress": False}  # units of 64 events
SCHEMES = ["new@1", "legacy@1"]
SIZES = (170, 230, 150)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    written = [
        write_uproot(d / f"f{i}.root", n, seed=10 + i, baskets=3) for i, n in enumerate(SIZES)
    ]
    raw = {k: np.concatenate([w[k] for w in written]) for k in written[0]}
    return d, raw


@pytest.fixture(scope="module")
def store_path(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("store") / "a.xec.zarr"
    ingest([inputs[0]], out, schemes=SCHEMES, workers=1, keep_raw=True, **SMALL)
    return out


@pytest.mark.parametrize("sid", SCHEMES)
def test_round_trip_equals_scheme_of_raw_within_the_steps(store_path, inputs, sid):
    st, raw = open_store(store_path), inputs[1]
    got = st.read_sensors(sid, 0, st.n_events)
    want = get_scheme(sid).normalize(raw["npho"], raw["relative_time"])
    assert got.shape == (sum(SIZES), N_SENSORS, 2) and got.dtype == np.float32
    codes = st.codes(sid)
    for ch, code in enumerate(codes):
        sentinel = np.float32(code.sentinel)
        assert np.array_equal(got[..., ch] == sentinel, want[..., ch] == sentinel)
        assert np.abs(got[..., ch] - want[..., ch]).max() <= code.max_abs_error()
    assert st.precision(sid)["clipped"] == {"npho": 0, "time": 0}


@pytest.mark.parametrize("sid", SCHEMES)
def test_physical_units_against_the_root_source(store_path, inputs, sid):
    st, raw = open_store(store_path), inputs[1]
    npho, time = st.scheme(sid).denormalize(st.read_sensors(sid, 0, st.n_events))
    live = raw["npho"] < 9e9
    assert np.array_equal(np.isnan(npho), ~live)
    ok = live & (raw["npho"] > 0)
    err = np.abs(npho[ok] - raw["npho"][ok])
    assert (err / npho_tolerance(raw["npho"][ok])).max() < 1.0
    tok = ~np.isnan(time)
    assert np.array_equal(tok, live & (raw["npho"] > 0) & (np.abs(raw["relative_time"]) < 9e9))
    dt = time[tok] - raw["relative_time"][tok].astype(np.float64)
    assert np.sqrt(np.mean(dt**2)) < 10e-12 and np.abs(dt).max() < 10.5e-12


def test_read_paths_agree_and_plain_zarr_reads_the_codes(store_path):
    import numcodecs
    import zarr

    st = open_store(store_path)
    full = st.read_sensors("new@1", 0, st.n_events)
    buf = np.full((st.chunk_events, N_SENSORS, 2), np.nan, np.float32)
    for c in range(st.n_chunks):
        n = st.read_chunk_into("new@1", c, buf)
        a = c * st.chunk_events
        assert n == min(st.chunk_events, st.n_events - a)
        assert np.array_equal(buf[:n], full[a : a + n])
    assert n == sum(SIZES) % st.chunk_events  # the last chunk is short
    codes = zarr.open_array(store=str(store_path), path="sensors/new@1", mode="r")[:]
    raw = np.empty((st.chunk_events, N_SENSORS, 2), np.uint16)
    assert st.read_chunk_codes_into("new@1", 3, raw) == st.chunk_events
    assert np.array_equal(raw, codes[96:128])
    decoded = numcodecs.Blosc().decode(st.chunk_bytes("new@1", 3))
    assert np.array_equal(np.frombuffer(decoded, np.uint16).reshape(raw.shape), raw)
    assert np.array_equal(st.luts("new@1")[0][codes[:5, :, 0]], full[:5, :, 0])


def test_truth_ids_and_raw_arrays_are_kept_exactly(store_path, inputs):
    st, raw = open_store(store_path), inputs[1]
    assert st.arrays["energyTruth"] == "truth" and st.arrays["run"] == "ids"
    for name in st.arrays:
        got = st.read_array(name, 0, st.n_events)
        assert got.dtype == raw[name].dtype and np.array_equal(got, raw[name]), name
    assert np.array_equal(st.read_array("uvwTruth", 100, 140), raw["uvwTruth"][100:140])
    npho, time = st.read_raw(160, 180)
    assert np.array_equal(npho, raw["npho"][160:180]) and np.array_equal(
        time, raw["relative_time"][160:180]
    )


def test_metadata_validates_and_records_provenance(store_path, inputs):
    st = open_store(store_path)
    meta = st.metadata
    validate_metadata(meta)
    assert meta["geometry_id"] == geometry_id() == st.geometry_id
    assert meta["codec"]["name"] == "fast" and meta["n_events"] == sum(SIZES)
    assert set(meta["tools"]) >= {"xec", "numpy", "zarr", "numcodecs", "uproot"}
    first = 0
    for src, n, path in zip(meta["sources"], SIZES, sorted(inputs[0].glob("*.root")), strict=True):
        assert src["sha256"] == sha256_file(path) and src["path"] == str(path.resolve())
        assert (src["first_index"], src["entries"], src["entry_stop"]) == (first, n, n)
        first += n
    for sid in SCHEMES:
        assert meta["schemes"][sid]["hash"] == get_scheme(sid).hash
        stats = st.stats(sid)
        assert stats["mean"].shape == (N_SENSORS, 2)
        assert 0 < stats["valid_fraction"][:, 1].mean() < 1
    train, val = st.split("train"), st.split("val")
    assert np.diff(train).sum() + np.diff(val).sum() == st.n_events
    assert meta["split"]["events"]["val"] == np.diff(val).sum() > 0


def test_output_bytes_do_not_depend_on_the_worker_count(store_path, inputs, tmp_path):
    out = tmp_path / "w2.xec.zarr"
    res = ingest([inputs[0]], out, schemes=SCHEMES, workers=2, keep_raw=True, **SMALL)
    assert res.workers == 2 and res.units_run == -(-sum(SIZES) // 64)
    assert array_bytes(out) == array_bytes(store_path), describe_differences(store_path, out)


def test_inspect_reports_the_store(store_path):
    res = CliRunner().invoke(main, ["inspect", str(store_path), "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["complete"] is True and d["n_events"] == sum(SIZES) and d["n_chunks"] == 18
    assert d["splits"]["events"]["train"] + d["splits"]["events"]["val"] == sum(SIZES)
    assert {sid: s["hash"] for sid, s in d["schemes"].items()} == {
        s: get_scheme(s).hash for s in SCHEMES
    }
    assert d["schemes"]["new@1"]["precision"]["time"]["step_s"] == pytest.approx(2e-11)
    arr = d["arrays"]["sensors/new@1"]
    assert (
        arr["dtype"] == "uint16"
        and arr["chunk_events"] == 32
        and 0 < arr["bytes_per_event"] < 19040
    )
    assert len(d["sources"]) == 3 and d["raw_kept"] is True
    text = CliRunner().invoke(main, ["inspect", str(store_path)]).output
    assert "complete   yes" in text and "new@1" in text and "bytes/event" in text


def test_append_equals_one_go_and_refuses_duplicates(store_path, inputs, tmp_path):
    d = inputs[0]
    out = tmp_path / "ap.xec.zarr"
    ingest([d / "f0.root", d / "f1.root"], out, schemes=SCHEMES, workers=1, keep_raw=True, **SMALL)
    res = CliRunner().invoke(
        main,
        ["ingest", str(d / "f2.root"), "-o", str(out), "--append", "--quiet", "--workers", "1"],
    )
    assert res.exit_code == 0, res.output
    assert "now holds 550 events" in res.output
    same = array_bytes(out) == array_bytes(store_path)  # same bytes, statistics and split
    assert same, describe_differences(store_path, out)
    assert [h["action"] for h in open_store(out).metadata["history"]] == ["ingest", "append"]
    with pytest.raises(IngestError, match="same content"):
        ingest([d / "f1.root"], out, append=True, workers=1, progress=False)
    assert open_store(out).n_events == 550  # nothing lost, still complete
    with pytest.raises(IngestError, match="keeps the settings"):
        ingest([d / "f1.root"], out, append=True, codec="dense", progress=False)
    ingest([d / "f1.root"], out, append=True, allow_duplicate=True, workers=1, progress=False)
    assert open_store(out).n_events == 780


def test_renormalize_adds_a_scheme_equal_to_a_direct_ingest(store_path, inputs, tmp_path):
    out = tmp_path / "rn.xec.zarr"
    ingest([inputs[0]], out, schemes=["new@1"], workers=1, keep_raw=True, **SMALL)
    with pytest.raises(SchemeMismatchError, match="xec renormalize"):
        open_store(out).check_scheme("legacy@1")
    res = CliRunner().invoke(
        main, ["renormalize", str(out), "--scheme", "legacy@1", "--quiet", "--workers", "1"]
    )
    assert res.exit_code == 0, res.output
    st = open_store(out)
    assert st.schemes == ("new@1", "legacy@1")
    mine, ref = array_bytes(out), array_bytes(store_path)
    legacy = [k for k in ref if k.startswith(("sensors/legacy@1/", "stats/legacy@1/"))]
    assert legacy and all(mine[k] == ref[k] for k in legacy)
    with pytest.raises(IngestError, match="already holds"):
        renormalize(out, "legacy@1", progress=False)
    bare = tmp_path / "bare.xec.zarr"
    ingest([inputs[0] / "f2.root"], bare, workers=1, **SMALL)
    with pytest.raises(IngestError, match="--keep-raw"):
        renormalize(bare, "legacy@1", progress=False)


def test_unfinished_or_altered_stores_are_refused(store_path, inputs, tmp_path):
    copy = tmp_path / "c.xec.zarr"
    shutil.copytree(store_path, copy)
    (copy / "_xec" / "complete.json").unlink()
    with pytest.raises(IncompleteStoreError, match="Re-run the same `xec ingest`"):
        open_store(copy)
    assert open_store(copy, require_complete=False).complete is False
    shutil.copy(store_path / "_xec" / "complete.json", copy / "_xec" / "complete.json")
    assert open_store(copy).complete
    meta = json.loads((copy / "zarr.json").read_text())
    meta["attributes"]["xec"]["n_events"] += 1  # metadata changed after completion
    (copy / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(IncompleteStoreError):
        open_store(copy)
    with pytest.raises(IngestError, match="already complete"):
        ingest([inputs[0]], store_path, progress=False)


def test_a_scheme_without_16_bit_codes_is_stored_float32_exactly(inputs, tmp_path):
    from xecdata.schemes import Scheme, register_scheme

    lin = register_scheme(
        Scheme("storetest-linear", 1, "linear", 100.0, 1.0, 1e-7, 0.0, -1.0, -1.0, 0.0)
    )
    out = tmp_path / "lin.xec.zarr"
    ingest([inputs[0] / "f2.root"], out, schemes=[lin.id], workers=1, **SMALL)
    st, raw = open_store(out), inputs[1]
    want = lin.normalize(raw["npho"][400:], raw["relative_time"][400:])
    assert st.metadata["schemes"][lin.id]["dtype"] == "float32" and st.luts(lin.id) is None
    assert np.array_equal(st.read_sensors(lin.id, 0, 150), want)
    valid = want[:, 7, 1] != -1.0
    assert st.stats(lin.id)["mean"][7, 1] == pytest.approx(
        want[valid, 7, 1].astype(np.float64).mean()
    )
    assert st.stats(lin.id)["valid_fraction"][7, 1] == pytest.approx(valid.mean())


def test_a_stored_scheme_that_this_installation_defines_otherwise_is_refused(
    store_path, monkeypatch
):
    import dataclasses

    import xecdata.store.reader as reader

    st = open_store(store_path)
    assert st.scheme("new@1").hash == get_scheme("new@1").hash
    other = dataclasses.replace(get_scheme("new@1"), npho_scale2=4.0)
    monkeypatch.setattr(reader, "get_scheme", lambda sid: other)
    with pytest.raises(SchemeMismatchError, match="other parameters under the same id"):
        st.scheme("new@1")
    with pytest.raises(SchemeMismatchError, match="xec renormalize"):
        st.check_scheme("nope@1")


def test_read_rows_gathers_any_order_across_blocks(store_path):
    st = open_store(store_path)
    full = st.read_array("uvwTruth", 0, st.n_events)
    index = np.random.default_rng(0).integers(0, st.n_events, 50)
    index[:3] = [st.n_events - 1, 0, 0]  # the ends, and a repeat
    for block in (7, 1 << 18):
        got = st.read_rows("uvwTruth", index, block=block)
        assert got.dtype == full.dtype and np.array_equal(got, full[index])
    assert st.read_rows("uvwTruth", np.zeros(0, np.int64)).shape == (0, 3)
    with pytest.raises(IndexError, match=r"has events 0\.\."):
        st.read_rows("uvwTruth", np.array([st.n_events]))


def test_byte_differences_are_explained_as_values_or_encoding(store_path, tmp_path):
    """The message of the byte-equality assertions: a changed value is named with its event
    and column, a chunk re-encoded with the same values is reported as encoding only."""
    import numcodecs

    from xecdata.store.chunks import ChunkArray
    from xecdata.store.writer import ArraySpec, ShardWriter

    copy = tmp_path / "c.xec.zarr"
    shutil.copytree(store_path, copy)
    assert describe_differences(store_path, copy).count("\n") == 0  # the title line only
    floats = ChunkArray(copy, "columns/float32")
    values = floats.read(320, 384)
    values[3, 7] += 1.0
    w = ShardWriter(copy, ArraySpec(floats.path, floats.tail, "float32"), 5, 32, 64, floats.codec)
    w.append(values)
    w.close()
    ints = ChunkArray(copy, "columns/int64")
    other = numcodecs.Blosc("zstd", 1, numcodecs.Blosc.SHUFFLE)
    w = ShardWriter(copy, ArraySpec(ints.path, ints.tail, "int64"), 7, 32, 64, other)
    w.append(ints.read(448, 512))
    w.close()
    text = describe_differences(store_path, copy)
    assert "columns/float32/c/5/0" in text and "columns/int64/c/7/0" in text
    assert "chunk 10 (events 320..351)" in text
    assert "VALUES differ in 1 events [323], columns [7]" in text
    assert "chunk 11" not in text  # the shard's other chunk holds the same bytes
    assert text.count("SAME decoded values (only the encoding differs)") == 2  # chunks 14, 15
