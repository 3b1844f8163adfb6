"""Where a run is tracked, by MLflow's precedence: an explicit setting in the run configuration,
then MLflow's environment variables, then xec's embedded defaults.

    tracking URI       tracking.uri > MLFLOW_TRACKING_URI > sqlite:///mlruns.db
    experiment         tracking.experiment > MLFLOW_EXPERIMENT_NAME > MLFLOW_EXPERIMENT_ID
                       > xec-<kind>
    artifact location  tracking.artifact_location > the tracking server's own artifact root
    (new experiments)  (http/https/databricks URIs) > ./mlartifacts (local stores)

So `MLFLOW_TRACKING_URI=http://team:5000 xec train ...` logs to a team server without editing a
config, while a config that names its store keeps it whatever the environment says.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from xectrain.config import TrackingConfig

DEFAULT_URI = "sqlite:///mlruns.db"
DEFAULT_ARTIFACTS = "mlartifacts"
SERVER_SCHEMES = ("http://", "https://", "databricks")
URI_ENV, NAME_ENV, ID_ENV = "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"


@dataclass(frozen=True)
class TrackingTarget:
    """The resolved tracking URI, experiment (by name, or by id from MLFLOW_EXPERIMENT_ID) and
    artifact location of new experiments (None: the server decides), with what set each."""

    uri: str
    experiment: str | None
    experiment_id: str | None
    artifact_location: str | None
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def server(self) -> bool:
        """Whether the URI is a tracking server (which stores artifacts itself)."""
        return is_server(self.uri)

    def describe(self) -> str:
        """'sqlite:///team.db (from MLFLOW_TRACKING_URI), experiment xec-mae (default)'."""
        exp = self.experiment if self.experiment is not None else f"id {self.experiment_id}"
        return (
            f"{self.uri} (from {self.sources['uri']}), "
            f"experiment {exp} (from {self.sources['experiment']})"
        )

    def browse_hint(self) -> str:
        """How to look at the runs: the server's address, or `mlflow ui` on a local store."""
        if self.server:
            return f"open {self.uri}"
        return f"mlflow ui --backend-store-uri {self.uri}"


def is_server(uri: str) -> bool:
    return uri.startswith(SERVER_SCHEMES)


def artifact_uri(location: str) -> str:
    """A local folder becomes an absolute file URI; URIs (s3://, file:, ...) pass unchanged."""
    if "://" in location or location.startswith("file:"):
        return location
    return Path(location).resolve().as_uri()


def resolve_tracking(
    cfg: TrackingConfig, kind: str, environ: Mapping[str, str] | None = None
) -> TrackingTarget:
    """The tracking target of a `kind` run under `environ` (default: os.environ)."""
    env = os.environ if environ is None else environ
    sources: dict[str, str] = {}
    uri, sources["uri"] = _first((cfg.uri, "tracking.uri"), (env.get(URI_ENV), URI_ENV),
                                 (DEFAULT_URI, "default"))  # fmt: skip
    experiment, experiment_id = cfg.experiment, None
    sources["experiment"] = "tracking.experiment"
    if experiment is None:
        if env.get(NAME_ENV):
            experiment, sources["experiment"] = env[NAME_ENV], NAME_ENV
        elif env.get(ID_ENV):
            experiment_id, sources["experiment"] = env[ID_ENV], ID_ENV
        else:
            experiment, sources["experiment"] = f"xec-{kind}", "default"
    location, sources["artifact_location"] = cfg.artifact_location, "tracking.artifact_location"
    if location is None:
        location = None if is_server(uri) else artifact_uri(DEFAULT_ARTIFACTS)
        sources["artifact_location"] = "the server" if is_server(uri) else "default"
    else:
        location = artifact_uri(location)
    return TrackingTarget(uri, experiment, experiment_id, location, sources)


def _first(*candidates: tuple[str | None, str]) -> tuple[str, str]:
    """The first (value, source) whose value is set (not None and not empty)."""
    for value, source in candidates:
        if value:
            return value, source
    raise AssertionError("the last candidate is always set")
