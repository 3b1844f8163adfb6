"""Models by kind and size: `create_model(kind, size, scheme=..., tasks=..., **options)`.

Kinds: regressor, mae, inpainter. Sizes (trainable parameters with the default options:
outer_mode finegrid, pool 3x3, shared rect backbone, learned position embeddings; regressor with
the angle task only, no readout; counts are checked by tests/test_model_registry.py):

    size        encoder    regressor          mae    inpainter
    tiny         18,912       25,218       43,724       45,644
    base     25,744,704   27,318,850   26,706,892   27,014,412
    large    55,471,808   58,620,098   57,424,460   56,776,332

Dimensions: tiny rect 8/16 (1+1 blocks), hex 16 x 1, token 32, fusion 1 x 2 heads; base rect
32/64 (2+3 blocks), hex 96 x 4, token 1024, fusion 2 x 8 heads, ffn 4096 (the reference);
large rect 64/128 (3+6), hex 192 x 6, token 1024, fusion 4 x 16 heads, drop-path 0.1.
`tiny` is for CPU tests, `base` matches the reference dimensions. Options: any EncoderConfig
field (outer_mode, outer_fine_pool, share_rect_backbone, pos_embed, drop_path_rate, ...) and the
keyword arguments of the kind's class (e.g. readout_dim, mask_ratio, freeze_encoder, loss_fn).
`model.model_config` rebuilds the model: create_model(**model.model_config). Every kind
shares the xecmodel.kind.ModelKind surface (predict, declared outputs); KINDS is the table
create_model builds from.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from torch import nn

from xecdata.schemes import Scheme, get_scheme
from xecmodel.encoder import EncoderConfig, XECEncoder
from xecmodel.inpainter import XECInpainter
from xecmodel.kind import ModelKind, OutputSpec
from xecmodel.mae import XECMAE
from xecmodel.regressor import XECRegressor
from xecmodel.tasks import TaskSpec

KINDS: dict[str, type[ModelKind]] = {k.kind: k for k in (XECRegressor, XECMAE, XECInpainter)}
SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "tiny": {
        "encoder": dict(
            rect_dims=(8, 16),
            rect_depths=(1, 1),
            hex_dim=16,
            hex_depth=1,
            token_dim=32,
            token_grid=2,
            fusion_depth=1,
            fusion_heads=2,
            fusion_ffn=64,
            fusion_dropout=0.0,
        ),
        "regressor": dict(head_hidden=32, head_dropout=0.0),
        "mae": dict(decoder_dim=16, decoder_depth=1, hex_decoder_dim=16, hex_decoder_depth=1),
        "inpainter": dict(head_dim=16, head_depth=1, hex_head_dim=16, hex_head_depth=1),
    },
    "base": {
        "encoder": {},  # EncoderConfig defaults are the reference dimensions
        "regressor": dict(head_hidden=256, head_dropout=0.2),
        "mae": dict(decoder_dim=64, decoder_depth=1, hex_decoder_dim=96, hex_decoder_depth=2),
        "inpainter": dict(head_dim=64, head_depth=2, hex_head_dim=96, hex_head_depth=3),
    },
    "large": {
        "encoder": dict(
            rect_dims=(64, 128),
            rect_depths=(3, 6),
            hex_dim=192,
            hex_depth=6,
            token_dim=1024,
            fusion_depth=4,
            fusion_heads=16,
            fusion_ffn=4096,
            drop_path_rate=0.1,
        ),
        "regressor": dict(head_hidden=512, head_dropout=0.2),
        "mae": dict(decoder_dim=96, decoder_depth=2, hex_decoder_dim=128, hex_decoder_depth=2),
        "inpainter": dict(head_dim=64, head_depth=2, hex_head_dim=96, hex_head_depth=3),
    },
}
ENCODER_OPTIONS = tuple(f.name for f in fields(EncoderConfig))
XECModel = ModelKind  # any registered kind


def list_models() -> list[tuple[str, str]]:
    """Every registered (kind, size) pair."""
    return [(kind, size) for kind in KINDS for size in SIZES]


def resolve_scheme(scheme: Scheme | dict | str) -> Scheme:
    """A Scheme from a Scheme, its to_dict() form, or a registered id."""
    if isinstance(scheme, Scheme):
        return scheme
    if isinstance(scheme, dict):
        return Scheme.from_dict(scheme)
    return get_scheme(scheme)


def kind_class(kind: str) -> type[ModelKind]:
    """The registered class of `kind`; an unknown kind raises listing the valid ones."""
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; choose one of {list(KINDS)}")
    return KINDS[kind]


def kind_options(kind: str) -> tuple[str, ...]:
    """Keyword options a kind accepts besides the encoder options."""
    return kind_class(kind).option_names()


def output_specs(config: dict[str, Any]) -> tuple[OutputSpec, ...]:
    """The declared outputs of the model that create_model(**config) builds."""
    return kind_class(str(config.get("kind"))).outputs(config)


def create_model(
    kind: str,
    size: str,
    *,
    scheme: Scheme | dict | str,
    tasks: list[TaskSpec | str | dict] | None = None,
    **options: Any,
) -> XECModel:
    """Build a model; unknown kinds, sizes and options raise listing the valid ones."""
    cls = kind_class(kind)
    if size not in SIZES:
        raise ValueError(f"unknown model size {size!r}; choose one of {list(SIZES)}")
    valid = ENCODER_OPTIONS + kind_options(kind)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"{kind}: unknown option(s) {unknown}; valid: {sorted(valid)}")
    scheme = resolve_scheme(scheme)
    enc = SIZES[size]["encoder"] | {k: v for k, v in options.items() if k in ENCODER_OPTIONS}
    encoder = XECEncoder(EncoderConfig(**enc), scheme)
    kw = SIZES[size][kind] | {k: v for k, v in options.items() if k not in ENCODER_OPTIONS}
    config: dict[str, Any] = {"kind": kind, "size": size, "scheme": scheme.to_dict(), **options}
    model = cls.build(encoder, tasks, **kw)
    model._config = config  # model_config adds the current tasks (regressor)
    return model


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
