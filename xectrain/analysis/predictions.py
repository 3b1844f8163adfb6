"""Analysis of `xec infer` outputs (`xec analyze PRED.root`): each task's predictions against a
reference carried in the same file, with the validation metrics and resolution plots.

Reference `truth` is the simulation truth (the task catalogue's branch). Reference `reco` is
the conventional reconstruction of real data: the task's reco branch (energyReco, timeReco,
uvwRecoFI, emiAngReco, in the truth branches' units), and where the file has none for the
angle tasks, the direction from the vertex (xyzVTX) to the reconstructed first-interaction
point (xyzRecoFI), as the real-data angle is defined (the entry's reco_derived). `auto`
takes truth where the file has it, else reco. Events whose reference holds the 'invalid'
marker (1e10), NaN or Inf are left out and counted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xecdata.errors import XecError
from xecdata.markers import valid_rows
from xecdata.sim.kinematics import emission_angles
from xecdata.tasks import TASKS, get_task
from xecmodel.kind import OutputSpec
from xecmodel.registry import output_specs
from xectrain.evaluation.metrics import task_metrics

REFERENCES = ("auto", "truth", "reco")


class AnalysisError(XecError, ValueError):
    """A file `xec analyze` cannot analyse; the message says why and what to do."""


def _column(cols: Mapping[str, np.ndarray], name: str, dim: int) -> np.ndarray:
    return np.asarray(cols[name], np.float64).reshape(len(cols[name]), dim)


def reco_direction(cols: Mapping[str, np.ndarray]) -> np.ndarray | None:
    """(N, 3) unit vectors from the vertex to the reconstructed first interaction; NaN where
    either point is missing (the 1e10 marker) or they coincide."""
    if "xyzRecoFI" not in cols or "xyzVTX" not in cols:
        return None
    fi, vtx = _column(cols, "xyzRecoFI", 3), _column(cols, "xyzVTX", 3)
    v = fi - vtx
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    ok = valid_rows(fi) & valid_rows(vtx) & (norm[:, 0] > 0)
    return np.where(ok[:, None], v / np.where(norm > 0, norm, 1.0), np.nan)


def reference(
    task: str, cols: Mapping[str, np.ndarray], against: str
) -> tuple[np.ndarray, str] | None:
    """(N, dim) reference values of `task` and what they are, or None if the file has none."""
    info = get_task(task)
    if against in ("auto", "truth") and info.branch in cols:
        return _column(cols, info.branch, info.target_dim), f"truth ({info.branch})"
    if against == "truth":
        return None
    if info.reco is not None and info.reco in cols:
        return _column(cols, info.reco, info.target_dim), f"reco ({info.reco})"
    direction = reco_direction(cols) if info.reco_derived is not None else None
    if direction is None:
        return None
    values = emission_angles(direction) if info.reco_derived == "angles" else direction
    return values, "reco (direction xyzVTX -> xyzRecoFI)"


def units_mismatch(pred: np.ndarray, ref: np.ndarray, factor: float = 100.0) -> float | None:
    """The ratio of the references' to the predictions' typical magnitude when it is beyond
    `factor` either way (e.g. a reco time in s against predictions in ns), else None."""
    p, r = np.median(np.abs(pred)), np.median(np.abs(ref))
    if p == 0 or r == 0:
        return None
    ratio = float(r / p)
    return ratio if ratio > factor or ratio < 1 / factor else None


def _open(path: Path) -> Any:
    import uproot

    try:
        f = uproot.open(path)
    except Exception as exc:  # uproot raises several types for foreign or torn files
        raise AnalysisError(f"{path}: not a readable ROOT file ({exc})") from None
    if "predictions" not in f or "metadata" not in f:
        f.close()
        raise AnalysisError(
            f"{path}: no 'predictions' / 'metadata' trees; analyse files written by xec infer"
        )
    return f


def read_inference_metadata(path: str | Path) -> dict[str, Any]:
    """The one-entry `metadata` of an `xec infer` file, values as Python scalars."""
    with _open(Path(path)) as f:
        meta = {k: v[0] for k, v in f["metadata"].arrays(library="np").items()}
    return {k: v.item() if hasattr(v, "item") else v for k, v in meta.items()}


def read_inference(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Columns of the `predictions` tree and the one-entry `metadata` of an `xec infer` file."""
    meta = read_inference_metadata(path)
    with _open(Path(path)) as f:
        cols = f["predictions"].arrays(library="np")
    return cols, meta


