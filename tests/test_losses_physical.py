"""Relative losses in physical units under every transform, direction losses on (theta, phi),
and the task / loss combinations refused at config time."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from xecdata.sim.kinematics import emission_angles
from xecmodel.heads import TaskHead
from xecmodel.losses import polar_to_unit
from xecmodel.tasks import TaskSpec
from xectrain.config import ConfigError, load_config

# energies (GeV) and the head's raw outputs; a 1 % error must cost 0.01 whatever the transform
E_TRUE = torch.tensor([0.0528, 0.0150, 0.0400])
E_PRED = torch.tensor([0.0528 * 1.01, 0.0150 * 0.98, 0.0400 * 1.05])
MEAN, STD = 0.04, 0.012  # standardization statistics set by hand


def _head(loss: str, transform: str, kwargs: dict | None = None) -> TaskHead:
    stats = {"mean": [MEAN], "std": [STD]} if "standardize" in transform else {}
    spec = TaskSpec("energy", loss=loss, loss_kwargs=kwargs or {}, transform=transform, **stats)
    return TaskHead(spec, in_dim=4, hidden=8)


def _raw(transform: str) -> torch.Tensor:
    """The raw head outputs (B, 1) whose physical prediction is E_PRED, by hand per transform."""
    z = {
        "identity": E_PRED,
        "log": E_PRED.log(),
        "standardize": (E_PRED - MEAN) / STD,
        "log+standardize": (E_PRED.log() - MEAN) / STD,
    }[transform]
    return z[:, None]


REL = (E_PRED - E_TRUE) / E_TRUE  # 0.01, -0.02, 0.05 by construction


def _smooth(r: torch.Tensor, beta: float) -> torch.Tensor:
    return torch.where(r.abs() < beta, 0.5 * r**2 / beta, r.abs() - 0.5 * beta)


@pytest.mark.parametrize("transform", ["identity", "log", "standardize", "log+standardize"])
@pytest.mark.parametrize(
    ("loss", "kwargs", "expected"),
    [
        ("relative_l1", {"eps": 0.0}, torch.tensor([0.01, 0.02, 0.05])),
        ("relative_mse", {"eps": 0.0}, torch.tensor([0.01, 0.02, 0.05]) ** 2),
        ("relative_smooth_l1", {"eps": 0.0, "beta": 0.03}, _smooth(REL, 0.03)),
    ],
)
def test_relative_losses_are_relative_errors_of_the_physical_value(
    transform: str, loss: str, kwargs: dict, expected: torch.Tensor
) -> None:
    head = _head(loss, transform, kwargs)
    got = head.loss(_raw(transform), E_TRUE)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-7)
    # the hand values: 1 %, 2 %, 5 % errors (smooth_l1 with beta 0.03: quadratic below 3 %)
    torch.testing.assert_close(_smooth(REL, 0.03), torch.tensor([1 / 600, 4 / 600, 0.035]))


def test_relative_loss_gradient_flows_through_the_inverse_transform() -> None:
    head = _head("relative_l1", "log+standardize")
    raw = _raw("log+standardize").requires_grad_()
    head.loss(raw, E_TRUE).sum().backward()
    # d|r|/dz = sign(r) * (E_pred / E_true) * std  (exp of the de-standardized output)
    expected = torch.sign(REL) * (E_PRED / E_TRUE) * STD
    torch.testing.assert_close(raw.grad[:, 0], expected, rtol=1e-4, atol=1e-7)


def test_angular_on_angle_is_the_angle_between_the_directions() -> None:
    true = torch.tensor([[90.0, 180.0], [60.0, 170.0], [120.0, 200.0]])  # (theta, phi) deg
    pred = torch.tensor([[90.0, 181.0], [62.0, 170.0], [120.0, 200.0]])
    spec = TaskSpec("angle", loss="angular", loss_kwargs={"eps": 0.0}, transform="identity")
    got = TaskHead(spec, in_dim=4, hidden=8).loss(pred, true)
    # by hand: 1 deg of phi at theta 90 deg, 2 deg of theta at fixed phi, and no difference
    torch.testing.assert_close(got, torch.tensor([math.radians(1.0), math.radians(2.0), 0.0]))
    std = {"mean": [90.0, 180.0], "std": [10.0, 20.0]}
    spec = TaskSpec("angle", loss="angular", transform="standardize", **std)  # type: ignore[arg-type]
    raw = (pred - torch.tensor([90.0, 180.0])) / torch.tensor([10.0, 20.0])
    got = TaskHead(spec, in_dim=4, hidden=8).loss(raw, true)
    torch.testing.assert_close(got, torch.tensor([math.radians(1.0), math.radians(2.0), 0.0]))


def test_angular_on_angle_across_phi_wrap_and_off_equator() -> None:
    # phi 359 vs 1 deg at theta 30 deg: cos psi = cos^2 30 + sin^2 30 cos 2deg
    true, pred = torch.tensor([[30.0, 1.0]]), torch.tensor([[30.0, 359.0]])
    spec = TaskSpec("angle", loss="angular", loss_kwargs={"eps": 0.0}, transform="identity")
    got = TaskHead(spec, in_dim=4, hidden=8).loss(pred, true)
    s, c = math.sin(math.radians(30)), math.cos(math.radians(30))
    expected = math.acos(c * c + s * s * math.cos(math.radians(2.0)))
    torch.testing.assert_close(got, torch.tensor([expected]), rtol=1e-3, atol=1e-6)
    cos = TaskHead(TaskSpec("angle", loss="cosine"), in_dim=4, hidden=8).loss(pred, true)
    torch.testing.assert_close(cos, torch.tensor([1.0 - math.cos(expected)]), rtol=1e-3, atol=1e-7)


def test_polar_to_unit_inverts_the_emiang_convention() -> None:
    rng = np.random.default_rng(0)
    dirs = rng.normal(size=(50, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    back = polar_to_unit(torch.from_numpy(emission_angles(dirs)))
    np.testing.assert_allclose(back.numpy(), dirs, atol=1e-12)


@pytest.mark.parametrize(
    ("task", "loss", "match"),
    [
        ("timing", "relative_l1", r"timeTruth \(ns\) can be 0 or negative"),
        ("uvwFI", "relative_mse", r"uvwTruth \(cm\) can be 0 or negative"),
        ("angle", "relative_smooth_l1", r"emiAng \(deg\) can be 0 or negative"),
        ("energy", "angular", "does not serve regression tasks"),
        ("timing", "cosine", "does not serve regression tasks"),
    ],
)
def test_ill_defined_combinations_are_refused_with_the_reason(
    task: str, loss: str, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        TaskSpec(task, loss=loss)


@pytest.mark.parametrize("transform", ["inverse", "inverse+standardize"])
def test_a_relative_loss_through_the_inverse_transform_is_refused(transform: str) -> None:
    with pytest.raises(ValueError, match=r"1/z jumps through infinity"):
        TaskSpec("energy", loss="relative_mse", transform=transform)
    TaskSpec("energy", loss="l1", transform=transform)  # a loss on z is fine


def test_config_refuses_a_relative_loss_on_time_and_takes_angular_on_angle() -> None:
    with pytest.raises(ConfigError, match=r"tasks\.timing: .*'relative_l1' divides by the true"):
        load_config("regressor", overrides=["tasks.timing.loss=relative_l1"])
    cfg = load_config("regressor", overrides=["tasks.angle.loss=angular"])
    assert cfg.tasks["angle"].loss == "angular"
    cfg = load_config(
        "regressor", overrides=["tasks.energy.loss=relative_l1", "tasks.energy.transform=log"]
    )
    assert cfg.tasks["energy"].loss == "relative_l1"
