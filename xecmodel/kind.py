"""The surface every model kind shares, and the outputs each kind declares.

A kind (regressor, MAE, inpainter) is a `ModelKind` subclass registered by name in
xecmodel.registry.KINDS. It declares on its class
  kind              its registry name
  takes_mask        whether predict takes a (B, 4760) bool mask of the sensors to fill
  outputs(config)   the named outputs of predict with units and shapes, from the model config
                    alone (no weights: export writes them into the ONNX metadata, and infer,
                    validate and analyze read them from there or from the class)
  build(encoder, tasks, **options)   the constructor create_model calls
and every instance has
  forward(x, ...)         the training output (regressor: raw heads; others: (loss, pred, mask))
  predict(x, mask=None)   {output name: tensor} in the declared units
  model_config, scheme, scheme_id, scheme_hash, geometry_id, task_names, encoder.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from xecdata.geometry import N_SENSORS
from xecmodel.encoder import XECEncoder, load_encoder_state
from xecmodel.faces import fill_masked
from xecmodel.heads import TaskHead
from xecmodel.recon import ReconstructionLoss

Per = Literal["event", "sensor"]


@dataclass(frozen=True)
class OutputSpec:
    """One named output of a kind's predict (and of its exported graph)."""

    name: str
    """Key in predict()'s dict and name of the ONNX graph output."""
    units: str
    """Physical units of the values (deg, GeV, photons, s, ...), or normalized / probability."""
    per: Per
    """event: one value set per event; sensor: one per sensor (shape starts with 4760)."""
    shape: tuple[int, ...] = (1,)
    """Shape of one event's values, without the batch axis: (dim,), (4760,), (4760, C)."""
    labels: tuple[str, ...] = ()
    """Meaning of each column of an event output."""
    column: str | None = None
    """Branch of `xec infer`'s output holding it; None: not written (model-internal values)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"shape": list(self.shape), "labels": list(self.labels)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OutputSpec:
        known = {f.name for f in fields(cls)}
        tuples = {"shape": tuple(d.get("shape", (1,))), "labels": tuple(d.get("labels", ()))}
        return cls(**({k: v for k, v in d.items() if k in known} | tuples))


def default_option(kind: type[nn.Module], name: str) -> Any:
    """The default of a keyword of a kind's constructor (one place holds each default)."""
    return inspect.signature(kind).parameters[name].default


class ModelKind(nn.Module):
    """Base of every kind: the shared attributes and the declared-output contract."""

    kind: ClassVar[str]
    takes_mask: ClassVar[bool]
    # validation prediction files: "event" (every sensor of each event), "sensor" (one entry
    # per masked sensor), None (the kind writes none; the regressor writes CSVs and a table)
    predictions_layout: ClassVar[Literal["event", "sensor"] | None] = None

    def __init__(self, encoder: XECEncoder) -> None:
        super().__init__()
        self.encoder, self.scheme = encoder, encoder.scheme
        self.scheme_id, self.scheme_hash = encoder.scheme_id, encoder.scheme_hash
        self.geometry_id = encoder.geometry_id
        self._config: dict[str, Any] = {}  # set by xecmodel.registry.create_model

    @classmethod
    def build(cls, encoder: XECEncoder, tasks: Sequence[Any] | None, **options: Any) -> ModelKind:
        """The model on `encoder`; only kinds with tasks accept `tasks`."""
        if tasks is not None:
            raise ValueError(f"{cls.kind}: tasks apply to the regressor only")
        return cls(encoder, **options)

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """Keyword options of the kind besides the encoder and its tasks."""
        skip = ("self", "encoder", "tasks", "loss_options")
        return tuple(n for n in inspect.signature(cls).parameters if n not in skip)

    @classmethod
    def outputs(cls, config: Mapping[str, Any]) -> tuple[OutputSpec, ...]:
        """The outputs of predict for a model built from `config` (create_model's keywords)."""
        raise NotImplementedError(f"{cls.__name__} declares no outputs")

    def predict(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """{output name: tensor} in the declared units; x (B, 4760, 2) normalized."""
        raise NotImplementedError(f"{type(self).__name__} has no predict")

    @property
    def output_specs(self) -> tuple[OutputSpec, ...]:
        """This model's declared outputs."""
        return self.outputs(self.model_config)

    def input_names(self, raw_inputs: bool) -> list[str]:
        """Graph inputs: x, or raw npho and time; then the mask for kinds that take one."""
        names = ["npho", "time"] if raw_inputs else ["x"]
        return [*names, "mask"] if self.takes_mask else names

    @property
    def model_config(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this model with xecmodel.create_model."""
        return dict(self._config)

    @property
    def task_names(self) -> list[str]:
        """Tasks of the model in output order (none for the reconstruction kinds)."""
        return []

    def task_heads(self) -> dict[str, TaskHead]:
        """The task heads by name (none for the reconstruction kinds)."""
        return {}

    def load_encoder_state(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load encoder weights from an MAE / inpainter / regressor / encoder state dict."""
        load_encoder_state(self.encoder, state_dict)


class ReconstructionKind(ModelKind):
    """MAE and inpainter: every sensor predicted from x with the masked ones hidden; predict
    returns the normalized prediction and x with the masked sensors filled, in photons and s."""

    takes_mask: ClassVar[bool] = True
    predict_time: bool  # set by the kind's constructor: False = npho only
    mask_pool: str  # which sensors count as invalid (xecmodel.masking.already_invalid)
    criterion: ReconstructionLoss
    last_ratio: dict[str, torch.Tensor]  # mask statistics of the last forward

    @classmethod
    def outputs(cls, config: Mapping[str, Any]) -> tuple[OutputSpec, ...]:
        time = config.get("predict_time", default_option(cls, "predict_time"))
        return (
            OutputSpec("pred", "normalized", "sensor", (N_SENSORS, 2 if time else 1)),
            OutputSpec("filled_npho", "photons", "sensor", (N_SENSORS,), column="npho"),
            # NaN at masked sensors in npho-only mode (time not predicted)
            OutputSpec("filled_time", "s", "sensor", (N_SENSORS,), column="time"),
        )

    @property
    def actual_mask_ratio(self) -> torch.Tensor | None:
        """Masked / maskable sensors of the last batch."""
        return self.last_ratio.get("actual_mask_ratio")

    @property
    def last_losses(self) -> dict[str, torch.Tensor]:
        """total_loss, loss_npho/time, loss_{face}, loss_{face}_{npho,time} and the mask
        statistics of the last forward (0-dim tensors, no host sync; no time keys in npho-only
        mode), and logvar_/sigma_{ch} with learn_channel_logvars."""
        return self.criterion.components() | self.last_ratio

    def reconstruct(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, 4760, 2) normalized, (B, 4760) bool -> (B, 4760, C) normalized prediction."""
        raise NotImplementedError(f"{type(self).__name__} has no reconstruct")

    def predict(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if mask is None:
            raise ValueError(f"{self.kind}: predict needs the (B, 4760) mask of sensors to fill")
        mask = mask.bool()
        pred = self.reconstruct(x, mask)
        npho, time = self.scheme.denormalize_torch(fill_masked(x, pred, mask, self.scheme))
        return {"pred": pred, "filled_npho": npho, "filled_time": time}

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """The kind's own options and the reconstruction loss's (its **loss_options)."""
        loss = [n for n in inspect.signature(ReconstructionLoss).parameters if n != "scheme"]
        return (*super().option_names(), *loss)
