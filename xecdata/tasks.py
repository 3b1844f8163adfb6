"""The task catalogue: every fact of a regressor task, defined once here and read by the ROOT
reader, reweighting, the model heads, losses, metrics, artifacts, plots and the CLI.

task      kind            truth        dim units  components  reco        reweight       plot
angle     regression      emiAng       2   deg    theta, phi  emiAngReco  angle (20, 20) angle
energy    regression      energyTruth  1   GeV    energy      energyReco  energy (30)    energy
timing    regression      timeTruth    1   ns     timing      timeReco    timing (30)    timing
uvwFI     regression      uvwTruth     3   cm     u, v, w     uvwRecoFI   uvw (10,10,10) position
angleVec  direction       emiVec       3   1      x, y, z     (direction xyzVTX -> xyzRecoFI)
n_gamma   classification  nGamma       5   count  n_gamma     -           -              -

The angle is `polar` ((theta, phi): direction losses apply), the energy `positive` (relative
losses apply). This module holds data only (no torch): behaviour is attached by name
elsewhere. The loss is a name in `xecmodel.losses.LOSSES`, the transform a spec of
`xecmodel.transforms`, `metrics` a family in `METRIC_FAMILIES` (functions in
`xectrain.evaluation.metrics`), `plot` a kind in `PLOT_KINDS` (functions in
`xectrain.artifacts.regressor`). A new task is one `register_task(Task(...))`; every reader,
head, metric and artifact then serves it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

REGRESSION, DIRECTION, CLASSIFICATION = "regression", "direction", "classification"
KINDS: tuple[str, ...] = (REGRESSION, DIRECTION, CLASSIFICATION)
DEFAULT_TASK = "angle"  # the task a regressor trains when none is chosen
# metric families: angle (theta/phi, opening angle), direction (unit vectors), position (u, v,
# w), scalar (residual bias/rms/skew/68 %/core sigma, named <task>_*), relative (scalar plus
# the same of (pred - true) / true, <task>_rel_*), accuracy (<task>_accuracy)
METRIC_FAMILIES: tuple[str, ...] = (
    "angle", "direction", "position", "scalar", "relative", "accuracy",
)  # fmt: skip
# resolution plots: one PDF layout per kind; "scalar" is a generic residual plot in the task's
# units; None: no plot
PLOT_KINDS: tuple[str, ...] = ("angle", "energy", "timing", "position", "scalar")
# how a task's real-data reference is derived when its reco branch is absent: "vector" is the
# unit vector from xyzVTX to xyzRecoFI, "angles" its emission angles (theta, phi) in degrees
RECO_DERIVATIONS: tuple[str, ...] = ("vector", "angles")


@dataclass(frozen=True)
class Display:
    """How an event display writes the task's value: `symbol = value units`, values times
    `scale` (task units -> display units) with `digits` decimals."""

    symbol: str
    units: str = ""
    scale: float = 1.0
    digits: int = 3

    def format(self, values: Sequence[float]) -> str:
        """E.g. `E = 52.80 MeV`, `uvw = (1.0, -2.0, 3.0) cm`, `θ, φ = 90.0, 10.0 deg`: a
        multi-valued quantity is parenthesised unless its symbol names each value."""
        body = ", ".join(f"{self.scale * float(v):.{self.digits}f}" for v in values)
        if len(values) > 1 and "," not in self.symbol:
            body = f"({body})"
        return f"{self.symbol} = {body}" + (f" {self.units}" if self.units else "")


@dataclass(frozen=True)
class Reweight:
    """Histogram reweighting of a task: its name in `xec reweight --task` and in the loaders'
    ReweightConfig (`key`), and the default bins per truth component."""

    key: str
    bins: tuple[int, ...]


@dataclass(frozen=True)
class Task:
    """One task of the regressor: what it predicts, from which truth, in which units, and how
    it is trained, evaluated, compared with the conventional reconstruction and shown."""

    name: str
    """Task name (config key `tasks.<name>`, output `pred_<name>`, CSV `predictions_<name>_*`)."""
    kind: str
    """regression, direction (unit vector) or classification."""
    branch: str
    """Truth branch of the input files and the store (the training target)."""
    dim: int
    """Outputs per event: values (regression, direction) or classes (classification)."""
    units: str
    """Units of the truth branch, the predictions and the metrics."""
    components: tuple[str, ...]
    """Column names of the prediction CSVs and validation ROOT file: true_<c>, pred_<c>
    (one per value; a classification task has one, the class)."""
    labels: tuple[str, ...]
    """One label per model output (ONNX metadata, saliency maps); classes: p0, p1, ..."""
    display: Display
    """How event displays write the value."""
    default_loss: str
    """Loss name of xecmodel.losses used when the configuration names none."""
    metrics: str
    """Metric family (METRIC_FAMILIES)."""
    transform: str = "standardize"
    """Default target transform of the run configuration (identity for non-regression)."""
    reco: str | None = None
    """Branch of the conventional reconstruction of the same quantity, in `units`."""
    reco_derived: str | None = None
    """Without the `reco` branch: how the reco reference is derived (RECO_DERIVATIONS)."""
    reweight: Reweight | None = None
    """Histogram reweighting of the task's truth; None: the task cannot be reweighted."""
    plot: str | None = None
    """Resolution plot kind (PLOT_KINDS); None: no plot."""
    positive: bool = False
    """The quantity is > 0 in every event (only then do the relative losses apply)."""
    polar: bool = False
    """A direction as (theta, phi) in degrees (the direction losses then apply)."""

    @property
    def target_dim(self) -> int:
        """Columns of the target: the class index for classification, else `dim`."""
        return 1 if self.kind == CLASSIFICATION else self.dim

    def check(self) -> None:
        """Raise ValueError naming the entry and field when the facts do not fit together."""
        where = f"task {self.name!r}"
        if not self.name.isidentifier():
            raise ValueError(f"{where}: the name must be an identifier (letters, digits, _)")
        if self.kind not in KINDS:
            raise ValueError(f"{where}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.dim < 1:
            raise ValueError(f"{where}: dim must be >= 1, got {self.dim}")
        if len(self.labels) != self.dim:
            raise ValueError(f"{where}: {len(self.labels)} labels for {self.dim} outputs")
        if len(self.components) != self.target_dim:
            raise ValueError(f"{where}: {len(self.components)} components for a target of "
                             f"{self.target_dim} value(s)")  # fmt: skip
        if self.metrics not in METRIC_FAMILIES:
            raise ValueError(f"{where}: metrics {self.metrics!r} is not one of "
                             f"{', '.join(METRIC_FAMILIES)}")  # fmt: skip
        if self.plot is not None and self.plot not in PLOT_KINDS:
            raise ValueError(f"{where}: plot {self.plot!r} is not one of {', '.join(PLOT_KINDS)}")
        if self.reco_derived is not None and self.reco_derived not in RECO_DERIVATIONS:
            raise ValueError(f"{where}: reco_derived {self.reco_derived!r} is not one of "
                             f"{', '.join(RECO_DERIVATIONS)}")  # fmt: skip
        if self.kind != REGRESSION and self.transform != "identity":
            raise ValueError(f"{where}: a {self.kind} task takes only the identity transform")
        if self.polar and (self.kind != REGRESSION or self.dim != 2):
            raise ValueError(f"{where}: a polar task is a regression of (theta, phi), dim 2")
        if self.reweight is not None and len(self.reweight.bins) != self.target_dim:
            raise ValueError(f"{where}: reweight bins {self.reweight.bins} need one count per "
                             f"truth component ({self.target_dim})")  # fmt: skip


TASKS: dict[str, Task] = {}
"""The registry, in registration order (the order of configs, outputs and displays)."""


def _names(task: Task) -> set[str]:
    """The names a user may call the task by: its name and its reweighting key."""
    return {task.name} | ({task.reweight.key} if task.reweight else set())


def register_task(task: Task, replace: bool = False) -> Task:
    """Add `task` to the catalogue (checked first). A registered name raises unless `replace`;
    a name or reweighting key used by another task always raises."""
    task.check()
    if task.name in TASKS and not replace:
        raise ValueError(f"task {task.name!r} is already registered; choose another name")
    others = {n: t.name for t in TASKS.values() if t.name != task.name for n in _names(t)}
    clash = sorted(_names(task) & others.keys())
    if clash:
        raise ValueError(f"task {task.name!r}: {clash} already name(s) task(s) "
                         f"{sorted({others[n] for n in clash})}; choose another")  # fmt: skip
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    """The entry of `name`; raises listing the registered tasks."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose from {', '.join(TASKS)}")
    return TASKS[name]


def reweight_task(key: str) -> Task:
    """The task reweighted under `key` (its reweighting key or its name)."""
    for t in TASKS.values():
        if t.reweight is not None and key in (t.reweight.key, t.name):
            return t
    known = [t.reweight.key for t in TASKS.values() if t.reweight is not None]
    raise ValueError(f"reweight: unknown task {key!r}; known: {', '.join(known)}")


def task_of_branch(branch: str) -> Task | None:
    """The first task whose truth or reco branch is `branch`, None if there is none."""
    return next((t for t in TASKS.values() if branch in (t.branch, t.reco)), None)


def task_branches() -> tuple[str, ...]:
    """Truth branches of every task, in catalogue order, without repeats."""
    return tuple(dict.fromkeys(t.branch for t in TASKS.values()))


class TaskNames(Sequence[str]):
    """A live view of the registered task names (all, or only the reweightable ones), for
    settings checked against the catalogue when they are read, not when they are defined."""

    def __init__(self, reweightable: bool = False) -> None:
        self.reweightable = reweightable

    def _names(self) -> tuple[str, ...]:
        return tuple(n for n, t in TASKS.items() if t.reweight or not self.reweightable)

    def __getitem__(self, i: int) -> str:  # type: ignore[override]
        return self._names()[i]

    def __len__(self) -> int:
        return len(self._names())

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __repr__(self) -> str:
        return repr(self._names())


def _builtins() -> tuple[Task, ...]:
    angle_reweight, uvw_reweight = Reweight("angle", (20, 20)), Reweight("uvw", (10, 10, 10))
    return (
        Task("angle", REGRESSION, "emiAng", 2, "deg", ("theta", "phi"), ("theta", "phi"),
             Display("θ, φ", "deg", digits=1), "smooth_l1", "angle", reco="emiAngReco",
             reco_derived="angles", reweight=angle_reweight, plot="angle", polar=True),
        Task("energy", REGRESSION, "energyTruth", 1, "GeV", ("energy",), ("energy",),
             Display("E", "MeV", 1000.0, 2), "l1", "relative", reco="energyReco",
             reweight=Reweight("energy", (30,)), plot="energy", positive=True),
        Task("timing", REGRESSION, "timeTruth", 1, "ns", ("timing",), ("time",),
             Display("t", "ns", digits=3), "l1", "scalar", reco="timeReco",
             reweight=Reweight("timing", (30,)), plot="timing"),
        Task("uvwFI", REGRESSION, "uvwTruth", 3, "cm", ("u", "v", "w"), ("u", "v", "w"),
             Display("uvw", "cm", digits=1), "mse", "position", reco="uvwRecoFI",
             reweight=uvw_reweight, plot="position"),
        Task("angleVec", DIRECTION, "emiVec", 3, "1", ("x", "y", "z"), ("x", "y", "z"),
             Display("dir", digits=3), "angular", "direction", transform="identity",
             reco_derived="vector"),
        Task("n_gamma", CLASSIFICATION, "nGamma", 5, "count", ("n_gamma",),
             tuple(f"p{i}" for i in range(5)), Display("nγ", digits=0), "cross_entropy",
             "accuracy", transform="identity"),
    )  # fmt: skip


for _task in _builtins():
    register_task(_task)
