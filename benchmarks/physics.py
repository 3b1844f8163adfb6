"""The regressor against the conventional reconstruction on the same simulated events
(``xectrain.analysis.physics_bench``; the same as `xec bench physics`).

Simulates the reference sets (52.8 MeV line, flat 15-60 MeV) on the realistic default
detector with the conventional reconstruction, trains the regressor on a flat 15-60 MeV
training set, and writes the JSON result, a markdown table and a PDF: sigma68 and bias of
dE/E (%), u, v, w (mm), t (ps), theta, phi (mrad), ML and conventional on the same events,
fiducial w > 2 / w < 2 cm and in bins of energy and depth.

    python benchmarks/physics.py [--profile cpu|gpu] [--json benchmarks/results/physics.json]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from xectrain.analysis.physics_bench import get_profile, run_physics, write_outputs  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=["cpu", "gpu"], default="cpu")
    ap.add_argument("--train-events", type=int, default=None)
    ap.add_argument("--val-events", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks/results/physics.json")
    args = ap.parse_args()
    profile = get_profile(
        args.profile, train_events=args.train_events, val_events=args.val_events, epochs=args.epochs
    )
    with tempfile.TemporaryDirectory(prefix="xec-physics-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        result, residuals = run_physics(profile, work)
    command = "python benchmarks/physics.py " + " ".join(sys.argv[1:])
    write_outputs(
        result,
        residuals,
        args.json,
        args.json.with_suffix(".md"),
        args.json.with_suffix(".pdf"),
        command.strip(),
    )
    print((args.json.with_suffix(".md")).read_text())


if __name__ == "__main__":
    main()