def inference_outputs(meta: dict[str, Any], path: str | Path) -> tuple[OutputSpec, ...]:
    """The outputs the model's kind declared, as `xec infer` recorded them (files written
    before that record: the kind's declaration for the recorded tasks)."""
    if "output_specs" in meta:
        return tuple(OutputSpec.from_dict(d) for d in json.loads(str(meta["output_specs"])))
    kind = str(meta.get("model_kind") or meta.get("kind") or "unknown")
    tasks = [t for t in str(meta.get("tasks", "")).split(",") if t]
    try:
        return output_specs({"kind": kind, "tasks": tasks or None})
    except ValueError:
        raise AnalysisError(f"{path}: written by a model of unknown kind {kind!r}; analyse "
                            "files written by xec infer") from None  # fmt: skip


def analyze_inference(
    path: str | Path,
    out_dir: str | Path,
    against: str = "auto",
    tasks: Sequence[str] | None = None,
    suffix: str = "",
) -> dict[str, Any]:
    """Metrics and resolution PDFs of each predicted task against its reference; writes
    `analysis{suffix}.json` and `analysis_<task>{suffix}.pdf` into `out_dir`. Outputs per
    sensor (MAE, inpainter: filled sensors) go to reconstruction.analyze_filled instead."""
    from xectrain.analysis.reconstruction import analyze_filled
    from xectrain.artifacts.regressor import CONTEXT_PLOTS, plot_task

    if against not in REFERENCES:
        raise AnalysisError(f"unknown reference {against!r}; use one of {', '.join(REFERENCES)}")
    meta = read_inference_metadata(path)
    specs = inference_outputs(meta, path)
    kind = str(meta.get("model_kind"))
    filled = {o.column: o for o in specs if o.per == "sensor" and o.column}
    if filled:
        if against != "auto" or tasks:
            raise AnalysisError(f"{path} holds {kind} outputs (filled sensors): --against and "
                                "--tasks apply to per-event predictions; drop them")  # fmt: skip
        units = filled["time"].units if "time" in filled else "s"
        try:
            return analyze_filled(path, out_dir, kind, units, suffix, progress=False)
        except ValueError as err:
            raise AnalysisError(str(err)) from None
    cols = read_inference(path)[0]
    declared = {o.name: o for o in specs if o.per == "event"}
    predicted = list(declared)
    unknown = sorted(set(tasks or ()) - set(predicted))
    if unknown:
        raise AnalysisError(f"task(s) {unknown} not predicted in {path} (it has {predicted})")
    foreign = [t for t in predicted if t not in TASKS]
    if foreign:
        raise AnalysisError(f"{path} predicts task(s) {foreign} that are not in the task "
                            f"catalogue ({', '.join(TASKS)}); register them first")  # fmt: skip
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    refs = {t: reference(t, cols, against) for t in predicted}
    # profiles of one task against another's reference (energy vs position, timing vs energy),
    # by plot kind
    context = {
        t.plot: r[0]
        for t in TASKS.values()
        if t.plot in CONTEXT_PLOTS and (r := reference(t.name, cols, against))
    }
    report: dict[str, Any] = {"input": str(path), "events": len(cols["entry"]), "tasks": {}}
    for task in tasks or predicted:
        found = refs[task]
        if found is None:
            report["tasks"][task] = {"skipped": f"no {against} reference in the file"}
            continue
        ref, what = found
        info = get_task(task)
        pred = _column(cols, str(declared[task].column), declared[task].shape[0])
        ok = valid_rows(ref) & np.all(np.isfinite(pred), axis=1)
        if not ok.any():
            report["tasks"][task] = {"skipped": f"all {len(ok)} {what} references are invalid"}
            continue
        entry: dict[str, Any] = {"reference": what, "events": int(ok.sum())}
        entry["left_out"] = int((~ok).sum())
        scale = units_mismatch(pred[ok], ref[ok])
        if scale is not None:
            entry["warning"] = (
                f"the reference is ~{scale:.0e} times the predictions: different units? "
                f"({what} should be in the task's {info.units})"
            )
        entry["metrics"] = task_metrics(task, pred[ok], ref[ok])
        if info.plot is not None and ok.sum() > 1:
            # another task's reference: its invalid rows are NaN (left out of its profiles)
            ctx = {k: np.where(valid_rows(v)[:, None], v, np.nan)[ok] for k, v in context.items()}
            pdf = out_dir / f"analysis_{task}{suffix}.pdf"
            label = what.split(" ")[0]  # truth / reco, for the axis labels
            pdf, fit = plot_task(
                task, ref[ok], pred[ok], pdf, ctx, "true" if label == "truth" else label
            )
            entry["plot"], entry["metrics"] = str(pdf), entry["metrics"] | fit
        report["tasks"][task] = entry
    (out_dir / f"analysis{suffix}.json").write_text(json.dumps(report, indent=1))
    return report
