"""`xec display` and the event readers behind it (xecdata.events)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from tests.rootfiles import write_uproot
from xec_cli.main import main
from xecdata.events import root_events, store_events
from xecdata.schemes import DEAD_ABOVE


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    root = tmp_path_factory.mktemp("display")
    data = write_uproot(root / "sim" / "a.root", 30, seed=4)
    for name, raw in (("raw", ["--keep-raw"]), ("codes", [])):
        store = str(root / f"{name}.xec.zarr")
        out = _run("ingest", str(root / "sim"), "-o", store, "--quiet", "--workers", "1",
                   "--val-fraction", "0.2", "--chunk-events", "8", *raw)  # fmt: skip
        assert out.exit_code == 0, out.output
    return root, data


def test_events_in_physical_units_from_every_source(files: tuple[Path, dict]) -> None:
    root, data = files
    npho, time = data["npho"][[5, 17]], data["relative_time"][[5, 17]]
    dead = npho > DEAD_ABOVE
    assert dead.any()
    ev = root_events(root / "sim" / "a.root", [5], ids=[(1004, 17)])
    assert list(ev.entries) == [5, 17] and list(ev.columns["event"]) == [5, 17]
    assert np.array_equal(np.isnan(ev.npho), dead)
    assert np.array_equal(ev.npho[~dead], npho[~dead].astype(np.float64))
    assert np.array_equal(np.isnan(ev.time), ~(np.abs(time) <= DEAD_ABOVE))
    assert np.allclose(ev.columns["energyTruth"], data["energyTruth"][[5, 17]])

    raw = store_events(root / "raw.xec.zarr", [5, 17])
    assert raw.how == "raw arrays"
    assert np.array_equal(raw.npho, ev.npho, equal_nan=True)
    assert np.array_equal(raw.time, ev.time, equal_nan=True)
    assert np.array_equal(raw.columns["uvwTruth"], ev.columns["uvwTruth"])
    from xec_cli.display_cmd import _title

    title = _title(raw.source, 5, {k: v[0] for k, v in raw.columns.items()}, raw.kinds, raw.how)
    assert title.startswith("raw.xec.zarr  entry 5  run 1004 event 5  (raw arrays)\ntruth: ")
    assert f"E = {1000 * data['energyTruth'][5]:.2f} MeV" in title and "xyzVTX = (" in title

    inv = store_events(root / "codes.xec.zarr", ids=[(1004, 5), (1004, 17)])
    assert inv.how == "scheme new@1, inverted" and list(inv.entries) == [5, 17]
    assert np.array_equal(np.isnan(inv.npho), dead)
    lit = ~dead & (npho > 50)
    rel = np.abs(inv.npho[lit] - npho[lit]) / npho[lit]
    assert 0 < rel.max() < 0.02  # 16-bit codes: close, not exact
    valid = ~np.isnan(ev.time) & lit
    assert np.abs(inv.time[valid] - ev.time[valid]).max() < 2e-11  # better than 20 ps


def test_display_writes_one_pdf_per_event_and_explains_mistakes(
    files: tuple[Path, dict], tmp_path: Path
) -> None:
    root, _ = files
    out = _run("display", str(root / "sim" / "a.root"), "-e", "2", "--id", "1004:9",
               "-o", str(tmp_path))  # fmt: skip
    assert out.exit_code == 0, out.output
    pdfs = sorted(p.name for p in tmp_path.glob("*.pdf"))
    assert pdfs == ["event_1004_9.pdf", "event_2.pdf"]
    assert all((tmp_path / p).read_bytes().startswith(b"%PDF") for p in pdfs)
    out = _run("display", str(root / "raw.xec.zarr"), "-e", "29", "-o", str(tmp_path))
    assert out.exit_code == 0 and (tmp_path / "event_29.pdf").is_file()

    store = str(root / "raw.xec.zarr")
    cases = [
        (("-e", "30"), "has events 0..29; entry 30 is out of range"),
        (("--id", "1004:99"), "run:event 1004:99 not found"),
        (("--id", "17"), "write RUN:EVENT"),
        ((), "name events with --entry N or --id RUN:EVENT"),
        (("-e", "1", "--scheme", "legacy@1"), "has no tensor for scheme 'legacy@1'"),
    ]
    for args, message in cases:
        out = _run("display", store, *args, "-o", str(tmp_path))
        assert out.exit_code != 0 and message in out.output, (args, out.output)
