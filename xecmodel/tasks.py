"""The task table (defined once here) and `TaskSpec`, one enabled task of a regressor.

task      outputs  target branch  units   kind             default loss
angle     2        emiAng         deg     regression       smooth_l1    (theta, phi): polar
energy    1        energyTruth    GeV     regression       l1           always > 0: positive
timing    1        timeTruth      ns      regression       l1
uvwFI     3        uvwTruth       cm      regression       mse          (u, v, w)
angleVec  3        emiVec         1       direction        angular      (x, y, z) unit vector
n_gamma   5        nGamma         count   classification   cross_entropy (classes 0..4)

Only a `positive` task takes the relative losses (they divide by the true value; a time, a
position or an angle has a conventional zero and takes any sign). A `polar` task (theta, phi in
degrees) takes the direction losses, computed between the unit vectors of both directions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from xecmodel.losses import CLASSIFICATION, DIRECTION, PHYSICAL, REGRESSION, VECTORS, get_loss
from xecmodel.transforms import parse_transforms


@dataclass(frozen=True)
class TaskInfo:
    """Static facts of a task: output size, target branch, units, labels, kind; `positive`: the
    quantity is > 0 in every event; `polar`: it is a direction as (theta, phi) in degrees."""

    name: str
    dim: int
    branch: str
    units: str
    labels: tuple[str, ...]
    kind: str
    default_loss: str
    positive: bool = False
    polar: bool = False

    @property
    def target_dim(self) -> int:
        """Columns of the target (1 class index for classification)."""
        return 1 if self.kind == CLASSIFICATION else self.dim


TASKS: dict[str, TaskInfo] = {
    t.name: t
    for t in (
        TaskInfo(
            "angle", 2, "emiAng", "deg", ("theta", "phi"), REGRESSION, "smooth_l1", polar=True
        ),
        TaskInfo("energy", 1, "energyTruth", "GeV", ("energy",), REGRESSION, "l1", positive=True),
        TaskInfo("timing", 1, "timeTruth", "ns", ("time",), REGRESSION, "l1"),
        TaskInfo("uvwFI", 3, "uvwTruth", "cm", ("u", "v", "w"), REGRESSION, "mse"),
        TaskInfo("angleVec", 3, "emiVec", "1", ("x", "y", "z"), DIRECTION, "angular"),
        TaskInfo(
            "n_gamma",
            5,
            "nGamma",
            "count",
            tuple(f"p{i}" for i in range(5)),
            CLASSIFICATION,
            "cross_entropy",
        ),
    )
}


def task_info(name: str) -> TaskInfo:
    """The TaskInfo of `name`; raises listing the known tasks."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose from {list(TASKS)}")
    return TASKS[name]


@dataclass
class TaskSpec:
    """One enabled task: loss by name (+ keyword options), weight in the total, transform.

    `mean` / `std` are fitted standardization statistics (set by fit_transforms or given
    here to rebuild a model); `transform_eps` is the eps of the inverse transform.
    """

    name: str
    loss: str | None = None
    loss_kwargs: dict[str, Any] = field(default_factory=dict)
    weight: float = 1.0
    transform: str = "identity"
    transform_eps: float = 0.0
    mean: list[float] | None = None
    std: list[float] | None = None

    def __post_init__(self) -> None:
        info = task_info(self.name)
        if self.loss is None:
            self.loss = info.default_loss
        where = f"task {self.name}"
        loss = get_loss(self.loss, self.loss_kwargs, where=where)
        if info.kind not in loss.kinds and not (loss.space == VECTORS and info.polar):
            raise ValueError(f"{where}: loss {self.loss!r} does not serve {info.kind} tasks")
        if loss.space == PHYSICAL and not info.positive:
            raise ValueError(
                f"{where}: loss {self.loss!r} divides by the true value, and {info.branch} "
                f"({info.units}) can be 0 or negative (its zero is a convention), so the "
                "relative error is undefined; use l1, smooth_l1, huber or mse"
            )
        try:
            parse_transforms(self.transform, info.dim)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
        if info.kind != REGRESSION and self.transform != "identity":
            raise ValueError(f"{where}: a {info.kind} task takes only the identity transform")
        if not self.weight >= 0:
            raise ValueError(f"{where}: weight must be >= 0, got {self.weight}")

    @property
    def info(self) -> TaskInfo:
        return TASKS[self.name]

    @property
    def n_outputs(self) -> int:
        """Head outputs: dim, or 2 dim for gaussian_nll (mean and log-variance)."""
        return self.info.dim * get_loss(self.loss or "").outputs_per_dim

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaskSpec:
        return cls(**d)


def as_specs(tasks: list[TaskSpec | str | dict] | None) -> list[TaskSpec]:
    """Normalize a task list (specs, names or dicts); default: angle only. No duplicates."""
    specs = [
        t if isinstance(t, TaskSpec) else TaskSpec(t) if isinstance(t, str) else TaskSpec(**t)
        for t in (tasks if tasks else ["angle"])
    ]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate tasks in {names}")
    return specs
