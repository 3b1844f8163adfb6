"""The metric, artifact and branch names of the earlier tool's (xec-ml-wl) documentation, and
xec's for the same things.

Dashboards and scripts written for the earlier tool look for its names, so a run also logs
every documented MLflow key that differs from xec's (`with_earlier_names`, called by the
tracker) and links the documented file names to xec's files in the run folder
(`link_earlier_artifacts`). The README's table of names is `names_table()` (a test compares).
Patterns: {split} train/val, {ch} npho/time, {face} the six faces, {axis} u/v/w.
"""

from __future__ import annotations

import itertools
import re
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path

from xecdata.geometry import FACE_NAMES

FILL: dict[str, tuple[str, ...]] = {
    "split": ("train", "val"),
    "ch": ("npho", "time"),
    "face": FACE_NAMES,
    "axis": ("u", "v", "w"),
}

# (documented MLflow key, xec's key, which runs): the documented key is logged too if it differs.
METRIC_KEYS: tuple[tuple[str, str, str], ...] = (
    ("val_cos", "val/cos_loss", "regressor (angle)"),
    ("val_resolution_deg", "val/angle_resolution_68pct", "regressor (angle)"),
    ("angle_resolution_68pct", "val/angle_resolution_68pct", "regressor (angle)"),
    ("theta_bias", "val/theta_bias", "regressor (angle)"),
    ("theta_rms", "val/theta_rms", "regressor (angle)"),
    ("theta_skew", "val/theta_skew", "regressor (angle)"),
    ("val_cos_pos", "val/cos_loss_pos", "regressor (uvwFI)"),
    ("uvw_dist_68pct", "val/uvw_dist_68pct", "regressor (uvwFI)"),
    ("uvw_{axis}_res_68pct", "val/uvw_{axis}_res_68pct", "regressor (uvwFI)"),
    ("{split}/total_loss", "{split}/total_loss", "MAE, inpainter"),
    ("{split}/{ch}_loss", "{split}/loss_{ch}", "MAE, inpainter"),
    ("val/mae_{ch}", "val/mae_{ch}", "MAE, inpainter"),
    ("val/rmse_{ch}", "val/rmse_{ch}", "MAE, inpainter"),
    ("val/loss_{face}_{ch}", "val/loss_{face}_{ch}", "MAE, inpainter"),
    ("actual_mask_ratio", "val/actual_mask_ratio", "MAE, inpainter"),
    ("n_masked_total", "val/n_masked_total", "MAE, inpainter"),
    ("system/throughput_events_per_sec", "system/throughput_events_per_sec", "all"),
    ("system/avg_data_load_sec", "system/avg_data_load_sec", "all"),
    ("system/compute_efficiency", "system/compute_efficiency", "all"),
    ("system/epoch_duration_sec", "system/epoch_duration_sec", "all"),
    ("system/ram_used_gb", "system/ram_used_gb", "all"),
    ("system/memory_allocated_GB", "system/memory_allocated_GB", "all, on CUDA"),
    ("system/memory_reserved_GB", "system/memory_reserved_GB", "all, on CUDA"),
    ("system/memory_peak_GB", "system/memory_peak_GB", "all, on CUDA"),
    ("system/gpu_utilization_pct", "system/gpu_utilization_pct", "all, on CUDA"),
    ("system/memory_fragmentation", "system/memory_fragmentation", "all, on CUDA"),
)

# (documented metric name without a key, xec's key, which runs): the MAE / inpainter tables.
METRIC_NAMES: tuple[tuple[str, str, str], ...] = (
    ("total_loss", "{split}/total_loss", "MAE, inpainter"),
    ("loss_{ch}", "{split}/loss_{ch}", "MAE, inpainter"),
    ("loss_{face}", "{split}/loss_{face}", "MAE, inpainter"),
    ("loss_{face}_{ch}", "{split}/loss_{face}_{ch}", "MAE, inpainter"),
    ("mae_{ch}", "val/mae_{ch}", "MAE, inpainter"),
    ("rmse_{ch}", "val/rmse_{ch}", "MAE, inpainter"),
    ("mae_{face}_{ch}", "val/mae_{face}_{ch}", "MAE, inpainter"),
    ("rmse_{face}_{ch}", "val/rmse_{face}_{ch}", "MAE, inpainter"),
    ("actual_mask_ratio", "{split}/actual_mask_ratio", "MAE, inpainter"),
    ("n_masked_total", "val/n_masked_total", "MAE, inpainter"),
    ("channel variances", "{split}/logvar_{ch}, {split}/sigma_{ch}", "recon.learn_channel_logvars"),
)

