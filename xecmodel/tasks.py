"""`TaskSpec`, one enabled task of a regressor: loss, weight and target transform of an entry
of the task catalogue (`xecdata.tasks`: name, truth branch, dims, units, labels, kind).

Only a `positive` task takes the relative losses (they divide by the true value; a time, a
position or an angle has a conventional zero and takes any sign). A `polar` task (theta, phi in
degrees) takes the direction losses, computed between the unit vectors of both directions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from xecdata.tasks import DEFAULT_TASK, REGRESSION, TASKS, Task, get_task
from xecmodel.losses import PHYSICAL, VECTORS, get_loss
from xecmodel.transforms import parse_transforms

__all__ = ["TASKS", "Task", "TaskSpec", "as_specs"]


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
        info = get_task(self.name)
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
            parts = parse_transforms(self.transform, info.dim)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
        if loss.space == PHYSICAL and any(base == "inverse" for base, _ in parts):
            raise ValueError(
                f"{where}: loss {self.loss!r} compares physical values, and the inverse "
                "transform's prediction 1/z jumps through infinity where the head's output "
                "crosses 0; use the log or standardize transform with it"
            )
        if info.kind != REGRESSION and self.transform != "identity":
            raise ValueError(f"{where}: a {info.kind} task takes only the identity transform")
        if not self.weight >= 0:
            raise ValueError(f"{where}: weight must be >= 0, got {self.weight}")

    @property
    def info(self) -> Task:
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
    """Normalize a task list (specs, names or dicts); default: DEFAULT_TASK (angle) only. No
    duplicates."""
    specs = [
        t if isinstance(t, TaskSpec) else TaskSpec(t) if isinstance(t, str) else TaskSpec(**t)
        for t in (tasks if tasks else [DEFAULT_TASK])
    ]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate tasks in {names}")
    return specs
