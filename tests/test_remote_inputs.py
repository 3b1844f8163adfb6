"""Inputs given as URLs: `xec ingest`, `xec infer` and `xec reco` read http:// files served by a
local HTTP server (started here) as they read local files: the same checks, the same store
bytes, provenance with the URL and the content hash, resume, and clear errors naming the URL."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import uproot
from click.testing import CliRunner

from tests.httpserve import serve
from tests.rootfiles import array_bytes, write_uproot
from xec_cli.main import main
from xecdata.ingest import IngestError, ingest
from xecdata.reco.inputs import iter_batches
from xecdata.rootio import sha256_file
from xecdata.schemes import get_scheme
from xecdata.store import open_store
from xecdata.store import runner as store_runner
from xectrain.serving.infer import input_batches

OPTIONS = dict(workers=1, chunk_events=16, shard_chunks=2, progress=False)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """(folder of two ROOT files, base URL serving it, the store ingested from the files)."""
    root = tmp_path_factory.mktemp("remote")
    src = root / "www"
    src.mkdir()
    write_uproot(src / "a.root", 50, seed=4, baskets=3)
    write_uproot(src / "b.root", 30, seed=5, jagged=True, baskets=2)
    ingest([src / "a.root", src / "b.root"], root / "local.xec.zarr", **OPTIONS)  # type: ignore[arg-type]
    with serve(src) as base:
        yield src, base, root / "local.xec.zarr"


def test_ingest_from_urls_equals_local_with_url_provenance(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src, base, local = served
    urls = [f"{base}/a.root", f"{base}/b.root"]
    res = ingest(urls, tmp_path / "u.xec.zarr", **OPTIONS)  # type: ignore[arg-type]
    assert res.complete and res.n_events == 80
    assert array_bytes(tmp_path / "u.xec.zarr") == array_bytes(local)
    sources = open_store(tmp_path / "u.xec.zarr").metadata["sources"]
    assert [s["path"] for s in sources] == urls
    for s, name in zip(sources, ("a.root", "b.root"), strict=True):
        assert s["sha256"] == sha256_file(src / name)
        assert s["size"] == (src / name).stat().st_size
    local_fp = [s["fingerprint"] for s in open_store(local).metadata["sources"]]
    assert [s["fingerprint"] for s in sources] == local_fp


def test_interrupted_url_ingest_resumes_and_refuses_a_changed_file(
    served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    src, _, local = served
    (tmp_path / "www").mkdir()
    for name in ("a.root", "b.root"):
        (tmp_path / "www" / name).write_bytes((src / name).read_bytes())
    real = store_runner.run_unit
    calls = []

    def stop_after_one(*args):  # type: ignore[no-untyped-def]
        if calls:
            raise KeyboardInterrupt  # as Ctrl-C: the store stays resumable
        calls.append(args[-1])
        return real(*args)

    with serve(tmp_path / "www") as mine:
        urls = [f"{mine}/a.root", f"{mine}/b.root"]
        out = tmp_path / "r.xec.zarr"
        monkeypatch.setattr(store_runner, "run_unit", stop_after_one)
        with pytest.raises(KeyboardInterrupt):
            ingest(urls, out, **OPTIONS)  # type: ignore[arg-type]
        monkeypatch.setattr(store_runner, "run_unit", real)
        res = ingest(urls, out, **OPTIONS)  # type: ignore[arg-type]
        assert res.complete and res.units_resumed == 1
        assert array_bytes(out) == array_bytes(local)

        calls.clear()
        monkeypatch.setattr(store_runner, "run_unit", stop_after_one)
        with pytest.raises(KeyboardInterrupt):
            ingest(urls, tmp_path / "c.xec.zarr", **OPTIONS)  # type: ignore[arg-type]
        monkeypatch.setattr(store_runner, "run_unit", real)
        write_uproot(tmp_path / "www" / "b.root", 30, seed=6, jagged=True, baskets=2)
        with pytest.raises(IngestError, match=r"b\.root changed since the interrupted run"):
            ingest(urls, tmp_path / "c.xec.zarr", **OPTIONS)  # type: ignore[arg-type]


def test_missing_and_unreachable_urls_are_named(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, base, _ = served
    for url, says in ((f"{base}/nope.root", "not found (HTTP 404)"),
                      ("http://127.0.0.1:9/x.root", "cannot be reached")):  # fmt: skip
        out = CliRunner().invoke(main, ["ingest", url, "-o", str(tmp_path / "x.xec.zarr"),
                                        "--workers", "1", "--quiet"])  # fmt: skip
        assert out.exit_code != 0 and out.output.startswith(f"Error: {url}"), out.output
        assert says in out.output and "Check the URL" in out.output
        assert not (tmp_path / "x.xec.zarr").exists()
    out = CliRunner().invoke(main, ["reco", "run", f"{base}/nope.root", "-o",
                                    str(tmp_path / "r.root")])  # fmt: skip
    assert out.exit_code != 0 and f"{base}/nope.root" in out.output and "404" in out.output


def test_infer_and_reco_read_urls_as_files(served) -> None:  # type: ignore[no-untyped-def]
    src, base, _ = served
    scheme = get_scheme("new@1")
    for name in ("a.root", "b.root"):
        remote = list(input_batches(f"{base}/{name}", scheme, 16))
        here = list(input_batches(src / name, scheme, 16))
        assert len(remote) == len(here) >= 2
        for (x, cols, first), (x0, cols0, first0) in zip(remote, here, strict=True):
            assert first == first0 and np.array_equal(x, x0)
            assert cols.keys() == cols0.keys() and np.array_equal(cols["event"], cols0["event"])
        got = list(iter_batches(f"{base}/{name}", 32))
        want = list(iter_batches(src / name, 32))
        assert [b.source for b in got] == [f"{base}/{name}"] * len(want)
        for b, b0 in zip(got, want, strict=True):
            assert np.array_equal(b.npho, b0.npho) and np.array_equal(b.time, b0.time)


def test_reco_run_on_a_url_writes_what_the_local_file_gives(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src, base, _ = served
    for name, given in (("url", f"{base}/a.root"), ("local", str(src / "a.root"))):
        out = CliRunner().invoke(main, ["reco", "run", given, "-o", str(tmp_path / f"{name}.root"),
                                        "-q", "--json"])  # fmt: skip
        assert out.exit_code == 0, out.output
        assert json.loads(out.output)["inputs"] == [given if name == "url" else str(src / "a.root")]
    with uproot.open(tmp_path / "url.root") as f, uproot.open(tmp_path / "local.root") as g:
        got, want = f["reco"].arrays(library="np"), g["reco"].arrays(library="np")
        assert str(f["metadata"]["inputs"].array(library="np")[0]) == f"{base}/a.root"
    assert got.keys() == want.keys() and len(got["energyReco"]) == 50
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


@pytest.mark.slow  # exports an ONNX model
def test_infer_on_a_url_writes_what_the_local_file_gives(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from xecmodel import TaskSpec, create_model, export_onnx

    src, base, _ = served
    net = create_model("regressor", "tiny", scheme=get_scheme("new@1"),
                       tasks=[TaskSpec("energy", transform="identity")])  # fmt: skip
    model = export_onnx(net.eval(), tmp_path / "m.onnx", exporter="torchscript")
    for name, given in (("url", f"{base}/b.root"), ("local", str(src / "b.root"))):
        args = ["infer", str(model), given, "-o", str(tmp_path / f"{name}.root")]
        out = CliRunner().invoke(main, [*args, "--batch-size", "8"])
        assert out.exit_code == 0, out.output
    with uproot.open(tmp_path / "url.root") as f, uproot.open(tmp_path / "local.root") as g:
        got, want = f["predictions"].arrays(library="np"), g["predictions"].arrays(library="np")
        assert str(f["metadata"]["inputs"].array(library="np")[0]) == f"{base}/b.root"
    assert got.keys() == want.keys() and len(got["pred_energy"]) == 30
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
