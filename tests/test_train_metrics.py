"""Metrics against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from xecdata.geometry import N_SENSORS
from xectrain.evaluation.metrics import (
    abs_q68,
    angle_metrics,
    binned_width,
    calo_resolution,
    direction_from_angles,
    fit_calo_resolution,
    gaussian_core,
    half_width_68,
    opening_angle_deg,
    position_metrics,
    residual_stats,
    task_metrics,
    wrap_degrees,
)
from xectrain.evaluation.recon_metrics import (
    MaskedErrorAccumulator,
    actual_mask_ratio,
    element_loss,
)


def test_elementary_statistics() -> None:
    assert wrap_degrees(np.array([358.0, -190.0, 10.0]))[:3] == pytest.approx([-2.0, 170.0, 10.0])
    assert half_width_68(np.arange(101.0)) == pytest.approx(34.135)
    assert abs_q68(np.arange(-50.0, 51.0)) == pytest.approx(34.0)
    bias, rms, skew = residual_stats(np.array([1.0, 2.0, 3.0, 10.0]))
    assert bias == 4.0
    assert rms == pytest.approx(np.sqrt(12.5))
    assert skew == pytest.approx(45.0 / 12.5**1.5)


def test_opening_angle_and_angle_metrics() -> None:
    # four events on the equator (theta = 90): phi offsets 1..4 deg give psi = 1..4 deg
    true = np.array([[90.0, 0.0], [90.0, 179.0], [90.0, 30.0], [90.0, -60.0]])
    pred = true + np.array([[0.0, 1.0], [0.0, 2.0], [0.0, -3.0], [0.0, 4.0]])
    pred[1, 1] = -179.0  # 179 + 2 crosses the seam: residual must still be +2
    m = angle_metrics(pred, true)
    psi = np.radians([1.0, 2.0, 3.0, 4.0])
    assert m["cos_loss"] == pytest.approx(np.mean(1 - np.cos(psi)))
    assert m["angle_resolution_68pct"] == pytest.approx(3.04)  # 3 + 0.04 * (4 - 3)
    assert m["phi_bias"] == pytest.approx(1.0)  # (1 + 2 - 3 + 4) / 4
    assert m["theta_bias"] == 0.0 and m["theta_rms"] == 0.0
    v = direction_from_angles(np.array([0.0, 90.0]), np.array([0.0, 90.0]))
    assert v == pytest.approx(np.array([[0, 0, 1], [0, 1, 0]]), abs=1e-12)
    assert opening_angle_deg(v[:1], v[1:]) == pytest.approx([90.0])


def test_position_metrics() -> None:
    true = np.array([[0.0, 0.0, 10.0], [1.0, 1.0, 1.0], [5.0, 0.0, 0.0]])
    pred = true + np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    m = position_metrics(pred, true)
    assert m["uvw_dist_68pct"] == pytest.approx(1.0 + 0.36 * 4.0)  # sorted 0, 1, 5
    assert m["uvw_u_res_68pct"] == pytest.approx(3.0 * 0.36)  # sorted |du| 0, 0, 3
    assert m["uvw_w_bias"] == pytest.approx(1 / 3)
    cos0 = 10.0 * 10.0 / (np.linalg.norm([3, 4, 10]) * 10.0)
    cos2 = 25.0 / (5.0 * np.hypot(5.0, 1.0))
    assert m["cos_loss_pos"] == pytest.approx((1 - cos0 + 0 + 1 - cos2) / 3)


def test_energy_and_timing_widths() -> None:
    rng = np.random.default_rng(1)
    true = rng.uniform(0.02, 0.06, 40_000)
    rel = rng.normal(0.0, 0.015, true.size)
    tail = rng.random(true.size) < 0.1  # 10 % low tail (leakage) must not widen the core
    rel[tail] -= rng.exponential(0.08, tail.sum())
    m = task_metrics("energy", true * (1 + rel), true)
    assert m["energy_rel_sigma"] == pytest.approx(0.015, rel=0.04)
    assert m["energy_rel_rms"] > 2 * 0.015
    assert m["energy_rel_bias"] == pytest.approx(np.mean(rel), rel=1e-9)
    t = task_metrics("timing", rng.normal(0.3, 0.064, 20_000), np.zeros(20_000))
    assert t["timing_res_68pct"] == pytest.approx(0.064, rel=0.03)
    assert t["timing_bias"] == pytest.approx(0.3, abs=0.002)
    mu, sigma = gaussian_core(np.array([1.0, 2.0]))  # too few events: start values
    assert (mu, sigma) == (1.5, pytest.approx(half_width_68(np.array([1.0, 2.0]))))


def test_calorimeter_fit_recovers_its_terms() -> None:
    energy = np.linspace(0.015, 0.06, 10)
    truth = calo_resolution(energy, 0.003, 0.01, 0.0002)
    fit = fit_calo_resolution(energy, truth, truth * 0.01)
    assert (fit.a, fit.b, fit.c) == pytest.approx((0.003, 0.01, 0.0002), rel=1e-3)
    assert fit(energy) == pytest.approx(truth, rel=1e-4)
    assert fit.label().startswith("a=0.30%/√E, b=1.00%, c=0.02%/E")


def test_binned_width_and_classes() -> None:
    x = np.repeat([0.5, 1.5], 50)
    res = np.concatenate([np.linspace(-1, 1, 50), np.linspace(-3, 3, 50)])
    centers, widths, errs, counts = binned_width(x, res, np.array([0.0, 1.0, 2.0, 3.0]))
    assert centers == pytest.approx([0.5, 1.5, 2.5])
    assert counts.tolist() == [50, 50, 0]
    assert widths[1] == pytest.approx(3 * widths[0]) and np.isnan(widths[2])
    assert errs[0] == pytest.approx(widths[0] / np.sqrt(98))
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    accuracy = task_metrics("n_gamma", scores, np.array([1, 1, 1]))["n_gamma_accuracy"]
    assert accuracy == pytest.approx(2 / 3)


def test_masked_error_accumulator() -> None:
    truth = np.zeros((2, N_SENSORS, 2))
    pred = np.zeros((2, N_SENSORS, 2))
    mask = np.zeros((2, N_SENSORS), bool)
    mask[0, 0] = mask[1, 0] = mask[1, 4596] = True  # two inner, one top sensor
    pred[0, 0] = [1.0, 0.5]
    pred[1, 0] = [3.0, 9.0]
    pred[1, 4596] = [-2.0, 4.0]
    time_valid = np.ones((2, N_SENSORS), bool)
    time_valid[1, 0] = False  # that sensor's time is not a target
    acc = MaskedErrorAccumulator(loss="l1")
    acc.update(pred[:1], truth[:1], mask[:1], time_valid[:1], valid=np.ones((1, N_SENSORS), bool))
    acc.update(pred[1:], truth[1:], mask[1:], time_valid[1:], valid=np.ones((1, N_SENSORS), bool))
    m = acc.compute()
    assert m["mae_npho"] == pytest.approx(2.0)  # (1 + 3 + 2) / 3
    assert m["rmse_npho"] == pytest.approx(np.sqrt(14 / 3))
    assert m["mae_inner_npho"] == pytest.approx(2.0) and m["mae_top_npho"] == pytest.approx(2.0)
    assert m["mae_time"] == pytest.approx(2.25)  # (0.5 + 4) / 2
    assert m["loss_inner_time"] == pytest.approx(0.5)
    assert m["loss_time"] == pytest.approx(0.5 + 4.0)  # sum over faces of face means
    assert m["loss_top"] == pytest.approx(2.0 + 4.0)
    assert "mae_outer_npho" not in m
    assert m["n_masked_total"] == 3 and m["actual_mask_ratio"] == pytest.approx(3 / (2 * N_SENSORS))


def test_element_losses_and_mask_ratio() -> None:
    err = np.array([-2.0, 0.5])
    assert element_loss(err, "smooth_l1", 1.0) == pytest.approx([1.5, 0.125])
    assert element_loss(err, "huber", 1.0) == pytest.approx([1.5, 0.125])
    assert element_loss(err, "mse") == pytest.approx([4.0, 0.25])
    with pytest.raises(ValueError, match="not one of"):
        element_loss(err, "l3")
    valid = np.array([[True, True, False, True]])
    assert actual_mask_ratio(np.array([[True, False, False, False]]), valid) == pytest.approx(1 / 3)