# (documented file, xec's file in artifacts/<run>/, note); "link": a symlink of that name is made.
ARTIFACTS: tuple[tuple[str, str, str], ...] = (
    ("checkpoint_best.pth, checkpoint_last.pth", "the same", "every kind"),
    ("mae_checkpoint_best.pth, mae_checkpoint_last.pth", "checkpoint_best.pth, ..._last.pth",
     "MAE; link"),
    ("inpainter_checkpoint_best.pth, inpainter_checkpoint_last.pth",
     "checkpoint_best.pth, ..._last.pth", "inpainter; link"),
    ("mae_encoder_epoch_{epoch}.pth", "mae_encoder_epoch_NNN.pth", "MAE"),
    ("mae_predictions_epoch_{epoch}.root", "mae_predictions_epoch_NNN.root", "MAE"),
    ("inpainter_predictions_epoch_{epoch}.root", "inpainter_predictions_epoch_NNN.root",
     "inpainter"),
    ("predictions_{task}_{run_name}.csv", "predictions_{task}_{run}.csv", "regressor"),
    ("validation_results_*.root", "validation_results_{run}.root", "regressor"),
    ("resolution_{task}_{run_name}.pdf", "resolution_{task}_{run}.pdf", "regressor"),
    ("resolution_profile_*.pdf", "resolution_angle_{run}.pdf", "regressor; link"),
    ("saliency_profile_*.pdf", "saliency_profile_{run}.pdf", "regressor"),
    ("face_weights_{run_name}.pdf", "face_weights_{run}.pdf", "regressor"),
    ("worst_events/worst_NN_{run_name}.pdf", "worst_events/worst_NN_{run}.pdf", "regressor"),
    ("worst_event_*.pdf", "worst_events/worst_NN_{run}.pdf", "regressor; link"),
    ("{onnx_filename}, model.onnx", "{run}.onnx (checkpoint.onnx_filename)",
     "checkpoint.export_onnx"),
)  # fmt: skip

# (documented ROOT branch, xec's branch, file)
BRANCHES: tuple[tuple[str, str, str], ...] = (
    ("event_id, run_id", "event_id, run_id (also as event, run)", "MAE predictions"),
    ("truth_{ch}, pred_{ch}, err_{ch}, mask, masked_{ch}", "the same", "MAE predictions"),
    ("event_idx, sensor_id, face, truth_{ch}, pred_{ch}, error_{ch}", "the same (face: code "
     "0-5, names in metadata face_names)", "inpainter predictions"),
    ("metadata: predict_channels, npho_scale, time_scale, sentinel_time", "the same",
     "MAE, inpainter predictions"),
)  # fmt: skip


def expand(pattern: str, other: str = "") -> Iterator[tuple[str, str]]:
    """(documented, xec) names of a pattern pair, one per value of each {placeholder}."""
    names = sorted(set(re.findall(r"\{(\w+)\}", pattern + other)) & set(FILL))
    for values in itertools.product(*(FILL[n] for n in names)):
        sub = dict(zip(names, values, strict=True))
        yield pattern.format_map(sub), other.format_map(sub)


def earlier_aliases() -> dict[str, str]:
    """{documented key: xec key} of every documented MLflow key that differs from xec's."""
    pairs = (p for old, new, _ in METRIC_KEYS for p in expand(old, new))
    return {old: new for old, new in pairs if old != new}


def with_earlier_names(metrics: Mapping[str, float]) -> dict[str, float]:
    """`metrics` plus each documented key whose xec key is among them and differs from it."""
    extra = {old: metrics[new] for old, new in earlier_aliases().items() if new in metrics}
    return {**metrics, **extra}


def earlier_links(run_dir: Path, kind: str) -> dict[str, str]:
    """{documented file name: xec's file (relative)} for the files of `run_dir` that exist."""
    run = run_dir.name
    links: dict[str, str] = {}
    if kind in ("mae", "inpainter"):
        links |= {f"{kind}_checkpoint_{w}.pth": f"checkpoint_{w}.pth" for w in ("best", "last")}
    links[f"resolution_profile_{run}.pdf"] = f"resolution_angle_{run}.pdf"
    for display in sorted((run_dir / "worst_events").glob(f"worst_*_{run}.pdf")):
        number = display.name.removeprefix("worst_").split("_", 1)[0]
        links[f"worst_event_{number}_{run}.pdf"] = f"worst_events/{display.name}"
    return {name: target for name, target in links.items() if (run_dir / target).exists()}


def link_earlier_artifacts(run_dir: Path, kind: str) -> list[Path]:
    """Relative symlinks under the documented names to xec's files (they follow the atomic
    replacements of their targets); existing files of those names are left alone."""
    made: list[Path] = []
    for name, target in earlier_links(run_dir, kind).items():
        link = run_dir / name
        if link.exists() or link.is_symlink():
            continue
        try:
            link.symlink_to(target)
        except OSError as err:  # a file system without symlinks: xec's names stand
            warnings.warn(f"{run_dir}: cannot link {name} -> {target} ({err})", stacklevel=2)
            return made
        made.append(link)
    return made


def names_table() -> str:
    """The README's table: documented name | xec's name | where (markdown)."""
    rows = ["| earlier tool's docs | xec | where |", "|---|---|---|"]
    for group in (METRIC_KEYS, METRIC_NAMES, ARTIFACTS, BRANCHES):
        rows += [f"| {_code(a)} | {_code(b)} | {c} |" for a, b, c in group]
    return "\n".join(rows)


def _code(cell: str) -> str:
    return cell if cell.startswith("the same") or " " in cell.split(",")[0] else f"`{cell}`"
