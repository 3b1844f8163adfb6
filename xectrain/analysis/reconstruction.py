"""Analysis of MAE / inpainter prediction files (`xec analyze mae_predictions_epoch_NNN.root`):
how well the masked sensors are reconstructed, per face and per channel, in physical units;
and of `xec infer` outputs of those models run with --mask-fraction (analyze_filled).

Only sensors the model had to reconstruct count: in an MAE file (one entry per event) the
masked sensors that were valid before masking; in an inpainter file (one entry per masked
sensor) every entry. Several files (the ranks of one DDP validation) are read as one. The files
are streamed in steps, so memory stays bounded whatever their size: per face and channel the
count, bias, mean absolute and RMS residual are accumulated, with fixed-bin histograms of the
residual (npho relative to the truth, time in ns) and its RMS in bins of the true npho.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xecdata.geometry import FACE_NAMES, sensor_table
from xectrain.artifacts.plotting import new_figure, save

NPHO_BINS = np.geomspace(1.0, 1e5, 26)  # true photons, for the profiles
RES_RANGE = {"npho": (-1.0, 1.0), "time": (-5.0, 5.0)}  # relative npho residual, time in ns
MIN_NPHO_FOR_RELATIVE = 10.0  # photons: below, a relative npho residual says little
STEP = "200 MB"


@dataclass
class ChannelStats:
    """Running sums of one channel's residuals on one face."""

    n: int = 0
    s: float = 0.0
    s2: float = 0.0
    s_abs: float = 0.0
    hist: np.ndarray = field(default_factory=lambda: np.zeros(100, np.int64))
    prof_n: np.ndarray = field(default_factory=lambda: np.zeros(len(NPHO_BINS) - 1, np.int64))
    prof_s2: np.ndarray = field(default_factory=lambda: np.zeros(len(NPHO_BINS) - 1))

    def add(self, res: np.ndarray, shown: np.ndarray, true_npho: np.ndarray, lo_hi: Any) -> None:
        """res: residual (physical units); shown: what the histogram and profile use."""
        self.n += res.size
        self.s += float(res.sum())
        self.s2 += float((res.astype(np.float64) ** 2).sum())
        self.s_abs += float(np.abs(res).sum())
        self.hist += np.histogram(shown, 100, lo_hi)[0]
        k = np.digitize(true_npho, NPHO_BINS) - 1
        ok = (k >= 0) & (k < len(NPHO_BINS) - 1)
        self.prof_n += np.bincount(k[ok], minlength=len(self.prof_n))
        self.prof_s2 += np.bincount(k[ok], shown[ok].astype(np.float64) ** 2, len(self.prof_s2))

    def summary(self) -> dict[str, float]:
        if not self.n:
            return {"n": 0}
        mean = self.s / self.n
        return {"n": self.n, "bias": mean, "mae": self.s_abs / self.n,
                "rmse": float(np.sqrt(self.s2 / self.n))}  # fmt: skip


def _batches(
    paths: Sequence[Path], channels: Sequence[str], layout: str, progress: bool
) -> Iterator[dict]:
    import uproot
    from tqdm import tqdm

    names = [f"truth_{c}" for c in channels] + [f"pred_{c}" for c in channels]
    names += ["mask", "invalid"] if layout == "event" else ["face"]
    with tqdm(desc="analyze", unit="entry", leave=False, disable=not progress) as bar:
        for path in paths:
            with uproot.open(path) as f:
                tree = f["predictions"]
                bar.total = (bar.total or 0) + tree.num_entries
                for batch in tree.iterate(names, step_size=STEP, library="np"):
                    bar.update(len(batch[names[0]]))
                    yield batch


def _selected(b: dict, layout: str, faces: np.ndarray) -> tuple[dict, np.ndarray]:
    """Flat arrays of the reconstructed sensors and their face codes."""
    if layout == "sensor":
        return b, b["face"].astype(np.int64)
    keep = b["mask"] & ~b["invalid"]  # (B, 4760)
    flat = {k: v[keep] for k, v in b.items() if k.startswith(("truth_", "pred_"))}
    return flat, np.broadcast_to(faces, keep.shape)[keep]


def read_kind(paths: Sequence[Path]) -> tuple[str, str, list[str]]:
    """(kind, layout, channels) of the files; they must agree."""
    from xectrain.artifacts.rootio import read_metadata

    seen = set()
    for p in paths:
        meta = read_metadata(p)
        seen.add((str(meta.get("kind")), str(meta.get("layout")), str(meta["predict_channels"])))
    if len(seen) != 1:
        raise ValueError(f"the files differ in kind/layout/channels: {sorted(seen)}")
    kind, layout, channels = seen.pop()
    return kind, layout, channels.split(",")


def _accumulate(
    stats: dict[tuple[int, str], ChannelStats], flat: dict, face: np.ndarray,
    channels: Sequence[str],
) -> None:  # fmt: skip
    """Residuals of flat truth_/pred_<channel> arrays (photons, ns) into the per-face stats."""
    true_npho = flat["truth_npho"]
    for c in channels:
        t, p = flat[f"truth_{c}"], flat[f"pred_{c}"]
        ok = np.isfinite(t) & np.isfinite(p)
        if c == "npho":
            ok &= t >= MIN_NPHO_FOR_RELATIVE
        res = (p - t)[ok]
        shown = res / t[ok] if c == "npho" else res
        for code in np.unique(face[ok]):
            on = face[ok] == code
            stats[(int(code), c)].add(res[on], shown[on], true_npho[ok][on], RES_RANGE[c])


