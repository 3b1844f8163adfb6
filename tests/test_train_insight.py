"""What the best regressor looks at and where it fails: saliency in physical units per output
component (an analytic linear case, a finite difference through the tiny model, the plot) and
the worst-event titles with every truth of the event, trained tasks or not."""

from __future__ import annotations

import contextlib
import copy
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

from xecdata.geometry import FACE_NAMES, N_SENSORS, sensor_table
from xecdata.ingest import ingest
from xecdata.loaders import open_loader
from xecdata.schemes import get_scheme
from xecdata.store import open_store
from xecmodel import TASKS, TaskSpec, create_model
from xectrain.artifacts import plot_saliency
from xectrain.artifacts.eventdisplay import event_title
from xectrain.artifacts.importance import saliency_figure
from xectrain.config import load_config
from xectrain.engine.steps import StepOps
from xectrain.evaluation.passes import validate_regressor
from xectrain.run.insight import component_gradients, input_saliency

from .model_data import events, raw_events
from .rootfiles import write_uproot
from .trainhelpers import toy_events, toy_loaders

ANGLE_STD = (10.0, 20.0)  # deg per unit of the standardized theta / phi
LOG_E_STD = 0.3


def _linear_model(seed: int = 0) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """The tiny regressor with its features replaced by the flat input and each head by one
    Linear layer: raw = W x + b, so d prediction / d x is known in closed form."""
    tasks = [
        TaskSpec("angle", transform="standardize", mean=[90.0, 0.0], std=list(ANGLE_STD)),
        TaskSpec("energy", transform="log+standardize", mean=[math.log(0.04)], std=[LOG_E_STD]),
    ]
    model = create_model("regressor", "tiny", scheme="new@1", tasks=tasks)
    model.forward_features = lambda x: x.flatten(1)  # (B, 4760, 2) -> (B, 9520)
    gen = torch.Generator().manual_seed(seed)
    weights = {}
    for name, head in model.task_heads().items():
        linear = nn.Linear(2 * N_SENSORS, head.info.dim)
        with torch.no_grad():
            linear.weight.copy_(torch.randn(head.info.dim, 2 * N_SENSORS, generator=gen) * 1e-3)
            linear.bias.zero_()
        head.mlp = linear
        weights[name] = linear.weight.detach().reshape(head.info.dim, N_SENSORS, 2)
    return model.eval(), weights


def _face_means(g: np.ndarray) -> np.ndarray:
    """(N, 4760, 2) -> (6, 2) mean |g| per face, written out face by face."""
    face = sensor_table().face
    return np.stack([np.abs(g[:, face == f]).mean(axis=(0, 1)) for f in range(len(FACE_NAMES))])


def test_gradients_of_a_linear_head_in_physical_units() -> None:
    model, w = _linear_model()
    x = events(get_scheme("new@1"), batch=3)
    grads = component_gradients(model, x)
    assert grads["angle"].shape == (3, 2, N_SENSORS, 2)
    # theta = 90 + 10 (W_theta x): d theta / dx = 10 W_theta, and phi apart with its own std
    for c, std in enumerate(ANGLE_STD):
        expected = (std * w["angle"][c]).expand(3, N_SENSORS, 2)
        torch.testing.assert_close(grads["angle"][:, c], expected, rtol=1e-5, atol=1e-9)
    # E = exp(log 0.04 + 0.3 W_E x): d E / dx = 0.3 E W_E, per event
    with torch.no_grad():
        energy = model.predict(x)["energy"][:, 0]  # (B,) GeV
    expected = LOG_E_STD * energy[:, None, None] * w["energy"][0]
    torch.testing.assert_close(grads["energy"][:, 0], expected, rtol=1e-4, atol=1e-12)

    batches = [SimpleNamespace(sensors=x[:2]), SimpleNamespace(sensors=x[2:])]
    sal = input_saliency(model, batches)
    assert list(sal) == ["angle", "energy"] and list(sal["angle"]) == ["theta", "phi"]
    for c, comp in enumerate(("theta", "phi")):
        want = _face_means((ANGLE_STD[c] * w["angle"][c]).numpy()[None])
        np.testing.assert_allclose(sal["angle"][comp], want, rtol=1e-5)
    want = _face_means(expected.numpy())
    np.testing.assert_allclose(sal["energy"]["energy"], want, rtol=1e-4)


def test_gradients_of_the_tiny_model_match_a_finite_difference() -> None:
    tasks = [
        TaskSpec("angle", transform="standardize", mean=[90.0, 0.0], std=[12.0, 25.0]),
        TaskSpec("uvwFI", transform="standardize", mean=[0.0, 0.0, 10.0], std=[15.0, 40.0, 8.0]),
    ]
    torch.manual_seed(0)
    model = create_model("regressor", "tiny", scheme="new@1", tasks=tasks).eval()
    x = events(get_scheme("new@1"), batch=2)
    grads = component_gradients(model, x)  # float32, as the saliency pass runs
    model, x = copy.deepcopy(model).double(), x.double()  # the difference in float64
    direction = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=x.dtype)
    npho, _ = raw_events(2)
    lit = torch.from_numpy((npho > 0) & (npho < 1e9))  # dark / dead sensors: sentinel kinks
    direction = direction * lit[..., None]
    h = 1e-4
    with torch.no_grad():
        up, down = model.predict(x + h * direction), model.predict(x - h * direction)
    for task, g in grads.items():
        numeric = (up[task] - down[task]) / (2 * h)  # (B, C) physical units
        analytic = (g.double() * direction[:, None]).sum(dim=(2, 3))  # (B, C)
        torch.testing.assert_close(analytic, numeric, rtol=2e-3, atol=1e-4)
        assert numeric.abs().min() > 1e-3  # the check is not trivially zero == zero


