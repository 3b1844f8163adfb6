"""Every registered model: shapes, finite outputs, gradients, sizes, rebuild from model_config."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.model_data import events
from xecdata.geometry import geometry_id
from xecdata.schemes import get_scheme
from xecmodel import KINDS, SIZES, TASKS, TaskSpec, count_parameters, create_model, list_models

SCHEME = get_scheme("new@1")
ALL_TASKS = [TaskSpec(n) for n in TASKS]
MIXED_TASKS = [
    TaskSpec("angle", loss="angular", transform="standardize"),
    TaskSpec("energy", loss="gaussian_nll", transform="log+standardize"),
    TaskSpec("timing", loss="huber", loss_kwargs={"delta": 2.0}, transform="inverse"),
    TaskSpec("uvwFI", loss="l2", weight=0.5),
    TaskSpec("angleVec", loss="cosine"),
]
SPLIT = {"outer_mode": "split", "share_rect_backbone": False, "pos_embed": "geometric"}
# (kind, options, tasks): every kind with the default options plus the non-default paths
CASES = {
    "regressor": ("regressor", {}, ALL_TASKS),
    "regressor-split-readout": ("regressor", SPLIT | {"readout_dim": 8}, MIXED_TASKS),
    "regressor-fine11-readout": ("regressor", {"outer_fine_pool": (1, 1), "readout_dim": 4}, None),
    "mae": ("mae", {"mask_ratio": 0.9}, None),
    "mae-split-logvars": ("mae", SPLIT | {"mask_ratio": 0.9, "learn_channel_logvars": True}, None),
    "inpainter": ("inpainter", {"mask_ratio": 0.9}, None),
    "inpainter-split-npho": ("inpainter", SPLIT | {"mask_ratio": 0.9, "predict_time": False}, None),
}
TARGETS = {
    "angle": torch.tensor([[80.0, 10.0], [95.0, -20.0]]),
    "energy": torch.tensor([0.0528, 0.030]),
    "timing": torch.tensor([[0.4], [-1.2]]),
    "uvwFI": torch.tensor([[1.0, -5.0, 2.0], [-3.0, 10.0, 8.0]]),
    "angleVec": torch.tensor([[0.0, 0.6, 0.8], [-1.0, 0.0, 0.0]]),
    "n_gamma": torch.tensor([1, 2]),
}


def build(case: str) -> torch.nn.Module:
    kind, options, tasks = CASES[case]
    torch.manual_seed(0)
    model = create_model(kind, "tiny", scheme=SCHEME, tasks=tasks, **options)
    if kind == "regressor":
        model.fit_transforms({k: v.reshape(2, -1).numpy() for k, v in TARGETS.items()})
    return model


def run(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Loss and outputs of one training step's forward."""
    if model._config["kind"] == "regressor":
        out = model(x)
        total, _ = model.loss(out, TARGETS, weights=torch.tensor([1.0, 2.0]))
        return total, out
    loss, pred, mask = model(x)
    return loss, {"pred": pred, "mask": mask}


def test_registry_lists_every_kind_and_size() -> None:
    assert set(list_models()) == {(k, s) for k in ("regressor", "mae", "inpainter") for s in SIZES}


@pytest.mark.parametrize("case", list(CASES))
def test_shapes_finite_outputs_and_gradients(case: str) -> None:
    model = build(case).train()
    x = events(SCHEME, 2)
    loss, out = run(model, x)
    assert torch.isfinite(loss)
    if CASES[case][0] == "regressor":
        for spec in model.tasks:
            assert out[spec.name].shape == (2, spec.n_outputs)
        pred = model.predict(x)
        assert {k: tuple(v.shape) for k, v in pred.items()} == {
            s.name: (2, s.info.dim) for s in model.tasks
        }
        assert all(torch.isfinite(v).all() for v in pred.values())
    else:
        assert out["pred"].shape[:2] == (2, 4760) and torch.isfinite(out["pred"]).all()
    loss.backward()
    silent = [n for n, p in model.named_parameters() if p.requires_grad and not p.grad.abs().sum()]
    assert silent == []


def test_parameter_counts_per_size_match_the_registry_docstring() -> None:
    import xecmodel.registry as registry

    for size in SIZES:
        counts = [count_parameters(create_model("mae", size, scheme=SCHEME).encoder)]
        counts += [
            count_parameters(create_model(k, size, scheme=SCHEME))
            for k in ("regressor", "mae", "inpainter")
        ]
        row = f"{size:<6}" + "".join(f"{c:>13,}" for c in counts)
        assert row in registry.__doc__, row


def test_model_config_rebuilds_the_model_with_fitted_statistics() -> None:
    model = build("regressor-split-readout")
    assert (model.scheme_id, model.scheme_hash) == (SCHEME.id, SCHEME.hash)
    assert model.geometry_id == geometry_id()
    again = create_model(**model.model_config)
    assert again.model_config == model.model_config
    for name in ("angle", "energy"):
        np.testing.assert_allclose(
            again.heads[name].transform.mean, model.heads[name].transform.mean
        )
    own, other = model.state_dict(), again.state_dict()
    assert {k: v.shape for k, v in own.items()} == {k: v.shape for k, v in other.items()}


def test_bad_requests_list_the_valid_choices() -> None:
    with pytest.raises(ValueError, match="unknown model kind"):
        create_model("vit", "tiny", scheme=SCHEME)
    with pytest.raises(ValueError, match=r"unknown model size.*tiny"):
        create_model("mae", "huge", scheme=SCHEME)
    with pytest.raises(ValueError, match=r"unknown option.*mask_ratio"):
        create_model("regressor", "tiny", scheme=SCHEME, mask_ratio=0.5)
    with pytest.raises(ValueError, match="regressor only"):
        create_model("mae", "tiny", scheme=SCHEME, tasks=["angle"])
    with pytest.raises(ValueError, match="unknown reconstruction loss"):
        create_model("mae", "tiny", scheme=SCHEME, loss_fn="ssim")
    with pytest.raises(KeyError, match="energyTruth"):
        model = create_model("regressor", "tiny", scheme=SCHEME, tasks=["angle", "energy"])
        model.loss(model(events(SCHEME, 2)), {"angle": TARGETS["angle"]})


@pytest.mark.parametrize("case", list(CASES))
def test_predict_returns_what_the_kind_declares(case: str) -> None:
    """predict gives exactly the declared outputs, in their declared shapes; a kind that
    fills sensors leaves the unmasked ones as they were (in the declared physical units)."""
    model = build(case).eval()
    cls = type(model)
    assert KINDS[cls.kind] is cls and model.model_config["kind"] == cls.kind
    x = events(SCHEME, 2)
    mask = torch.zeros(2, 4760, dtype=torch.bool)
    mask[:, ::7] = True
    with torch.no_grad():
        out = model.predict(x, mask if cls.takes_mask else None)
    declared = cls.outputs(model.model_config)
    assert list(out) == [o.name for o in declared]
    for o in declared:
        assert tuple(out[o.name].shape) == (2, *o.shape), o.name
        assert o.per == ("sensor" if o.shape[0] == 4760 else "event")
    if cls.takes_mask:
        npho, _ = SCHEME.denormalize_torch(x)
        filled = out["filled_npho"]
        keep = ~mask & torch.isfinite(npho)
        assert torch.allclose(filled[keep], npho[keep]) and torch.isfinite(filled[mask]).all()
        with pytest.raises(ValueError, match="needs the"):
            model.predict(x)
    else:
        with pytest.raises(ValueError, match="takes no mask"):
            model.predict(x, mask)
