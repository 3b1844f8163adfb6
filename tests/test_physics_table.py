"""The ML-vs-conventional table: both sides against the truth on the same events, the MEG
fiducial split, bins of energy and depth, the markdown, the PDF, and the benchmark's settings."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import uproot

from xecdata.markers import INVALID
from xecdata.robust import half_width_68
from xectrain.analysis.physics import compare, markdown_report, residual_arrays
from xectrain.analysis.physics_bench import PROFILES, get_profile, training_overrides
from xectrain.analysis.physics_pdf import write_pdf
from xectrain.config import load_config

N = 4000


def _events(flat: bool, seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(predictions, columns): truth, a conventional reco with 2 % energy / 3 mm / 50 ps
    smearing, and ML predictions with 1 % / 6 mm / 30 ps; 100 failed conventional energies."""
    rng = np.random.default_rng(seed)
    e = rng.uniform(0.015, 0.060, N) if flat else np.full(N, 0.0528)
    uvw = np.stack([rng.uniform(-30, 30, N), rng.uniform(-80, 80, N), rng.uniform(0, 15, N)], 1)
    t = rng.normal(0.0, 1.0, N)
    ang = np.stack([rng.uniform(70, 110, N), rng.uniform(150, 210, N)], 1)
    cols = {"energyTruth": e, "uvwTruth": uvw, "timeTruth": t, "emiAng": ang,
            "energyReco": e * (1 + 0.02 * rng.normal(size=N)),
            "uvwRecoFI": uvw + 0.3 * rng.normal(size=(N, 3)),
            "timeReco": t + 0.050 * rng.normal(size=N),
            "emiAngReco": ang + 0.5 * rng.normal(size=(N, 2))}  # fmt: skip
    cols["energyReco"][:100] = INVALID
    preds = {"energy": e * (1.003 + 0.01 * rng.normal(size=N)),
             "uvwFI": uvw + 0.6 * rng.normal(size=(N, 3)),
             "timing": t + 0.030 * rng.normal(size=N),
             "angle": ang + 0.2 * rng.normal(size=(N, 2))}  # fmt: skip
    return preds, cols


def _deep_fiducial(cols: dict[str, np.ndarray]) -> np.ndarray:
    uvw = cols["uvwTruth"]
    return (np.abs(uvw[:, 0]) < 23.9) & (np.abs(uvw[:, 1]) < 67.9) & (uvw[:, 2] > 2)


def test_both_sides_are_measured_on_the_same_events_against_truth() -> None:
    preds, cols = _events(flat=False)
    report = compare(preds, cols)
    deep = _deep_fiducial(cols)
    entry = report["depth split"]["w>2"]
    assert entry["events"] == int(deep.sum())
    ok = deep & (cols["energyReco"] < 1e9)
    ml_res = 100 * (preds["energy"] / cols["energyTruth"] - 1)
    conv_res = 100 * (cols["energyReco"] / cols["energyTruth"] - 1)
    ml, conv = entry["ml"]["dE/E"], entry["conventional"]["dE/E"]
    assert ml["sigma68"] == pytest.approx(half_width_68(ml_res[ok]))
    assert conv["sigma68"] == pytest.approx(half_width_68(conv_res[ok]))
    assert ml["bias"] == pytest.approx(np.median(ml_res[ok]))
    # the events the conventional energy lost are left out of the ML side as well
    assert ml["left_out"] == conv["left_out"] == int((deep & ~ok).sum()) > 0
    assert report["conventional_failed"]["energyReco"] == 100
    # the smearing put in: 1 % vs 2 %, 6 mm vs 3 mm, 30 ps vs 50 ps
    assert ml["sigma68"] == pytest.approx(1.0, rel=0.1)
    assert conv["sigma68"] == pytest.approx(2.0, rel=0.1)
    assert entry["ml"]["u"]["sigma68"] == pytest.approx(6.0, rel=0.1)
    assert entry["conventional"]["u"]["sigma68"] == pytest.approx(3.0, rel=0.1)
    assert entry["ml"]["t"]["sigma68"] == pytest.approx(30.0, rel=0.1)
    assert entry["conventional"]["theta"]["unit"] == "mrad"
    assert entry["conventional"]["theta"]["sigma68"] == pytest.approx(
        np.radians(0.5) * 1000, rel=0.1
    )