def test_saliency_figure_has_one_panel_per_component(tmp_path: Path) -> None:
    sal = {
        "angle": {"theta": np.ones((6, 2)), "phi": np.full((6, 2), 2.0)},
        "energy": {"energy": np.zeros((6, 2))},
    }
    fig = saliency_figure(sal)
    shown = [a for a in fig.axes if a.axison]
    assert [a.get_title() for a in shown] == ["angle: theta", "angle: phi", "energy: energy"]
    assert shown[1].get_ylabel() == "mean |∂phi/∂input| [deg]"
    assert shown[2].get_ylabel() == "mean |∂energy/∂input| [GeV]"
    heights = [p.get_height() for p in shown[1].patches]  # 6 npho bars, then 6 time bars
    assert heights == [2.0] * 12
    assert plot_saliency(sal, tmp_path / "s.pdf").read_bytes().startswith(b"%PDF")


def test_event_title_shows_every_truth_and_the_trained_predictions() -> None:
    truth = {
        "uvwFI": np.array([1.0, -2.25, 3.0]),
        "angle": np.array([90.0, 10.0]),
        "xyzVTX": np.array([0.5, 1.0, 2.0]),
        "energy": np.array([0.0525]),
        "timing": np.array([1e10]),  # the files' invalid marker
        "n_gamma": np.array([1]),
    }
    pred = {"angle": np.array([91.25, 9.5]), "n_gamma": np.array([0.1, 0.7, 0.1, 0.05, 0.05])}
    title = event_title(7, 42, 0.0123, truth, pred)
    assert title.split("\n") == [
        "Run 7  Event 42  loss×1000 = 12.3",
        "truth: θ, φ = 90.0, 10.0 deg, E = 52.50 MeV, timing = n/a, uvw = (1.0, -2.2, 3.0) cm, "
        "nγ = 1,",
        "    xyzVTX = (0.5, 1, 2)",
        "pred: θ, φ = 91.2, 9.5 deg, nγ = 1 (p = 0.70)",
    ]
    assert event_title(1, 2, 0.5, {}, {}) == "Run 1  Event 2  loss×1000 = 500"


def _angle_only_model() -> nn.Module:
    spec = TaskSpec("angle", transform="standardize", mean=[90.0, 0.0], std=[12.0, 25.0])
    torch.manual_seed(0)
    return create_model("regressor", "tiny", scheme="new@1", tasks=[spec]).eval()


def test_worst_events_of_an_angle_model_carry_the_store_truth(tmp_path: Path) -> None:
    write_uproot(tmp_path / "a.root", 128, seed=1)
    store = tmp_path / "s.xec.zarr"
    ingest([tmp_path / "a.root"], store, schemes=["new@1"], chunk_events=32, workers=1,
           progress=False, val_fraction=0.5)  # fmt: skip
    ops = StepOps(load_config("regressor"))  # angle only
    assert ops.targets() == ["emiAng"]
    loader = open_loader(store, scheme="new@1", split="val", batch_size=16, shuffle=False,
                         drop_last=False, targets=["emiAng", "run", "event"])  # fmt: skip
    ev = validate_regressor(_angle_only_model(), ops, loader, len(loader), contextlib.nullcontext,
                            get_scheme("new@1"), keep_worst=3)  # fmt: skip
    st = open_store(store)
    val = [i for a, b in st.split("val") for i in range(a, b)]
    assert len(ev.worst) == 3 and ev.worst[0].loss >= ev.worst[-1].loss
    task_of = {info.branch: task for task, info in TASKS.items()}
    for rec in ev.worst:
        assert rec.index in val
        assert rec.event == int(st.read_array("event", rec.index, rec.index + 1)[0])
        assert list(rec.pred) == ["angle"]
        want = {task_of.get(name, name): st.read_array(name, rec.index, rec.index + 1)[0]
                for name, kind in st.arrays.items() if kind == "truth"}  # fmt: skip
        assert set(rec.truth) == set(want) >= {"energy", "uvwFI", "timing", "xyzTruth"}
        for key, value in want.items():
            np.testing.assert_allclose(np.ravel(rec.truth[key]), np.ravel(value), rtol=1e-6)
    title = event_title(rec.run, rec.event, rec.loss, rec.truth, rec.pred)
    energy = float(np.ravel(want["energy"])[0])
    assert f"E = {1000 * energy:.2f} MeV" in title and "uvw = (" in title


def test_worst_events_take_untrained_truth_the_loader_delivers() -> None:
    loaders = toy_loaders(8, 16)  # in memory: every branch, no store behind it
    ops = StepOps(load_config("regressor"))
    ev = validate_regressor(_angle_only_model(), ops, loaders.val, loaders.n_val,
                            contextlib.nullcontext, get_scheme("new@1"), keep_worst=2)  # fmt: skip
    events = toy_events(16, 100)
    for rec in ev.worst:
        row = rec.index - 10_000  # the toy val loader's index offset
        assert set(rec.truth) == {"angle", "energy", "timing", "uvwFI"}
        np.testing.assert_allclose(rec.truth["energy"], events["energyTruth"][row], rtol=1e-6)
        np.testing.assert_allclose(rec.truth["uvwFI"], events["uvwTruth"][row], rtol=1e-6)
        np.testing.assert_allclose(rec.truth["angle"], events["emiAng"][row], rtol=1e-6)
