"""Output files of a validation pass: the streamed MAE / inpainter prediction files and the
provenance written into a regressor's validation ROOT file."""

from __future__ import annotations

from pathlib import Path

from xecdata.geometry import FACE_NAMES
from xecdata.schemes import Scheme
from xecmodel.kind import ModelKind
from xecmodel.registry import kind_class
from xectrain.artifacts import PredictionRootWriter


def predictions_path(
    run_dir: Path, kind: str, epoch: int, rank: int = 0, world_size: int = 1
) -> Path:
    """`<kind>_predictions_epoch_NNN.root` in the run folder (epoch 1-based); under DDP each
    rank writes its share of the split to `<kind>_predictions_epoch_NNN_rank<r>of<W>.root`
    (together they hold every validation event exactly once)."""
    part = f"_rank{rank}of{world_size}" if world_size > 1 else ""
    return run_dir / f"{kind}_predictions_epoch_{epoch:03d}{part}.root"


def prediction_writer(
    kind: str,
    predict_time: bool,
    scheme: Scheme,
    geometry_id: str,
    epoch: int,
    path: Path,
    rank: int = 0,
    world_size: int = 1,
) -> PredictionRootWriter:
    """Streaming ROOT writer of MAE (per event) or inpainter (per masked sensor) predictions;
    without predict_time (npho-only mode) the file holds no truth / predicted time."""
    layout = kind_class(kind).predictions_layout
    if layout is None:
        raise ValueError(f"a {kind} writes no prediction files")
    channels = ("npho", "time") if predict_time else ("npho",)
    units = "npho: photons, time: ns"
    if layout == "event":  # per-event files also keep what the encoder saw (masked_*)
        units += ", masked_*: normalized"
    meta: dict[str, str | int | float] = {
        "kind": kind,
        "units": "npho: photons, time: ns"
        + (", masked_*: normalized" if layout == "event" else ""),
        "scheme_id": scheme.id,
        "scheme_hash": scheme.hash,
        "npho_scale": float(scheme.npho_scale),
        "time_scale": float(scheme.time_scale),
        "sentinel_time": float(scheme.time_sentinel),
        "sentinel_npho": float(scheme.npho_sentinel),
        "geometry_id": geometry_id,
        "epoch": epoch,
        "face_names": ",".join(FACE_NAMES),
        "rank": rank,
        "world_size": world_size,
    }
    return PredictionRootWriter(path, layout, channels, meta)


def artifact_metadata(model: ModelKind, epoch: int, split: str) -> dict[str, str | int | float]:
    """Provenance written into the validation ROOT file of a regressor."""
    return {"scheme_id": model.scheme_id, "scheme_hash": model.scheme_hash,
            "geometry_id": model.geometry_id, "epoch": epoch, "split": split}  # fmt: skip
