"""The files of the ML-vs-conventional table for an `xec infer` output (`xec analyze
--conventional`): JSON, markdown and PDF (the table itself is `xectrain.analysis.physics`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from xecdata.reco.resolution import depth_regions
from xectrain.analysis.physics import compare, markdown_report, reco_of_task, residual_arrays
from xectrain.analysis.physics_pdf import write_pdf
from xectrain.analysis.predictions import AnalysisError, read_inference


def compare_inference(path: str | Path, out_dir: str | Path, suffix: str = "") -> dict[str, Any]:
    """The ML-vs-conventional table of an `xec infer` output whose input carried the truth and
    the conventional reconstruction (`xec simulate --reco`); writes
    `physics{suffix}.json`, `.md` and `.pdf` into `out_dir` and returns the report."""
    cols, meta = read_inference(path)
    tasks = [t for t in str(meta.get("tasks", "")).split(",") if t in reco_of_task()]
    preds = {t: cols[f"pred_{t}"] for t in tasks}
    missing = [b for b in ("energyTruth", "uvwTruth") if b not in cols]
    if missing or not preds:
        what = f"no truth branches {missing}" if missing else "no energy, uvwFI, timing or angle"
        raise AnalysisError(f"{path}: {what}; the table needs a regressor's predictions of "
                            "simulated events")  # fmt: skip
    try:
        report = compare(preds, cols)
    except ValueError as err:
        raise AnalysisError(f"{path}: {err}") from None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = Path(path).name
    (out / f"physics{suffix}.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / f"physics{suffix}.md").write_text(markdown_report({name: report}, "ML vs conventional"))
    res = {name: residual_arrays(preds, cols, depth_regions(cols)["w>2"])}
    write_pdf({name: report}, res, out / f"physics{suffix}.pdf")
    return report
