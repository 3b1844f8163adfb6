"""Learning-rate schedules, EMA with warmup, weight-decay parameter groups."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from xectrain.config import TrainingConfig
from xectrain.run.ema import ModelEMA
from xectrain.run.optim import build_optimizer, param_groups
from xectrain.run.schedule import LRSchedule, build_schedule


def test_cosine_with_warmup() -> None:
    cfg = TrainingConfig(epochs=10, lr=1.0, min_lr=0.1, warmup_epochs=1, scheduler="cosine")
    s = build_schedule(cfg, steps_per_epoch=10)
    assert (s.total_steps, s.warmup_steps) == (100, 10)
    assert s.lr(0) == pytest.approx(1 / 11)  # linear warmup
    assert s.lr(9) == pytest.approx(10 / 11)
    assert s.lr(10) == pytest.approx(1.0)  # peak right after warmup
    assert s.lr(55) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 0.5)))
    assert s.lr(100) == pytest.approx(0.1) and s.lr(500) == pytest.approx(0.1)
    assert LRSchedule.from_state_dict(s.state_dict()) == s


def test_refresh_restarts_over_the_remaining_steps() -> None:
    cfg = TrainingConfig(epochs=50, lr=1.0, min_lr=0.0, warmup_epochs=2)
    s = build_schedule(cfg, steps_per_epoch=4, start_step=60, epochs=35)
    assert (s.total_steps, s.warmup_steps) == (140, 0)
    assert s.lr(60) == pytest.approx(1.0)
    assert s.lr(130) == pytest.approx(0.5)
    assert s.lr(200) == pytest.approx(0.0)


def test_onecycle_and_restarts() -> None:
    cfg = TrainingConfig(
        epochs=10, lr=1.0, min_lr=0.0, scheduler="onecycle", onecycle_pct_start=0.3
    )
    s = build_schedule(cfg, steps_per_epoch=10)
    assert s.lr(0) == pytest.approx(1 / 25)
    assert s.lr(30) == pytest.approx(1.0)
    assert s.lr(65) == pytest.approx(0.5) and s.lr(100) == pytest.approx(0.0)
    cfg = TrainingConfig(
        epochs=10, lr=1.0, min_lr=0.0, warmup_epochs=0, scheduler="cosine_restarts",
        restart_epochs=1, restart_mult=2,
    )  # fmt: skip
    s = build_schedule(cfg, steps_per_epoch=10)
    assert [s.lr(t) for t in (0, 5, 10, 20, 30)] == pytest.approx([1.0, 0.5, 1.0, 0.5, 1.0])


def test_ema_warmup_and_update() -> None:
    model = nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = ModelEMA(model, decay=0.9, warmup_steps=10)
    assert ema.decay_at(1) == pytest.approx(0.9 * (1 - math.exp(-0.1)))
    assert ema.decay_at(10_000) == pytest.approx(0.9)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)
    d = ema.decay_at(1)
    assert ema.module.weight.detach() == pytest.approx(torch.full((1, 2), 1 - d))
    assert not any(p.requires_grad for p in ema.module.parameters())
    clone = ModelEMA(nn.Linear(2, 1), 0.9, 10)
    clone.load_state_dict(ema.state_dict())
    assert clone.step == 1 and torch.equal(clone.module.weight, ema.module.weight)


class GRN(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, c))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, c))


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3)
        self.norm = nn.LayerNorm(4)
        self.grn = GRN(4)
        self.table = nn.Embedding(6, 4)
        self.pos_embed = nn.Parameter(torch.zeros(1, 6, 4))
        self.fc = nn.Linear(4, 2)
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)


def test_weight_decay_only_on_weights() -> None:
    net = Net()
    decayed, kept = param_groups(net, 0.05)
    names = {id(p): n for n, p in net.named_parameters()}
    assert sorted(names[id(p)] for p in decayed["params"]) == ["conv.weight", "fc.weight"]
    assert sorted(names[id(p)] for p in kept["params"]) == sorted(
        ["conv.bias", "norm.weight", "norm.bias", "grn.gamma", "grn.beta", "table.weight",
         "pos_embed", "fc.bias"]
    )  # fmt: skip
    assert (decayed["weight_decay"], kept["weight_decay"]) == (0.05, 0.0)
    opt = build_optimizer(net, TrainingConfig(lr=1e-3, weight_decay=0.05))
    assert sum(len(g["params"]) for g in opt.param_groups) == 10