def _new_stats(channels: Sequence[str]) -> dict[tuple[int, str], ChannelStats]:
    return {(f, c): ChannelStats() for f in range(len(FACE_NAMES)) for c in channels}


def analyze_reconstruction(
    paths: Sequence[str | Path], out_dir: str | Path, suffix: str = "", progress: bool = True
) -> dict[str, Any]:
    """Per-face, per-channel residual statistics of reconstructed sensors; writes
    `recon_analysis{suffix}.json` and `recon_analysis{suffix}.pdf` into `out_dir`."""
    files = [Path(p) for p in paths]
    kind, layout, channels = read_kind(files)
    faces = sensor_table().face.astype(np.int64)
    stats = _new_stats(channels)
    for batch in _batches(files, channels, layout, progress):
        flat, face = _selected(batch, layout, faces)
        _accumulate(stats, flat, face, channels)
    return _report([str(p) for p in files], kind, channels, stats, Path(out_dir), suffix)


def _report(
    inputs: list[str], kind: str, channels: Sequence[str],
    stats: dict[tuple[int, str], ChannelStats], out: Path, suffix: str,
) -> dict[str, Any]:  # fmt: skip
    report: dict[str, Any] = {
        "inputs": inputs, "kind": kind, "channels": list(channels),
        "npho_relative_above": MIN_NPHO_FOR_RELATIVE,
        "faces": {FACE_NAMES[f]: {c: stats[(f, c)].summary() for c in channels}
                  for f in range(len(FACE_NAMES))},
    }  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    report["plot"] = str(_plot(stats, channels, kind, out / f"recon_analysis{suffix}.pdf"))
    (out / f"recon_analysis{suffix}.json").write_text(json.dumps(report, indent=1))
    return report


FILLED_COLUMNS = ("npho", "time", "inpainted", "measured_npho", "measured_time")
NS_PER_UNIT = {"s": 1e9, "ns": 1.0}


def analyze_filled(
    path: str | Path, out_dir: str | Path, kind: str, time_units: str, suffix: str = "",
    progress: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """An `xec infer` output of a model that fills masked sensors, run with --mask-fraction:
    the filled npho / time of the sensors that were masked although measured, against their
    measured values, per face (as analyze_reconstruction; same files written)."""
    import uproot
    from tqdm import tqdm

    path = Path(path)
    with uproot.open(path) as f:
        tree = f["predictions"]
        if "measured_npho" not in tree:
            raise ValueError(
                f"{path} holds {kind} outputs without measured values of the filled sensors "
                "(only dead sensors were filled, which have none); run `xec infer` with "
                "--mask-fraction 0.05 to mask measured sensors too, then analyze that file"
            )
        ns = NS_PER_UNIT[time_units]
        faces = sensor_table().face.astype(np.int64)
        stats = _new_stats(("npho", "time"))
        batches = tree.iterate(FILLED_COLUMNS, step_size=STEP, library="np")
        for b in tqdm(batches, desc="analyze", leave=False, disable=not progress):
            keep = b["inpainted"].astype(bool) & np.isfinite(b["measured_npho"])  # (B, 4760)
            flat = {"truth_npho": b["measured_npho"][keep], "pred_npho": b["npho"][keep],
                    "truth_time": b["measured_time"][keep] * ns,
                    "pred_time": b["time"][keep] * ns}  # fmt: skip
            face = np.broadcast_to(faces, keep.shape)[keep]
            _accumulate(stats, flat, face, ("npho", "time"))
    # a channel the model does not fill (time in npho-only mode) has no residual to show
    channels = [c for c in ("npho", "time") if any(stats[(f, c)].n for f in range(len(FACE_NAMES)))]
    return _report([str(path)], kind, channels or ["npho"], stats, Path(out_dir), suffix)


def _plot(stats: dict, channels: Sequence[str], kind: str, path: Path) -> Path:
    """Per channel: residual histograms per face, RMS per face, RMS vs true npho per face."""
    fig, ax = new_figure(len(channels), 3, (16, 4.5 * len(channels)))
    label = {"npho": "(pred − true) / true npho", "time": "pred − true time [ns]"}
    centres = np.sqrt(NPHO_BINS[1:] * NPHO_BINS[:-1])
    for row, c in enumerate(channels):
        lo, hi = RES_RANGE[c]
        edges = np.linspace(lo, hi, 101)
        rms = []
        for f, name in enumerate(FACE_NAMES):
            st = stats[(f, c)]
            rms.append(st.summary().get("rmse", np.nan))
            if st.n:
                ax[row, 0].stairs(st.hist / max(st.hist.sum(), 1), edges, label=name)
                with np.errstate(invalid="ignore", divide="ignore"):
                    prof = np.sqrt(st.prof_s2 / st.prof_n)
                ax[row, 2].plot(centres, prof, "o-", ms=3, label=name)
        ax[row, 0].set_xlabel(label[c])
        ax[row, 0].set_ylabel("fraction of sensors")
        ax[row, 0].legend(fontsize=7)
        ax[row, 1].bar(FACE_NAMES, rms)
        ax[row, 1].set_ylabel(f"RMS residual [{'photons' if c == 'npho' else 'ns'}]")
        ax[row, 2].set_xscale("log")
        ax[row, 2].set_xlabel("true npho [photons]")
        ax[row, 2].set_ylabel(f"RMS of {label[c]}")
        ax[row, 2].legend(fontsize=7)
    fig.suptitle(f"{kind}: reconstruction of masked sensors per face")
    return save(fig, path)
