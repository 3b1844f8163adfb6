"""ROOT input: branch layouts, compressions, basket-aligned reading, files written by ROOT."""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest

from xecdata.geometry import N_SENSORS
from xecdata.ingest import ingest
from xecdata.rootio import inspect_file, open_tree, read_block, read_steps
from xecdata.schemes import get_scheme
from xecdata.store import open_store

from .conftest import REPO
from .rootfiles import fake_events, have_root, write_uproot

OPTS = {"workers": 1, "chunk_events": 16, "shard_chunks": 2, "progress": False}
ROOT_CASES = [
    (algo, vector) for algo in ("ZLIB", "LZMA", "LZ4", "ZSTD") for vector in (False, True)
]
ROOT_EVENTS = 20


def test_read_steps_cut_at_basket_boundaries():
    assert read_steps((0, 10, 20, 30, 40, 50), 0, 50, 25) == [(0, 20), (20, 40), (40, 50)]
    assert read_steps((0, 100), 0, 100, 30) == [(0, 30), (30, 60), (60, 90), (90, 100)]
    assert read_steps((0, 10, 20, 30), 5, 27, 12) == [(5, 10), (10, 20), (20, 27)]
    steps = read_steps(tuple(range(0, 1001, 7)), 13, 997, 64)
    assert steps[0][0] == 13 and steps[-1][1] == 997
    assert all(b - a <= 64 for a, b in steps)
    assert all(a == b for (_, a), (b, _) in itertools.pairwise(steps))
    assert all(a % 7 == 0 for a, _ in steps[1:])


def test_inspect_reports_layout_columns_and_dtypes(tmp_path):
    path = tmp_path / "j.root"
    write_uproot(path, 9, jagged=True, baskets=2)
    info = inspect_file(path, "tree", None, "relative_time")
    assert info.entries == 9 and info.jagged == (True, True)
    cols = {c.name: (c.kind, c.dtype, c.shape) for c in info.columns}
    assert cols["emiAng"] == ("truth", "float32", (2,))
    assert cols["run"] == ("ids", "int32", ()) and cols["nGamma"] == ("truth", "int32", ())
    npho, time, columns = read_block(open_tree(path, "tree"), info, 2, 7)
    ev = fake_events(9, seed=0)
    assert npho.shape == (5, N_SENSORS) and npho.dtype == np.float32
    assert np.array_equal(npho, ev["npho"][2:7]) and np.array_equal(time, ev["relative_time"][2:7])
    assert np.array_equal(columns["event"], ev["event"][2:7])


def test_jagged_fixed_and_every_uproot_compression_give_the_same_store(tmp_path):
    import uproot

    ev = fake_events(45, seed=4)
    layouts = {
        "fixed_zlib": {"compression": uproot.ZLIB(4)},
        "jagged": {"jagged": True},
        "lzma": {"compression": uproot.LZMA(1)},
        "lz4": {"compression": uproot.LZ4(1)},
        "zstd": {"compression": uproot.ZSTD(3)},
        "one_basket": {"baskets": 1},
    }
    codes = {}
    for name, kw in layouts.items():
        write_uproot(tmp_path / f"{name}.root", 0, events=ev, **kw)
        ingest([tmp_path / f"{name}.root"], tmp_path / f"{name}.xec.zarr", **OPTS)
        st = open_store(tmp_path / f"{name}.xec.zarr")
        codes[name] = st.sensor_array("new@1").read(0, 45)
    for name in layouts:
        assert np.array_equal(codes[name], codes["fixed_zlib"]), name


def _write_root_files(folder) -> None:
    """Write the ROOT_CASES files with real ROOT in a subprocess (keeps PyROOT out of pytest)."""
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path\n"
        "from tests.rootfiles import write_root\n"
        f"for i, (algo, vec) in enumerate({ROOT_CASES!r}):\n"
        f"    write_root(Path(sys.argv[2]) / f'{{i}}_{{algo}}_{{vec}}.root', {ROOT_EVENTS}, seed=i,"
        " algorithm=algo, vector=vec)\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(REPO), str(folder)], check=True, capture_output=True
    )


@pytest.mark.root
@pytest.mark.skipif(not have_root(), reason="real ROOT (pip install root) is not installed")
def test_files_written_by_root_with_every_compression_and_layout(tmp_path):
    _write_root_files(tmp_path)
    out = tmp_path / "root.xec.zarr"
    ingest([tmp_path], out, **OPTS)
    st = open_store(out)
    scheme = get_scheme("new@1")
    code_npho, code_time = st.codes("new@1")
    for src, (algo, vector) in zip(st.metadata["sources"], ROOT_CASES, strict=True):
        i = ROOT_CASES.index((algo, vector))
        assert src["path"].endswith(f"{i}_{algo}_{vector}.root")
        assert inspect_file(src["path"], "tree", None, "relative_time").jagged == (vector, vector)
        ev = fake_events(ROOT_EVENTS, seed=i)
        a = src["first_index"]
        got = st.read_sensors("new@1", a, a + ROOT_EVENTS)
        want = scheme.normalize(ev["npho"], ev["relative_time"])
        assert np.abs(got[..., 0] - want[..., 0]).max() <= code_npho.max_abs_error()
        assert np.abs(got[..., 1] - want[..., 1]).max() <= code_time.max_abs_error()
        assert np.array_equal(st.read_array("xyzTruth", a, a + ROOT_EVENTS), ev["xyzTruth"])
        assert np.array_equal(st.read_array("event", a, a + ROOT_EVENTS), ev["event"])
