"""Saliency in physical units per output component: an analytic linear case, a finite
difference through the tiny model, and the plot."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

from xecdata.geometry import FACE_NAMES, N_SENSORS, sensor_table
from xecdata.schemes import get_scheme
from xecmodel import TaskSpec, create_model
from xectrain.artifacts import plot_saliency
from xectrain.artifacts.importance import saliency_figure
from xectrain.insight import component_gradients, input_saliency

from .model_data import events, raw_events

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
