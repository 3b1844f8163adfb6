"""The task catalogue (xecdata.tasks): its entries hold together, registration refuses clashes,
and a registered task is seen by every reader of the catalogue."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from xecdata import tasks as catalogue
from xecdata.rootio import reco_branches, truth_branches
from xecdata.tasks import TASKS, Display, Reweight, Task, get_task, register_task, reweight_task

PROBE = Task("probe", "regression", "probeTruth", 1, "mm", ("probe",), ("probe",),
             Display("p", "cm", 0.1, 2), "l1", "scalar", reco="probeReco",
             reweight=Reweight("probe", (7,)), plot="scalar")  # fmt: skip


@pytest.fixture
def probe() -> Iterator[Task]:
    """PROBE registered for one test, then removed."""
    register_task(PROBE)
    yield PROBE
    TASKS.pop(PROBE.name)


def test_builtin_entries() -> None:
    assert list(TASKS) == ["angle", "energy", "timing", "uvwFI", "angleVec", "n_gamma"]
    for t in TASKS.values():
        t.check()
    assert get_task("uvwFI").branch == "uvwTruth" and get_task("uvwFI").reco == "uvwRecoFI"
    assert get_task("n_gamma").target_dim == 1 and get_task("n_gamma").dim == 5
    assert reweight_task("uvw").name == "uvwFI" and reweight_task("uvwFI").name == "uvwFI"
    assert catalogue.task_of_branch("energyReco") is TASKS["energy"]
    assert catalogue.task_of_branch("xyzTruth") is None
    with pytest.raises(ValueError, match=r"unknown task 'angel'; choose from angle, energy"):
        get_task("angel")
    with pytest.raises(ValueError, match=r"reweight: unknown task 'n_gamma'; known: angle"):
        reweight_task("n_gamma")


def test_display_format() -> None:
    assert TASKS["energy"].display.format([0.0528]) == "E = 52.80 MeV"
    assert TASKS["uvwFI"].display.format([1, -2, 3.04]) == "uvw = (1.0, -2.0, 3.0) cm"
    assert TASKS["angle"].display.format([90, 10]) == "θ, φ = 90.0, 10.0 deg"
    assert TASKS["angleVec"].display.format([1, 0, 0]) == "dir = (1.000, 0.000, 0.000)"


def test_registration_checks_and_refuses_clashes() -> None:
    with pytest.raises(ValueError, match="task 'angle' is already registered"):
        register_task(TASKS["angle"])
    with pytest.raises(ValueError, match=r"\['uvw'\] already name\(s\) task\(s\) \['uvwFI'\]"):
        register_task(replace(PROBE, name="uvw"))
    with pytest.raises(ValueError, match=r"task 'probe': 2 labels for 1 outputs"):
        register_task(replace(PROBE, labels=("a", "b")))
    with pytest.raises(ValueError, match=r"metrics 'fancy' is not one of angle, direction"):
        register_task(replace(PROBE, metrics="fancy"))
    with pytest.raises(ValueError, match=r"a direction task takes only the identity transform"):
        register_task(replace(PROBE, kind="direction"))
    with pytest.raises(ValueError, match=r"reweight bins \(7, 7\) need one count per truth"):
        register_task(replace(PROBE, reweight=Reweight("probe", (7, 7))))
    assert "probe" not in TASKS


def test_a_registered_task_is_kept_by_ingestion(probe: Task) -> None:
    assert list(TASKS)[-1] == "probe"
    assert "probeTruth" in truth_branches() and "probeReco" in reco_branches()
    assert truth_branches()[-2:] == ("xyzTruth", "xyzVTX")
    assert catalogue.task_of_branch("probeReco") is probe
    wider = register_task(replace(probe, display=Display("p", "mm", digits=0)), replace=True)
    assert TASKS["probe"] is wider and wider.display.format([12.3]) == "p = 12 mm"
