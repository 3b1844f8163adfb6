"""Task table, target transforms (round trips, fitting) and named losses against formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from xecmodel.heads import TaskHead
from xecmodel.losses import LOSSES, compute_loss, get_loss
from xecmodel.tasks import TASKS, TaskSpec, as_specs
from xecmodel.transforms import TargetTransform

P = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
T = torch.tensor([[2.0, -1.0], [0.5, 1.0]])


def test_task_table() -> None:
    assert {n: (t.dim, t.branch, t.units) for n, t in TASKS.items()} == {
        "angle": (2, "emiAng", "deg"),
        "energy": (1, "energyTruth", "GeV"),
        "timing": (1, "timeTruth", "ns"),
        "uvwFI": (3, "uvwTruth", "cm"),
        "angleVec": (3, "emiVec", "1"),
        "n_gamma": (5, "nGamma", "count"),
    }


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("identity", [[-3.0], [0.0], [7.5]]),
        ("log", [[0.015], [1.0], [52.8]]),
        ("inverse", [[-4.0], [-0.25], [0.0], [0.5], [120.0]]),
        ("standardize", [[-3.0], [0.0], [7.5]]),
        ("log+standardize", [[0.015], [1.0], [52.8]]),
        ("inverse+standardize", [[-4.0], [-0.25], [0.5], [120.0]]),
    ],
)
@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_transforms_round_trip(name: str, values: list, eps: float) -> None:
    y = torch.tensor(values, dtype=torch.float32)
    t = TargetTransform(name, 1, eps=eps)
    t.fit(y.numpy())
    z = t(y)
    assert torch.isfinite(z).all()
    torch.testing.assert_close(t.inverse(z), y, rtol=1e-5, atol=1e-6)
    if name.startswith("inverse"):
        base = torch.where(y == 0, 0.0, torch.sign(y) / (y.abs() + eps))
        expected = (base - t.mean) / t.std if "standardize" in name else base
        torch.testing.assert_close(z, expected)
    if "standardize" in name:
        assert abs(float(z.mean())) < 1e-5 and abs(float(z.std(unbiased=False)) - 1) < 1e-5


def test_transform_fitting_errors_and_unfitted_use() -> None:
    with pytest.raises(ValueError, match="positive targets"):
        TargetTransform("log", 1).fit(np.array([[1.0], [-2.0]]), where="task energy")
    head = TaskHead(TaskSpec("energy", transform="standardize"), in_dim=4, hidden=8)
    with pytest.raises(RuntimeError, match="fit_transforms"):
        head.loss(torch.zeros(2, 1), torch.ones(2))
    state = TargetTransform("standardize", 2, mean=[1.0, 2.0], std=[3.0, 4.0]).state_dict()
    fresh = TargetTransform("standardize", 2)
    fresh.load_state_dict(state)
    assert fresh.is_fitted and fresh.mean.tolist() == [1.0, 2.0]


def _smooth(d: torch.Tensor, beta: float) -> torch.Tensor:
    a = d.abs()
    return torch.where(a < beta, 0.5 * a**2 / beta, a - 0.5 * beta)


@pytest.mark.parametrize(
    ("name", "kwargs", "expected"),
    [
        ("l1", {}, torch.tensor([(1 + 1) / 2, (0 + 2) / 2])),
        ("mse", {}, torch.tensor([(1 + 1) / 2, (0 + 4) / 2])),
        ("l2", {}, torch.tensor([1.0, 2.0])),
        ("smooth_l1", {"beta": 0.5}, _smooth(P - T, 0.5).mean(-1)),
        ("huber", {"delta": 0.5}, (0.5 * _smooth(P - T, 0.5)).mean(-1)),
        ("relative_l1", {"eps": 0.0}, torch.tensor([(0.5 + 1.0) / 2, (0 + 2.0) / 2])),
        ("relative_mse", {"eps": 0.0}, torch.tensor([(0.25 + 1.0) / 2, (0 + 4.0) / 2])),
        (
            "relative_smooth_l1",
            {"beta": 1.0, "eps": 0.0},
            _smooth((P - T) / T.abs(), 1.0).mean(-1),
        ),
    ],
)
def test_regression_losses_match_their_formulas(
    name: str, kwargs: dict, expected: torch.Tensor
) -> None:
    torch.testing.assert_close(compute_loss(name, P, T, kwargs), expected)


def test_gaussian_nll_angular_cosine_cross_entropy_formulas() -> None:
    pred = torch.tensor([[1.0, math.log(4.0)]])  # mu = 1, log sigma^2 = log 4
    nll = compute_loss("gaussian_nll", pred, torch.tensor([[3.0]]))
    torch.testing.assert_close(nll, torch.tensor([0.5 * (math.log(4.0) + 4.0 / 4.0)]))
    p = torch.tensor([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
    t = torch.tensor([[0.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    angle = compute_loss("angular", p, t, {"eps": 0.0})
    torch.testing.assert_close(angle, torch.tensor([math.pi / 2, math.pi / 4, 0.0]))
    cos = compute_loss("cosine", p, t)
    torch.testing.assert_close(cos, torch.tensor([1.0, 1.0 - math.sqrt(0.5), 0.0]))
    logits = torch.tensor([[2.0, 0.0, 0.0, 0.0, 0.0]])
    ce = compute_loss("cross_entropy", logits, torch.tensor([0]))
    torch.testing.assert_close(ce, torch.tensor([-2.0 + math.log(math.exp(2.0) + 4.0)]))


def test_angular_gradient_is_finite_at_zero_angle() -> None:
    p = torch.tensor([[0.0, 0.0, 2.0]], requires_grad=True)
    compute_loss("angular", p, torch.tensor([[0.0, 0.0, 1.0]])).sum().backward()
    assert torch.isfinite(p.grad).all()


def test_named_losses_never_fall_back() -> None:
    with pytest.raises(ValueError, match=r"unknown loss 'smoothl1'.*smooth_l1"):
        get_loss("smoothl1")
    with pytest.raises(ValueError, match="takes no option"):
        TaskSpec("angle", loss="l1", loss_kwargs={"beta": 1.0})
    with pytest.raises(ValueError, match="does not serve"):
        TaskSpec("n_gamma", loss="mse")
    with pytest.raises(ValueError, match="unknown task"):
        TaskSpec("theta")
    with pytest.raises(ValueError, match="duplicate"):
        as_specs(["angle", "angle"])
    assert set(LOSSES) >= {"smooth_l1", "huber", "l1", "mse", "l2", "gaussian_nll", "angular"}


def test_head_predicts_physical_units_and_weights_losses() -> None:
    spec = TaskSpec("energy", loss="gaussian_nll", transform="log")
    head = TaskHead(spec, in_dim=4, hidden=8)
    raw = torch.tensor([[math.log(0.05), 0.0]])  # mean log E, log variance
    torch.testing.assert_close(head.predict(raw), torch.tensor([[0.05]]))
    assert head.loss(raw, torch.tensor([0.05])).item() == pytest.approx(0.0, abs=1e-6)
    vec = TaskHead(TaskSpec("angleVec"), 4, 8).predict(torch.tensor([[3.0, 0.0, 4.0]]))
    torch.testing.assert_close(vec, torch.tensor([[0.6, 0.0, 0.8]]))


def test_one_transform_per_component() -> None:
    """uvwFI with log+standardize on w only: u, v standardized, w = log then standardized."""
    rng = np.random.default_rng(3)
    y = np.stack([rng.normal(0, 10, 500), rng.normal(5, 30, 500), rng.exponential(4, 500) + 0.1], 1)
    t = TargetTransform("standardize,standardize,log+standardize", 3)
    assert t.base == "mixed" and t.standardize and t.needs_fit
    t.fit(y)
    z = t(torch.from_numpy(y))
    want_w = (np.log(y[:, 2]) - np.log(y[:, 2]).mean()) / np.log(y[:, 2]).std()
    np.testing.assert_allclose(z[:, 2].numpy(), want_w, rtol=1e-5, atol=1e-6)  # fp32 stats
    want_u = (y[:, 0] - y[:, 0].mean()) / y[:, 0].std()
    np.testing.assert_allclose(z[:, 0].numpy(), want_u, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(t.inverse(z), torch.from_numpy(y))
    partial = TargetTransform("identity,identity,log", 3)  # no standardization: nothing fitted
    partial.fit(y)
    assert partial.mean.tolist() == [0, 0, 0] and partial.is_fitted
    torch.testing.assert_close(
        partial(torch.from_numpy(y))[:, 2], torch.log(torch.from_numpy(y[:, 2]))
    )

    bad = y.copy()
    bad[7, 2] = -1.0
    with pytest.raises(ValueError, match=r"task uvwFI \(component 2\): the log transform"):
        t.fit(bad, where="task uvwFI")
    with pytest.raises(ValueError, match="names 2 transforms for 3 components"):
        TaskSpec("uvwFI", transform="log,standardize")
    with pytest.raises(ValueError, match="unknown target transform 'lg'"):
        TaskSpec("uvwFI", transform="standardize,lg,log")