def test_bins_of_energy_only_for_a_spectrum_and_depth_bins_cover_the_fiducial_volume() -> None:
    line = compare(*_events(flat=False))
    flat = compare(*_events(flat=True))
    assert "energy bins" not in line and "energy bins" in flat
    assert list(flat["energy bins"]) == [
        "15-25 MeV", "25-35 MeV", "35-45 MeV", "45-55 MeV", "55-60 MeV",
    ]  # fmt: skip
    assert sum(b["events"] for b in flat["energy bins"].values()) == flat["fiducial"]
    assert sum(b["events"] for b in line["depth bins"].values()) == line["fiducial"]
    deepest = line["depth bins"]["20-42 cm"]  # w uniform in 0-15 cm: no event there
    assert deepest == {"events": 0, "ml": {}, "conventional": {}}
    low = flat["energy bins"]["15-25 MeV"]
    assert low["ml"]["dE/E"]["sigma68"] == pytest.approx(1.0, rel=0.2)


def test_a_file_without_conventional_branches_is_refused() -> None:
    preds, cols = _events(flat=False)
    truth = {k: v for k, v in cols.items() if "Reco" not in k}
    with pytest.raises(ValueError, match="xec simulate --reco"):
        compare(preds, truth)


def test_markdown_table() -> None:
    preds, cols = _events(flat=True)
    sets = {"15-60 MeV": compare(preds, cols)}
    text = markdown_report(sets, "test")
    entry = sets["15-60 MeV"]["depth split"]["w>2"]
    ml, cv = entry["ml"]["u"], entry["conventional"]["u"]
    row = next(line for line in text.splitlines() if line.startswith("| u [mm]"))
    assert f"{ml['sigma68']:.3g} ({ml['bias']:+.2g})" in row
    assert f"{ml['sigma68'] / cv['sigma68']:.2f}" in row
    assert "### 15-60 MeV, energy bins (fiducial)" in text
    assert "Conventional reconstruction failed (left out of both): energyReco 100" in text


def test_pdf_pages(tmp_path: Path) -> None:
    preds, cols = _events(flat=True)
    sets = {"15-60 MeV": compare(preds, cols)}
    res = {"15-60 MeV": residual_arrays(preds, cols, _deep_fiducial(cols))}
    assert res["15-60 MeV"]["units"]["t"] == "ps"
    pdf = write_pdf(sets, res, tmp_path / "physics.pdf")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    # pages: the table, the residuals, sigma68 and bias in energy bins and in depth bins
    assert len(re.findall(rb"/Type\s*/Page[^s]", data)) == 1 + 1 + 4


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_benchmark_training_settings_are_a_valid_config(name: str, tmp_path: Path) -> None:
    sets = training_overrides(get_profile(name), tmp_path / "store", tmp_path / "runs")
    cfg = load_config("regressor", None, sets)
    assert cfg.enabled_tasks == ["angle", "energy", "timing", "uvwFI"]
    assert cfg.tasks["energy"].loss == "relative_l1" and cfg.tasks["angle"].loss == "angular"
    assert get_profile(name, epochs=2).epochs == 2
    with pytest.raises(ValueError, match="unknown profile 'tpu'"):
        get_profile("tpu")


def test_analyze_conventional_writes_the_table(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from tests.test_analysis import _write
    from xec_cli.main import main

    cols = _write(tmp_path / "pred.root")
    args = ["analyze", str(tmp_path / "pred.root"), "--tasks", "energy", "--conventional"]
    out = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "a")])
    assert out.exit_code == 0, out.output
    assert "ML vs conventional, both against the truth" in out.output and "| u [mm] |" in out.output
    table = json.loads((tmp_path / "a" / "physics.json").read_text())
    preds = {t: cols[f"pred_{t}"] for t in ("energy", "uvwFI", "timing", "angle")}
    assert table == json.loads(json.dumps(compare(preds, cols)))
    assert table["conventional_failed"] == {"energyReco": 3, "uvwRecoFI": 2, "timeReco": 400}
    assert (tmp_path / "a" / "physics.pdf").read_bytes().startswith(b"%PDF")
    assert "| dE/E [%] |" in (tmp_path / "a" / "physics.md").read_text()
    bare = {k: v for k, v in cols.items() if "Reco" not in k}
    with uproot.recreate(tmp_path / "bare.root") as f:
        f["predictions"] = bare
        f["metadata"] = {"model_kind": np.array(["regressor"]), "tasks": np.array(["timing"]),
                         "n_events": np.array([400])}  # fmt: skip
    out = CliRunner().invoke(main, ["analyze", str(tmp_path / "bare.root"), "--conventional",
                                    "-o", str(tmp_path / "c")])  # fmt: skip
    assert out.exit_code != 0 and "xec simulate --reco" in out.output
