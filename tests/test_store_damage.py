"""Stores that detect damage: every chunk carries a crc32c; a damaged chunk is an error naming
the store, array, chunk and events and the command that rebuilds it, on every read path;
`xec inspect --verify` lists damage; `xec repair` rebuilds the very bytes; stores made before
checksums still open, with a notice."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from xec_cli.main import main
from xecdata.ingest import ingest
from xecdata.loaders import open_loader
from xecdata.repair import RepairError, repair
from xecdata.store import StoreError, open_store
from xecdata.store.chunks import ChunkArray
from xecdata.store.format import DamagedStoreError

from .rootfiles import array_bytes, write_uproot

SENSORS, TRUTH = "sensors/new@1", "columns/float32"
CE, SHARD_CHUNKS = 32, 2  # chunks of 32 events, shards (= work units) of 64
CHUNK = 3  # events 96..127, shard 1


def _ingest(src: Path, out: Path, codec: str | None = None) -> Path:
    ingest([src], out, schemes=["new@1"], codec=codec, workers=1, chunk_events=CE,
           shard_chunks=SHARD_CHUNKS, val_fraction=0.25, progress=False)  # fmt: skip
    return out


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for i, n in enumerate((150, 110)):  # the file boundary inside shard 2
        write_uproot(src / f"f{i}.root", n, seed=40 + i, baskets=2)
    return src


@pytest.fixture(scope="module")
def reference(sources: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _ingest(sources, tmp_path_factory.mktemp("ref") / "s.xec.zarr")


def damage(store: Path, array: str, chunk: int, how: str) -> None:
    """Flip one bit ('bit') or invert 256 bytes ('run') in the middle of a chunk's bytes, or
    its first 256 bytes ('head': the codec's header, so that decoding itself fails)."""
    path, offset, nbytes = ChunkArray(store, array).locate(chunk)
    data = bytearray(path.read_bytes())
    if how == "bit":
        data[offset + nbytes // 2] ^= 0x08
    else:
        a = offset + (0 if how == "head" else max(0, nbytes // 2 - 128))
        data[a : a + 256] = bytes(b ^ 0xFF for b in data[a : a + 256])
    path.write_bytes(bytes(data))


def _copy(store: Path, dest: Path) -> Path:
    return Path(shutil.copytree(store, dest))


def _epoch(store: Path, backend: str = "cpu") -> None:
    """One pass over both splits (chunk 3 is a validation block)."""
    for split in ("train", "val"):
        loader = open_loader(store, scheme="new@1", split=split, batch_size=16, backend=backend,
                             seed=1, targets=("energyTruth",), shuffle_window=64)  # fmt: skip
        for _ in loader:
            pass


def _expect_named(err: pytest.ExceptionInfo, store: Path, array: str) -> None:
    text = str(err.value)
    assert f"store {store}" in text and f"chunk {CHUNK} of array {array}" in text
    assert "events 96..127" in text and f"xec repair {store} --units 1" in text


@pytest.mark.parametrize("how", ["bit", "run"])
@pytest.mark.parametrize("array", [SENSORS, TRUTH])
def test_damage_is_reported_by_every_read_path(reference, tmp_path, array, how):
    import zarr

    store = _copy(reference, tmp_path / "d.xec.zarr")
    damage(store, array, CHUNK, how)
    st = open_store(store)
    read = (lambda: st.read_sensors("new@1", 0, st.n_events)) if array == SENSORS else (
        lambda: st.read_array("energyTruth", 0, st.n_events))  # fmt: skip
    with pytest.raises(DamagedStoreError) as err:  # Store API, `xec infer` on stores
        read()
    _expect_named(err, store, array)
    assert "crc32c checksum does not match" in str(err.value)
    for backend in ("cpu", "resident"):  # loaders (training reads through them)
        with pytest.raises(DamagedStoreError) as err:
            _epoch(store, backend)
        _expect_named(err, store, array)
    with pytest.raises(ValueError, match="checksum"):  # plain zarr checks it too
        zarr.open_array(store=str(store), path=array, mode="r")[CHUNK * CE]
    assert np.array_equal(  # the other chunks still read
        st.read_array("energyTruth", 0, 96), open_store(reference).read_array("energyTruth", 0, 96)
    )


def test_uncompressed_store_checks_the_chunks_it_maps(sources, tmp_path):
    store = _ingest(sources, tmp_path / "none.xec.zarr", codec="none")
    damage(store, SENSORS, CHUNK, "bit")
    loader = open_loader(store, scheme="new@1", split="val", batch_size=16, shuffle_window=64)
    assert loader.backend.source.zero_copy  # batches gathered straight from the maps
    with pytest.raises(DamagedStoreError) as err:
        for _ in loader:
            pass
    _expect_named(err, store, SENSORS)


def test_verify_lists_damage_and_the_printed_repair_restores_the_bytes(reference, tmp_path):
    store = _copy(reference, tmp_path / "d.xec.zarr")
    damage(store, SENSORS, CHUNK, "run")
    damage(store, TRUTH, 7, "bit")  # shard 3
    stats = store / "stats" / "new@1" / "c" / "0" / "0" / "0"
    stats.write_bytes(stats.read_bytes()[:-9] + b"\x00" * 9)
    runner = CliRunner()
    res = runner.invoke(main, ["inspect", "--verify", str(store)])
    assert res.exit_code == 1, res.output
    lines = res.output.splitlines()
    damaged = [ln for ln in lines if ln.startswith("DAMAGED")]
    assert len(damaged) == 3, res.output
    assert f"{SENSORS} chunk 3 (events 96..127, shard 1)" in damaged[0]
    assert f"{TRUTH} chunk 7 (events 224..255, shard 3)" in damaged[1]
    assert "stats/new@1" in damaged[2]
    assert any(ln.startswith("shard 1 is filled from") and "f0.root entries 64..127" in ln
               for ln in lines)  # fmt: skip
    command = next(ln for ln in lines if ln.startswith("rebuild")).split(None, 1)[1]
    assert command == f"xec repair {store} --units 1,3"
    res = runner.invoke(main, command.split()[1:])
    assert res.exit_code == 0, res.output
    assert "rebuilt shards [1, 3]" in res.output and "stats/new@1" in res.output
    res = runner.invoke(main, ["inspect", "--verify", str(store)])
    assert res.exit_code == 0 and "no damaged chunk" in res.output, res.output
    assert array_bytes(store) == array_bytes(reference)
    meta = open_store(store).metadata
    assert meta["history"][-1]["action"] == "repair" and open_store(store).complete


def test_repair_refuses_a_source_that_changed(reference, sources, tmp_path):
    src = _copy(sources, tmp_path / "src")
    store = _ingest(src, tmp_path / "s.xec.zarr")
    damage(store, SENSORS, CHUNK, "bit")
    write_uproot(src / "f0.root", 150, seed=99, baskets=2)  # same name, other events
    with pytest.raises(RepairError, match=r"f0\.root.*(changed|sha256)"):
        repair(store, [1])
    with pytest.raises(RepairError, match=r"shards 0\.\.4"):
        repair(reference, [9])


def test_a_store_made_before_checksums_opens_with_a_notice(sources, tmp_path, monkeypatch, capfd):
    from xecdata.store.codecs import CodecProfile

    with_crc = CodecProfile.zarr_compressors
    monkeypatch.setattr(  # the codec chain of stores written before checksums
        CodecProfile, "zarr_compressors", lambda self, dtype: with_crc(self, dtype)[:-1]
    )
    old = _ingest(sources, tmp_path / "old.xec.zarr")
    monkeypatch.undo()
    new = _ingest(sources, tmp_path / "new.xec.zarr")
    assert (old / SENSORS / "c" / "0" / "0" / "0").stat().st_size < (
        new / SENSORS / "c" / "0" / "0" / "0"
    ).stat().st_size  # no 4-byte checksums
    capfd.readouterr()
    st = open_store(old)
    open_store(old)
    notice = capfd.readouterr().err.strip().splitlines()
    assert len(notice) == 1 and "before xec checksummed its chunks" in notice[0]
    assert not st.checksums and open_store(new).checksums
    assert np.array_equal(st.read_sensors("new@1", 0, 260), open_store(new).read_sensors(
        "new@1", 0, 260))  # fmt: skip
    pristine = _copy(old, tmp_path / "pristine.xec.zarr")
    damage(old, SENSORS, CHUNK, "head")  # (a flip inside the data would go unseen here)
    with pytest.raises(DamagedStoreError, match="cannot be decoded") as err:
        _epoch(old)
    _expect_named(err, old, SENSORS)
    res = CliRunner().invoke(main, ["inspect", "--verify", str(old)])
    assert res.exit_code == 1 and "NO checksums" in res.output, res.output
    assert repair(old).units == [1]  # rebuilt in the store's own chain (no checksums)
    assert array_bytes(old) == array_bytes(pristine)


def test_missing_shard_and_damaged_split_name_the_fix(reference, tmp_path):
    store = _copy(reference, tmp_path / "d.xec.zarr")
    ChunkArray(store, SENSORS).locate(CHUNK)[0].unlink()
    with pytest.raises(DamagedStoreError, match=r"shard file .* is missing.*--units 1"):
        open_store(store).read_sensors("new@1", 96, 100)
    val = store / "splits" / "val" / "c" / "0" / "0"
    val.write_bytes(b"\x01" + val.read_bytes()[1:])
    with pytest.raises(StoreError, match=r"splits/val is damaged.*xec repair"):
        open_store(store).split("val")
    assert repair(store).units == [1]
    assert array_bytes(store) == array_bytes(reference)
