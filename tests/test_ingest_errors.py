"""Bad inputs: every case gets a clear error naming file / tree / branch / entry and the fix;
--skip-bad records and goes on; nothing already written is lost."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from xec_cli.main import main
from xecdata.ingest import IngestError, ingest
from xecdata.store import open_store

from .rootfiles import array_bytes, fake_events, write_uproot

OPTS = {"workers": 1, "chunk_events": 16, "shard_chunks": 2, "progress": False}


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "good.root"
    write_uproot(path, 40, seed=1)
    return path


def _fail(inputs, out, match, **kw):
    with pytest.raises(IngestError, match=match) as info:
        ingest(inputs, out, **(OPTS | kw))
    return str(info.value)


def test_not_a_root_file_and_truncated_file(good, tmp_path):
    junk = tmp_path / "junk.root"
    junk.write_text("not ROOT at all")
    msg = _fail([junk], tmp_path / "s1", "not a ROOT file")
    assert str(junk) in msg and "--skip-bad" in msg
    cut = tmp_path / "cut.root"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    msg = _fail([cut], tmp_path / "s2", "truncated")
    assert str(cut) in msg and "Copy the file again" in msg


def test_missing_tree_and_missing_branches(good, tmp_path):
    msg = _fail([good], tmp_path / "s1", "no TTree named 'events'", tree="events")
    assert "trees here: tree" in msg and "--tree" in msg
    msg = _fail([good], tmp_path / "s2", "no branch 'nphoX'", npho_branch="nphoX")
    assert "--npho-branch" in msg and "branch 'nphoX'" in msg
    no_time = tmp_path / "no_time.root"
    write_uproot(no_time, 10, drop=("relative_time",))
    assert "--time-branch" in _fail([no_time], tmp_path / "s3", "no branch 'relative_time'")


def test_wrong_array_lengths_name_the_branch_and_entry(tmp_path):
    ev = fake_events(6, seed=2)
    short = tmp_path / "short.root"
    write_uproot(short, 0, events=ev | {"npho": ev["npho"][:, :4000]})
    assert "float[4000]" in _fail([short], tmp_path / "s1", "expected float\\[4760\\]")
    jag = tmp_path / "jagged.root"
    rows = list(ev["npho"])
    rows[4] = rows[4][:-1]
    write_uproot(jag, 0, events=ev | {"npho": rows}, jagged=True, baskets=2)
    msg = _fail([jag], tmp_path / "s2", "array length 4759, expected 4760")
    assert "branch 'npho'" in msg and "entry 4" in msg and str(jag) in msg


def test_nan_truth_names_branch_and_entry_but_1e10_is_kept(tmp_path):
    ev = fake_events(12, seed=3)
    energy = ev["energyTruth"].copy()
    energy[7] = np.nan
    bad = tmp_path / "nan.root"
    write_uproot(bad, 0, events=ev | {"energyTruth": energy})
    msg = _fail([bad], tmp_path / "s1", "NaN or Inf")
    assert "branch 'energyTruth'" in msg and "entry 7" in msg
    marked = tmp_path / "marked.root"
    uvw = ev["uvwTruth"].copy()
    uvw[3] = 1e10
    write_uproot(marked, 0, events=ev | {"uvwTruth": uvw})
    ingest([marked], tmp_path / "ok.xec.zarr", **OPTS)
    assert open_store(tmp_path / "ok.xec.zarr").read_array("uvwTruth", 3, 4)[0, 0] == np.float32(
        1e10
    )


def test_empty_tree_unknown_scheme_and_mixed_branch_sets(good, tmp_path):
    empty = tmp_path / "empty.root"
    write_uproot(empty, 0, events={k: v[:0] for k, v in fake_events(1).items()})
    assert "Remove it" in _fail([empty], tmp_path / "s1", "the tree has no entries")
    assert "known:" in _fail(
        [good], tmp_path / "s2", "unknown normalization scheme", schemes=["nope@3"]
    )
    other = tmp_path / "other.root"
    write_uproot(other, 10, drop=("emiVec", "nGamma"))
    msg = _fail([good, other], tmp_path / "s3", "differ from the other inputs")
    assert "missing ['emiVec', 'nGamma']" in msg


def test_skip_bad_records_every_skipped_file_and_goes_on(good, tmp_path):
    junk = tmp_path / "a_junk.root"
    junk.write_bytes(b"root" + b"\0" * 100)
    empty = tmp_path / "b_empty.root"
    write_uproot(empty, 0, events={k: v[:0] for k, v in fake_events(1).items()})
    out = tmp_path / "s.xec.zarr"
    res = CliRunner().invoke(
        main,
        [
            "ingest",
            str(junk),
            str(empty),
            str(good),
            "-o",
            str(out),
            "--skip-bad",
            "--quiet",
            "--workers",
            "1",
        ],
    )
    assert res.exit_code == 0, res.output
    st = open_store(out)
    assert st.n_events == 40 and [s["path"] for s in st.metadata["sources"]] == [str(good)]
    skipped = {s["path"]: s["reason"] for s in st.metadata["skipped"]}
    assert set(skipped) == {str(junk), str(empty)}
    assert "no entries" in skipped[str(empty)] and "no TTree at all" in skipped[str(junk)]
    assert "skipped:" in res.output


def test_a_failed_append_loses_nothing(good, tmp_path):
    out = tmp_path / "s.xec.zarr"
    ingest([good], out, **OPTS)
    before = array_bytes(out)
    bad = tmp_path / "bad.root"
    write_uproot(bad, 5, drop=("relative_time",))
    res = CliRunner().invoke(main, ["ingest", str(bad), "-o", str(out), "--append", "--quiet"])
    assert res.exit_code == 1 and "Error:" in res.output and "relative_time" in res.output
    assert open_store(out).complete and array_bytes(out) == before


def test_relative_npho_fallback_is_noted(tmp_path):
    ev = fake_events(8, seed=5)
    old = tmp_path / "old.root"
    write_uproot(old, 0, events={("relative_npho" if k == "npho" else k): v for k, v in ev.items()})
    res = ingest([old], tmp_path / "s.xec.zarr", **OPTS)
    assert res.notes == ["no 'npho' branch: read 'relative_npho' instead"]
    assert (
        open_store(tmp_path / "s.xec.zarr").metadata["sources"][0]["npho_branch"] == "relative_npho"
    )


def test_an_append_failing_in_its_units_is_rolled_back(good, tmp_path, monkeypatch):
    import xecdata.store.units as units
    from xecdata.rootio import InputError

    out = tmp_path / "s.xec.zarr"
    ingest([good], out, **OPTS)
    before = open_store(out).read_sensors("new@1", 0, 40)
    other = tmp_path / "other.root"
    write_uproot(other, 30, seed=9)
    real = units.read_block

    def damaged(tree, info, start, stop):
        if info.path == str(other):
            raise InputError(info.path, "basket 3 cannot be decompressed", "Copy it again")
        return real(tree, info, start, stop)

    monkeypatch.setattr(units, "read_block", damaged)
    msg = _fail([other], out, "rolled back to its previous 40 events", append=True)
    assert "basket 3" in msg
    st = open_store(out)
    assert st.complete and st.n_events == 40
    assert np.array_equal(st.read_sensors("new@1", 0, 40), before)
    monkeypatch.setattr(units, "read_block", real)
    ingest([other], out, append=True, **{k: v for k, v in OPTS.items() if "chunk" not in k})
    assert open_store(out).n_events == 70


def test_failed_first_attempt_leaves_the_output_free_for_the_fixed_command(good, tmp_path):
    """An ingestion refused in the pre-pass wrote nothing: the corrected command may use the
    same -o (the earlier attempt's lock file alone does not make it 'not an xec store')."""
    out = tmp_path / "s.xec.zarr"
    _fail([good], out, "no TTree named 'events'", tree="events")
    assert not out.exists()  # the refused attempt created the folder: it is gone again
    killed = tmp_path / "killed.xec.zarr"  # as left by a kill -9 during the pre-pass
    (killed / "_xec").mkdir(parents=True)
    (killed / "_xec" / "lock").touch()
    for path in (out, killed):
        ingest([good], path, **OPTS)
        assert open_store(path).n_events == 40
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    _fail([good], other, "exists and is not an xec store")
    assert (other / "notes.txt").read_text() == "mine"
