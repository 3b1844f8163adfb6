"""The reconstruction's calibration as versioned, content-hashed data (like a scheme).

A calibration is a JSON file with
- identity: ``name@version`` and ``hash`` = sha256 of the canonical JSON of everything that
  changes the numbers (geometry id, algorithm version, settings, depth / energy / time
  constants); name, version and provenance are not hashed;
- ``geometry_id``: the detector description it was made for; using it with another geometry is
  refused, as is a file whose ``algorithm`` differs from ``ALGORITHM`` (the reconstruction code
  changed: rebuild it);
- ``source``: where it came from (the calibration files' names, sizes, sha256 and their
  simulator settings: seed, options, geometry id, xec version) and the command that makes it.

Parameters are written rounded to ``DIGITS`` significant digits, so the same inputs give the
same bytes and hash. The calibrations shipped with xec are the ``<name>@<version>.json`` files
of this package; ``default_calibration()`` is the highest version named ``default``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xecdata.errors import XecError
from xecdata.geometry import geometry_id
from xecdata.reco.bias import PositionBias
from xecdata.reco.energy import EnergyCalibration
from xecdata.reco.tables import BinnedLinear
from xecdata.reco.timing import TimeCalibration

FORMAT = "xec-reco-calibration"
FORMAT_VERSION = 1
ALGORITHM = 1  # bump when the reconstruction code changes what a calibration means
DIGITS = 9
PACKAGE_DIR = Path(__file__).parent
NAME_PATTERN = r"[A-Za-z][A-Za-z0-9_.-]*"
REBUILD = "rebuild it with `xec reco calibrate SIM... -o CALIB.json` from simulated files"


class CalibrationError(XecError, ValueError):
    """A calibration file that cannot be used; the message says why and what to do."""


def _rounded(x: Any) -> Any:
    """Floats (nested in lists / dicts) to DIGITS significant digits."""
    if isinstance(x, float):
        return float(f"{x:.{DIGITS}g}")
    if isinstance(x, list | tuple):
        return [_rounded(v) for v in x]
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    return x


def _dump(obj: Any, depth: int = 0) -> str:
    """JSON with sorted keys, dicts indented down to the second level, everything below (and
    every list) on one line: readable, and one line per table."""
    if isinstance(obj, dict) and depth < 2 and obj:
        pad = " " * (depth + 1)
        items = [f"{pad}{json.dumps(k)}: {_dump(obj[k], depth + 1)}" for k in sorted(obj)]
        return "{\n" + ",\n".join(items) + "\n" + " " * depth + "}"
    return json.dumps(obj, sort_keys=True)


@dataclass(frozen=True)
class Calibration:
    """Constants of the conventional reconstruction (see the package docstring)."""

    name: str
    version: int
    settings: dict[str, Any]
    depth: BinnedLinear
    energy: EnergyCalibration
    time: TimeCalibration
    geometry: str = field(default_factory=geometry_id)
    algorithm: int = ALGORITHM
    source: dict[str, Any] = field(default_factory=dict)
    position: PositionBias | None = None  # None: no bias correction (calibrations before default@4)

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    def parameters(self) -> dict[str, Any]:
        """The hashed content, rounded (the position bias only where there is one, so that
        older calibrations keep their hashes)."""
        bias = {} if self.position is None else {"position_bias": self.position.to_dict()}
        return _rounded({
            "geometry_id": self.geometry, "algorithm": self.algorithm,
            "settings": self.settings, "depth": self.depth.to_dict(),
            "energy": self.energy.to_dict(), "time": self.time.to_dict(),
        } | bias)  # fmt: skip

    @property
    def attenuation_length(self) -> float | None:
        """cm, the position fit's attenuation of the direct light; None (calibrations before
        default@3, made with a fit without it) for none."""
        value = self.settings.get("attenuation_length_cm")
        return None if value is None else float(value)

    @property
    def hash(self) -> str:
        canonical = json.dumps(self.parameters(), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()

    def to_json(self) -> str:
        """The file's text (stable: sorted keys, rounded floats, trailing newline)."""
        head = {"format": FORMAT, "format_version": FORMAT_VERSION, "id": self.id,
                "name": self.name, "version": self.version, "hash": self.hash}  # fmt: skip
        return _dump(head | self.parameters() | {"source": self.source}) + "\n"

    def check_usable(self, where: str) -> None:
        """Refuse a calibration of another geometry or reconstruction algorithm."""
        if self.geometry != geometry_id():
            raise CalibrationError(
                f"{where}: calibration {self.id} was made for detector geometry {self.geometry}, "
                f"this installation describes {geometry_id()}; {REBUILD} of this geometry"
            )
        if self.algorithm != ALGORITHM:
            raise CalibrationError(
                f"{where}: calibration {self.id} is for reconstruction algorithm "
                f"{self.algorithm}, this xec runs algorithm {ALGORITHM}; {REBUILD}"
            )


def calibration_from_dict(d: dict[str, Any], where: str) -> Calibration:
    """Parse (and check the hash of) a calibration's JSON object."""
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise CalibrationError(f"{where}: not an xec reconstruction calibration (no "
                               f"'format': '{FORMAT}'); {REBUILD}")  # fmt: skip
    if d.get("format_version") != FORMAT_VERSION:
        raise CalibrationError(f"{where}: calibration format {d.get('format_version')}, this "
                               f"xec reads {FORMAT_VERSION}; {REBUILD}")  # fmt: skip
    try:
        cal = Calibration(
            name=str(d["name"]), version=int(d["version"]), settings=dict(d["settings"]),
            depth=BinnedLinear.from_dict(d["depth"]),
            energy=EnergyCalibration.from_dict(d["energy"]),
            time=TimeCalibration.from_dict(d["time"]), geometry=str(d["geometry_id"]),
            algorithm=int(d["algorithm"]), source=dict(d.get("source", {})),
            position=PositionBias.from_dict(d["position_bias"]) if "position_bias" in d else None,
        )  # fmt: skip
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise CalibrationError(f"{where}: malformed calibration ({exc!r}); {REBUILD}") from None
    if d.get("hash") != cal.hash:
        raise CalibrationError(
            f"{where}: calibration {cal.id} does not match its hash ({d.get('hash')} recorded, "
            f"{cal.hash} computed): it was edited after it was made; {REBUILD}"
        )
    return cal


def load_calibration(path: str | Path) -> Calibration:
    """Read a calibration file (any geometry; ``check_usable`` before reconstructing)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CalibrationError(f"cannot read calibration {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise CalibrationError(f"{path}: not valid JSON ({exc}); {REBUILD}") from None
    return calibration_from_dict(data, str(path))


def builtin_calibration_files() -> list[Path]:
    """The packaged calibrations, ``<name>@<version>.json``."""
    return sorted(p for p in PACKAGE_DIR.iterdir() if re.fullmatch(r".+@\d+\.json", p.name))


def default_calibration() -> Calibration:
    """The shipped calibration of the highest version named 'default'."""
    found = [(int(p.stem.split("@")[1]), p) for p in builtin_calibration_files()
             if p.stem.split("@")[0] == "default"]  # fmt: skip
    if not found:
        raise CalibrationError(f"this xec ships no default calibration; {REBUILD}, and pass it "
                               "with --calibration")  # fmt: skip
    cal = load_calibration(max(found)[1])
    if f"{cal.id}.json" != max(found)[1].name:
        raise CalibrationError(f"packaged calibration {max(found)[1].name} defines {cal.id}")
    return cal
